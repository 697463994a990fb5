"""Booking series over HTTP on SQLite and PostgreSQL: RRULE with COUNT and UNTIL, skip and
fail on conflict, local time kept across DST, and cancelling the future occurrences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import time_machine

from tests.conftest import HELSINKI, Api, future_weekday, local
from tests.integration.test_api_log import event_count, warm_tokens

PROBLEM = "application/problem+json"
# Long enough to reach the next autumn DST change from any day of the year.
FAR = {"max_advance_days": 400}


def series(
    api: Api, start: datetime, end: datetime, rrule: str, role: str = "booker", **extra: Any
) -> Any:
    body = {
        "premises_id": extra.pop("premises_id", "room"),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rrule": rrule,
        "title": "Shakkikerho",
        "attendees": 6,
        **extra,
    }
    return api.post("/api/v1/booking-series", body, role=role)


def booking_list(api: Api) -> list[dict[str, Any]]:
    response = api.get("/api/v1/bookings?limit=5000", role="staff")
    assert response.status_code == 200
    return list(response.get_json()["bookings"])


def last_sunday(year: int, month: int) -> date:
    """The EU DST change day: the last Sunday of March or October."""
    day = date(year, month, 31)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def next_change(month: int) -> date:
    """The next DST change in `month` at least three weeks away (so a series can start before)."""
    today = datetime.now(HELSINKI).date()
    for year in (today.year, today.year + 1):
        change = last_sunday(year, month)
        if change - timedelta(days=21) > today:
            return change
    raise AssertionError("unreachable")


def test_weekly_with_count(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    response = series(api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=4")
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"series_id", "bookings", "skipped"}
    assert body["skipped"] == []
    starts = [datetime.fromisoformat(b["start"]) for b in body["bookings"]]
    assert starts == [local(day + timedelta(weeks=n), 18) for n in range(4)]
    for booking in body["bookings"]:
        assert booking["status"] == "confirmed"
        assert booking["series_id"] == body["series_id"]
        assert booking["organisation_id"] == api.organisation_id
        assert booking["title"] == "Shakkikerho"
        assert datetime.fromisoformat(booking["end"]) - datetime.fromisoformat(
            booking["start"]
        ) == timedelta(hours=2)
    assert len({b["id"] for b in body["bookings"]}) == 4
    # Each occurrence is an ordinary booking.
    one = api.get(f"/api/v1/bookings/{body['bookings'][2]['id']}", role="booker")
    assert one.status_code == 200
    assert one.get_json()["series_id"] == body["series_id"]


def test_weekly_with_until(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    third = day + timedelta(weeks=2)
    utc_until = f"FREQ=WEEKLY;UNTIL={third:%Y%m%d}T235959Z"
    response = series(api, local(day, 18), local(day, 20), utc_until)
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["bookings"]) == 3
    # A date-only UNTIL is the local date: the last occurrence is on that day.
    later = day + timedelta(days=1)
    response = series(
        api,
        local(later, 18),
        local(later, 20),
        f"RRULE:FREQ=WEEKLY;UNTIL={later + timedelta(weeks=1):%Y%m%d}",
    )
    assert response.status_code == 201, response.get_json()
    starts = [datetime.fromisoformat(b["start"]) for b in response.get_json()["bookings"]]
    assert starts == [local(later, 18), local(later + timedelta(weeks=1), 18)]


def test_skip_books_the_rest_and_names_the_clash(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    clash_day = day + timedelta(weeks=1)
    taken = api.book("room", local(clash_day, 19), local(clash_day, 21))
    assert taken.status_code == 201
    response = series(
        api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=3", on_conflict="skip"
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    starts = [datetime.fromisoformat(b["start"]) for b in body["bookings"]]
    assert starts == [local(day, 18), local(day + timedelta(weeks=2), 18)]
    assert len(body["skipped"]) == 1
    skipped = body["skipped"][0]
    assert set(skipped) >= {"start", "end", "reason"}
    assert datetime.fromisoformat(skipped["start"]) == local(clash_day, 18)
    assert datetime.fromisoformat(skipped["end"]) == local(clash_day, 20)
    assert skipped["start"] == local(clash_day, 18).isoformat()  # local time, like bookings
    assert skipped["reason"]


def test_skip_is_the_default(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    api.book("room", local(day, 18), local(day, 19))
    response = series(api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=2")
    assert response.status_code == 201
    assert len(response.get_json()["skipped"]) == 1


def test_fail_books_nothing_on_a_conflict(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    clash_day = day + timedelta(weeks=2)
    assert api.book("room", local(clash_day, 18), local(clash_day, 19)).status_code == 201
    warm_tokens(api, "booker", "staff")
    before, listed = event_count(api), booking_list(api)
    response = series(
        api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=4", on_conflict="fail"
    )
    assert response.status_code == 409, response.get_json()
    assert response.mimetype == PROBLEM
    conflicts = response.get_json()["conflicts"]
    assert datetime.fromisoformat(conflicts[0]["start"]) == local(clash_day, 18)
    assert event_count(api) == before
    assert booking_list(api) == listed


def test_fail_books_nothing_when_a_rule_is_broken(api: Api) -> None:
    api.premises("room", rules={"max_advance_days": 20})
    day = future_weekday(0, weeks_ahead=1)
    warm_tokens(api, "booker", "staff")
    before, listed = event_count(api), booking_list(api)
    response = series(
        api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=6", on_conflict="fail"
    )
    assert response.status_code == 422, response.get_json()
    assert "start" in response.get_json()["errors"]
    assert event_count(api) == before
    assert booking_list(api) == listed
    # With skip the same request books the occurrences within reach.
    response = series(api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=6")
    assert response.status_code == 201
    body = response.get_json()
    assert len(body["bookings"]) + len(body["skipped"]) == 6
    assert body["skipped"] and body["bookings"]


def test_bad_rrules_are_422(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    warm_tokens(api, "booker")
    before = event_count(api)
    for rrule in (
        "FREQ=WEEKLY",  # never ends
        "FREQ=FORTNIGHTLY;COUNT=3",
        "FREQ=HOURLY;COUNT=3",
        "FREQ=DAILY;COUNT=1000",
        "DTSTART:20270101T100000\nRRULE:FREQ=WEEKLY;COUNT=2",
        "hello",
        "",
    ):
        response = series(api, local(day, 18), local(day, 20), rrule)
        assert response.status_code == 422, (rrule, response.get_json())
        assert response.mimetype == PROBLEM
        assert "rrule" in response.get_json()["errors"], rrule
    response = series(
        api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=2", on_conflict="maybe"
    )
    assert response.status_code == 422
    assert "on_conflict" in response.get_json()["errors"]
    assert event_count(api) == before


def _local_times(bookings: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(local date, local start, UTC offset) of each booking."""
    found = []
    for b in bookings:
        start = datetime.fromisoformat(b["start"]).astimezone(HELSINKI)
        found.append((start.date().isoformat(), start.strftime("%H:%M"), start.strftime("%z")))
    return found


def test_local_time_kept_across_the_spring_change(api: Api) -> None:
    api.premises("room", rules=FAR)
    change = next_change(3)
    first = change - timedelta(days=12)  # a Tuesday two weeks before the change
    response = series(api, local(first, 18), local(first, 20), "FREQ=WEEKLY;COUNT=4")
    assert response.status_code == 201, response.get_json()
    bookings = response.get_json()["bookings"]
    assert _local_times(bookings) == [
        ((first + timedelta(weeks=n)).isoformat(), "18:00", "+0200" if n < 2 else "+0300")
        for n in range(4)
    ]
    # The UTC start moves by an hour; the length stays two hours.
    utc = [datetime.fromisoformat(b["start"]).astimezone(UTC).hour for b in bookings]
    assert utc == [16, 16, 15, 15]
    for b in bookings:
        length = datetime.fromisoformat(b["end"]) - datetime.fromisoformat(b["start"])
        assert length == timedelta(hours=2)
    # The response itself shows local wall-clock time with the offset of the day.
    assert bookings[2]["start"].endswith("T18:00:00+03:00")


def test_local_time_kept_across_the_autumn_change(api: Api) -> None:
    api.premises("room", rules=FAR)
    change = next_change(10)
    first = change - timedelta(days=12)
    response = series(api, local(first, 18), local(first, 20), "FREQ=WEEKLY;COUNT=4")
    assert response.status_code == 201, response.get_json()
    bookings = response.get_json()["bookings"]
    assert _local_times(bookings) == [
        ((first + timedelta(weeks=n)).isoformat(), "18:00", "+0300" if n < 2 else "+0200")
        for n in range(4)
    ]
    assert bookings[3]["start"].endswith("T18:00:00+02:00")


def test_series_cancel_cancels_only_future_occurrences(api: Api) -> None:
    # Time is frozen so that two occurrences can lie in the past when the series is cancelled.
    with time_machine.travel("2027-01-04T10:00:00Z", tick=False) as clock:
        api.premises("room", rules=FAR)
        first = date(2027, 1, 5)  # a Tuesday
        placed = series(api, local(first, 18), local(first, 20), "FREQ=WEEKLY;COUNT=4")
        assert placed.status_code == 201, placed.get_json()
        body = placed.get_json()
        ids = [b["id"] for b in body["bookings"]]
        # The last one was cancelled on its own before.
        single = api.post(f"/api/v1/bookings/{ids[3]}/cancel", {"reason": "loma"}, "booker")
        assert single.status_code == 200

        clock.move_to("2027-01-13T10:00:00Z")  # after the 5th and the 12th
        path = f"/api/v1/booking-series/{body['series_id']}/cancel"
        stranger = api.user("booker", api.other_organisation_id)
        denied = api.client.post(
            path, json={"reason": "x"}, headers={"Authorization": f"Bearer {stranger}"}
        )
        assert denied.status_code == 403
        response = api.post(path, {"reason": "Kerho lopetettu"}, role="booker")
        assert response.status_code == 200, response.get_json()
        cancelled = response.get_json()
        assert cancelled["series_id"] == body["series_id"]
        assert [b["id"] for b in cancelled["bookings"]] == [ids[2]]
        assert cancelled["bookings"][0]["status"] == "cancelled"

        states = {i: api.get(f"/api/v1/bookings/{i}", role="booker").get_json() for i in ids}
        assert [states[i]["status"] for i in ids] == [
            "confirmed",
            "confirmed",
            "cancelled",
            "cancelled",
        ]
        assert states[ids[2]]["reason"] == "Kerho lopetettu"
        assert states[ids[3]]["reason"] == "loma"

        again = api.post(path, {"reason": "x"}, role="booker")
        assert again.status_code == 409
        assert api.post("/api/v1/booking-series/nope/cancel", {}, role="booker").status_code == 404


def test_series_for_approval_is_pending(api: Api) -> None:
    api.premises("hall", rules={**FAR, "requires_approval": True})
    day = future_weekday(1)
    response = series(
        api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=2", premises_id="hall"
    )
    assert response.status_code == 201
    assert [b["status"] for b in response.get_json()["bookings"]] == ["pending_approval"] * 2


def test_series_roles(api: Api) -> None:
    api.premises("room", rules=FAR)
    day = future_weekday(1)
    for role in ("resident", "analyst"):
        response = series(api, local(day, 18), local(day, 20), "FREQ=WEEKLY;COUNT=2", role=role)
        assert response.status_code == 403, role
    anonymous = api.client.post("/api/v1/booking-series", json={})
    assert anonymous.status_code == 401
    staff = series(
        api,
        local(day, 18),
        local(day, 20),
        "FREQ=WEEKLY;COUNT=2",
        role="staff",
        organisation_id=api.other_organisation_id,
    )
    assert staff.status_code == 201, staff.get_json()
    assert {b["organisation_id"] for b in staff.get_json()["bookings"]} == {
        api.other_organisation_id
    }
