"""System texts are said at the edge in the reader's language; stored reasons are a
person's own words only (issue 14.5). A series names the dates it skipped (14.8). Mail
speaks Finnish, Swedish and English (13.6). Both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from booking import accounts
from booking.outbox import outbox
from events.serialization import serializer
from events.sql import read_transaction, write_transaction
from events.store import events_table
from tests.conftest import Api, future_weekday, local

ALWAYS_OPEN = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _user(api: Api, role: str, language: str, organisation_id: str | None = None) -> str:
    with write_transaction(api.engine) as conn:
        created = accounts.create_user(
            conn,
            email=f"{role}-{language}@example.fi",
            name=f"Test {role}",
            role=role,
            organisation_id=organisation_id,
            language=language,
            vault=api.app.extensions["tilavaraus"].vault,
        )
    return created.token


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _mails(api: Api, like: str) -> list[Any]:
    with read_transaction(api.engine) as conn:
        query = select(outbox).where(outbox.c.subject.like(like)).order_by(outbox.c.id)
        return list(conn.execute(query).all())


def _stored(api: Api, event_type: str) -> list[dict[str, Any]]:
    with read_transaction(api.engine) as conn:
        query = select(events_table.c.data).where(events_table.c.type == event_type)
        return [dict(row.data) for row in conn.execute(query)]


def test_a_closure_stores_the_staffs_words_and_each_reader_gets_their_language(
    api: Api,
) -> None:
    api.premises("room")
    finn = _user(api, "booker", "fi", api.organisation_id)
    swede = _user(api, "booker", "sv", api.organisation_id)
    day = future_weekday(2)
    b_fi = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 11).isoformat(),
            "title": "Kerho",
            "attendees": 3,
        },
        headers=_as(finn),
    ).get_json()
    b_sv = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(day, 12).isoformat(),
            "end": local(day, 13).isoformat(),
            "title": "Klubb",
            "attendees": 3,
        },
        headers=_as(swede),
    ).get_json()
    closed = api.post(
        "/api/v1/premises/room/closures",
        {
            "start": local(day, 8).isoformat(),
            "end": local(day, 20).isoformat(),
            "reason": "Putkiremontti",
            "cancel_conflicting": True,
        },
        role="staff",
    )
    assert closed.status_code == 201, closed.get_json()

    # The log holds the staff's words and a code, never an English sentence.
    cancelled = _stored(api, "BookingCancelled")
    assert {(c["reason"], c["cause"]) for c in cancelled} == {("Putkiremontti", "premises_closed")}

    fi_mail = _mails(api, "Varaus peruttu%")
    sv_mail = _mails(api, "Bokningen avbokad%")
    assert len(fi_mail) == 1 and "Syy: Tila on suljettu: Putkiremontti" in fi_mail[0].body
    assert len(sv_mail) == 1 and "Orsak: Lokalen är stängd: Putkiremontti" in sv_mail[0].body
    assert "The premises" not in fi_mail[0].body + sv_mail[0].body

    # The API answers the words, the code, and the sentence in the reader's language.
    seen_fi = api.client.get(f"/api/v1/bookings/{b_fi['id']}", headers=_as(finn)).get_json()
    assert seen_fi["reason"] == "Putkiremontti"
    assert seen_fi["reason_code"] == "premises_closed"
    assert seen_fi["reason_text"] == "Tila on suljettu: Putkiremontti"
    seen_sv = api.client.get(f"/api/v1/bookings/{b_sv['id']}", headers=_as(swede)).get_json()
    assert seen_sv["reason_text"] == "Lokalen är stängd: Putkiremontti"


def test_withdrawing_an_approved_popup_says_why_in_finnish(api: Api) -> None:
    api.premises(
        "room",
        opening_hours=ALWAYS_OPEN,
        rules={"popup_allowed": True, "popup_auto_approve": True, "min_notice_minutes": 0},
    )
    resident = _user(api, "resident", "fi")
    start = local(future_weekday(3, weeks_ahead=1), 15)
    asked = api.client.post(
        "/api/v1/popup-requests",
        json={
            "premises_id": "room",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "title": "Korjauskahvila",
        },
        headers=_as(resident),
    ).get_json()
    assert asked["status"] == "approved", asked
    withdrawn = api.client.post(
        f"/api/v1/popup-requests/{asked['id']}/withdraw", headers=_as(resident)
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert [(c["reason"], c["cause"]) for c in _stored(api, "BookingCancelled")] == [
        ("", "popup_withdrawn")
    ]
    # The token owner's language decides (a Swedish staff member here), not the header.
    swedish_staff = _user(api, "staff", "sv")
    booking = api.client.get(
        f"/api/v1/bookings/{asked['booking_id']}",
        headers={**_as(swedish_staff), "Accept-Language": "en"},
    ).get_json()
    assert booking["reason"] == ""
    assert booking["reason_code"] == "popup_withdrawn"
    assert booking["reason_text"] == "Pop-up-förfrågan återtogs."
    mails = _mails(api, "Varaus peruttu%")
    assert len(mails) == 1 and "Syy: Pop-up-pyyntö peruttiin." in mails[0].body


def test_old_events_with_english_sentences_read_as_code_and_words() -> None:
    old = {
        "premises_id": "room",
        "booking_id": "b1",
        "cancelled_by": "u1",
        "reason": "The premises is closed: Putkiremontti",
        "late": False,
        "cancelled_at": "2026-11-18T08:00:00+00:00",
    }
    event = serializer.load("BookingCancelled", 1, old)
    assert (event.reason, event.cause) == ("Putkiremontti", "premises_closed")  # type: ignore[attr-defined]
    withdrawn = serializer.load(
        "BookingCancelled", 1, {**old, "reason": "The pop-up was withdrawn."}
    )
    assert (withdrawn.reason, withdrawn.cause) == ("", "popup_withdrawn")  # type: ignore[attr-defined]
    own = serializer.load("BookingCancelled", 1, {**old, "reason": "Sairastuimme"})
    assert (own.reason, own.cause) == ("Sairastuimme", "")  # type: ignore[attr-defined]
    rejected = serializer.load(
        "PopupRejected",
        1,
        {
            "premises_id": "room",
            "request_id": "p1",
            "rejected_by": "u1",
            "reason": "The premises is closed: Remontti",
            "rejected_at": "2026-11-18T08:00:00+00:00",
        },
    )
    assert (rejected.reason, rejected.cause) == ("Remontti", "premises_closed")  # type: ignore[attr-defined]


def test_a_weekly_series_names_the_skipped_dates_in_the_mail(api: Api) -> None:
    api.premises("room")
    finn = _user(api, "booker", "fi", api.organisation_id)
    day = future_weekday(1)
    taken = api.book(
        "room", local(day + timedelta(weeks=1), 18), local(day + timedelta(weeks=1), 20)
    )
    assert taken.status_code == 201
    placed = api.client.post(
        "/api/v1/booking-series",
        json={
            "premises_id": "room",
            "start": local(day, 18).isoformat(),
            "end": local(day, 20).isoformat(),
            "rrule": "FREQ=WEEKLY;COUNT=3",
            "title": "Shakki",
            "attendees": 4,
            "on_conflict": "skip",
        },
        headers=_as(finn),
    )
    assert placed.status_code == 201, placed.get_json()
    (skipped,) = placed.get_json()["skipped"]
    assert (skipped["reason"], skipped["reason_text"]) == ("conflict", "Aika on jo varattu.")
    (mail,) = _mails(api, "Sarjavaraus tehty%")
    skipped_day = day + timedelta(weeks=1)
    assert "2 kertaa, ensimmäinen" in mail.body
    assert "1 päivä jäi varaamatta:" in mail.body
    assert f"{skipped_day.day}.{skipped_day.month}.{skipped_day.year} klo 18.00–20.00" in mail.body
    assert "Aika on jo varattu." in mail.body
