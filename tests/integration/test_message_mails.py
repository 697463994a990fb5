"""A mail of a new message in a thread, or of a series cancelled, names the premises and the
local time, like every other mail (API.md, "Messages and notifications": "Every e-mail,
system text included, is in the recipient's language (fi/sv/en) and names the premises and
the local time"). Read as a person reads their mail here: through
GET /api/v1/users/{id}/data. Both databases."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, future_weekday, local


def _outbox(api: Api, role: str) -> list[dict[str, Any]]:
    me = api.get("/api/v1/users/me", role=role).get_json()
    data = api.get(f"/api/v1/users/{me['id']}/data", role=role)
    assert data.status_code == 200, data.get_json()
    return list(data.get_json()["outbox"])


def test_a_message_mail_names_the_premises_and_the_local_time(api: Api) -> None:
    api.premises("room", name={"fi": "Kokoushuone 2", "en": "Meeting room 2"})
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 11))
    assert placed.status_code == 201, placed.get_json()
    booking_id = placed.get_json()["id"]
    (confirmed,) = _outbox(api, "booker")
    where_and_when = confirmed["body"].splitlines()[-1]  # "Kokoushuone 2, ke 2.12.2026 klo …"
    assert where_and_when.startswith("Kokoushuone 2, ") and "10.00" in where_and_when

    posted = api.post(f"/api/v1/bookings/{booking_id}/messages", {"body": "Avain?"}, role="staff")
    assert posted.status_code == 201, posted.get_json()

    (message,) = [m for m in _outbox(api, "booker") if m["id"] != confirmed["id"]]
    assert message["language"] == "fi"
    assert where_and_when in message["body"].splitlines(), message["body"]


def test_a_message_in_a_pop_up_thread_names_them_to_staff(api: Api) -> None:
    api.premises("room", rules={"popup_allowed": True})
    day = future_weekday(2)
    body = {
        "premises_id": "room",
        "start": local(day, 12).isoformat(),
        "end": local(day, 13).isoformat(),
        "title": "Lukupiiri",
        "description": "",
        "expected_attendees": 3,
    }
    request = api.post("/api/v1/popup-requests", body, role="resident")
    assert request.status_code == 201, request.get_json()
    api.token("staff")  # staff exist before the message, to be told of it
    posted = api.post(
        f"/api/v1/popup-requests/{request.get_json()['id']}/messages",
        {"body": "Saako tuoda kahvia?"},
        role="resident",
    )
    assert posted.status_code == 201, posted.get_json()

    (message,) = _outbox(api, "staff")
    assert "Kokoushuone 2, " in message["body"], message["body"]
    assert "12.00–13.00" in message["body"], message["body"]


def test_a_series_cancellation_mail_names_the_first_time_cancelled(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    body = {
        "premises_id": "room",
        "start": local(day, 18).isoformat(),
        "end": local(day, 19).isoformat(),
        "rrule": "FREQ=WEEKLY;COUNT=3",
        "title": "Shakkikerho",
        "attendees": 4,
        "on_conflict": "skip",
    }
    placed = api.post("/api/v1/booking-series", body, role="booker")
    assert placed.status_code == 201, placed.get_json()
    series_id = placed.get_json()["series_id"]
    cancelled = api.post(f"/api/v1/booking-series/{series_id}/cancel", {}, role="booker")
    assert cancelled.status_code == 200, cancelled.get_json()

    mails = _outbox(api, "booker")
    (told,) = [m for m in mails if "peruttu" in m["body"]]
    assert "Kokoushuone 2, ensimmäinen " in told["body"], told["body"]
    assert f"{day.day}.{day.month}.{day.year}" in told["body"], told["body"]
    assert "18.00–19.00" in told["body"], told["body"]
