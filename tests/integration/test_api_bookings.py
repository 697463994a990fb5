"""Bookings over HTTP on SQLite and PostgreSQL: place, every rule's 422, conflicts, reading,
listing, cancelling and the approval flow (API.md, "Bookings")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import time_machine

from tests.conftest import HELSINKI, Api, future_weekday, local
from tests.integration.test_api_log import event_count, warm_tokens

PROBLEM = "application/problem+json"


def errors_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == response.status_code
    return dict(body.get("errors") or {})


def other_booker(api: Api) -> str:
    """A booker of the other organisation (token)."""
    return api.user("booker", api.other_organisation_id)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def book_as(
    api: Api, role: str, premises_id: str, start: datetime, end: datetime, **extra: Any
) -> Any:
    """Book as `role` (conftest's `api.book(role=...)` leaves `role` in the body)."""
    body = {
        "premises_id": premises_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "title": "Kerhoilta",
        **extra,
    }
    return api.post("/api/v1/bookings", body, role=role)


# --- POST /api/v1/bookings ------------------------------------------------------------------


def test_placed_booking_has_the_documented_fields(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    response = api.book(
        "room", local(day, 10), local(day, 12), title="Shakkiturnaus", public=True, attendees=8
    )
    assert response.status_code == 201, response.get_json()
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert {
        "id",
        "status",
        "premises_id",
        "organisation_id",
        "start",
        "end",
        "title",
        "public",
        "version",
        "created_at",
    } <= set(body)
    assert body["status"] == "confirmed"
    assert body["premises_id"] == "room"
    assert body["organisation_id"] == api.organisation_id
    assert body["title"] == "Shakkiturnaus"
    assert body["public"] is True
    assert body["version"] == 1
    assert body["attendees"] == 8
    # Instants carry an offset and name the same instants that were asked for.
    assert datetime.fromisoformat(body["start"]) == local(day, 10)
    assert datetime.fromisoformat(body["end"]) == local(day, 12)
    assert body["start"] == local(day, 10).isoformat()
    created = datetime.fromisoformat(body["created_at"])
    assert created.tzinfo is not None
    assert abs(created - datetime.now(HELSINKI)) < timedelta(minutes=5)
    assert response.headers["Location"].endswith(f"/api/v1/bookings/{body['id']}")
    assert api.get(f"/api/v1/bookings/{body['id']}", role="booker").get_json() == body


def test_start_in_utc_is_the_same_instant(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    response = api.book("room", local(day, 10).astimezone(UTC), local(day, 11).astimezone(UTC))
    assert response.status_code == 201
    # Answers are in the premises' zone, whatever offset the client used.
    assert response.get_json()["start"] == local(day, 10).isoformat()
    assert response.get_json()["end"] == local(day, 11).isoformat()


def test_taken_slot_is_409_with_conflicts_and_buffer(api: Api) -> None:
    api.premises("room", rules={"buffer_minutes": 30})
    day = future_weekday(2)
    assert api.book("room", local(day, 10), local(day, 12)).status_code == 201
    warm_tokens(api, "booker")
    before = event_count(api)
    for start, end in [
        (local(day, 11), local(day, 13)),  # plain overlap
        (local(day, 12, 15), local(day, 13)),  # inside the buffer after
        (local(day, 9), local(day, 9, 45)),  # inside the buffer before
    ]:
        response = api.book("room", start, end)
        assert response.status_code == 409, (start, response.get_json())
        assert response.mimetype == PROBLEM
        conflicts = response.get_json()["conflicts"]
        assert len(conflicts) == 1
        assert set(conflicts[0]) >= {"start", "end", "kind"}
        assert conflicts[0]["kind"] == "booking"
        assert datetime.fromisoformat(conflicts[0]["start"]) == local(day, 10)
        assert datetime.fromisoformat(conflicts[0]["end"]) == local(day, 12)
    assert event_count(api) == before
    # Just outside the buffer is fine.
    assert api.book("room", local(day, 12, 30), local(day, 13)).status_code == 201


def _rule_cases(day: date) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(premises rules/overrides, booking overrides, field named in errors)."""
    return [
        ({}, {"start": local(day, 7), "end": local(day, 9)}, "start"),  # opens at 08:00
        ({}, {"start": local(day, 21), "end": local(day, 23)}, "start"),  # closes at 22:00
        ({"rules": {"min_duration_minutes": 60}}, {"end": local(day, 10, 30)}, "end"),
        ({"rules": {"max_duration_minutes": 60}}, {"end": local(day, 12)}, "end"),
        ({"rules": {"min_notice_minutes": 60 * 24 * 30}}, {}, "start"),
        ({"rules": {"max_advance_days": 3}}, {}, "start"),
        ({"capacity": 4}, {"attendees": 5}, "attendees"),
    ]


def test_each_broken_rule_is_422_naming_the_field(api: Api) -> None:
    day = future_weekday(2)
    warm_tokens(api, "staff", "booker")
    for n, (premises, _booking, _field) in enumerate(_rule_cases(day)):
        api.premises(f"room-{n}", **premises)
    before = event_count(api)
    for n, (_premises, booking, field) in enumerate(_rule_cases(day)):
        start = booking.pop("start", local(day, 10))
        end = booking.pop("end", local(day, 11))
        response = api.book(f"room-{n}", start, end, **booking)
        assert response.status_code == 422, (n, response.get_json())
        assert field in errors_of(response), (n, response.get_json())
        assert response.get_json()["errors"][field], n
    assert event_count(api) == before


def test_closed_period_is_422(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    closure = {
        "start": local(day, 12).isoformat(),
        "end": local(day, 14).isoformat(),
        "reason": "Siivous",
    }
    assert api.post("/api/v1/premises/room/closures", closure, role="staff").status_code == 201
    response = api.book("room", local(day, 13), local(day, 15))
    assert response.status_code == 422
    assert "start" in errors_of(response)
    assert api.book("room", local(day, 14), local(day, 15)).status_code == 201


def test_weekly_quota_per_organisation(api: Api) -> None:
    api.premises("room", rules={"quota_hours_per_week": 3})
    monday = future_weekday(0)
    assert api.book("room", local(monday, 10), local(monday, 12)).status_code == 201
    friday = monday + timedelta(days=4)
    over = api.book("room", local(friday, 10), local(friday, 11, 30))
    assert over.status_code == 422
    assert "end" in errors_of(over)
    assert "quota" in " ".join(over.get_json()["errors"]["end"]).lower()
    # Exactly up to the quota is fine; the next week starts afresh; another organisation too.
    assert api.book("room", local(friday, 10), local(friday, 11)).status_code == 201
    next_monday = monday + timedelta(days=7)
    assert api.book("room", local(next_monday, 10), local(next_monday, 13)).status_code == 201
    other = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(friday, 14).isoformat(),
            "end": local(friday, 17).isoformat(),
            "title": "Kyläilta",
        },
        headers=auth(other_booker(api)),
    )
    assert other.status_code == 201, other.get_json()


def test_monthly_quota_per_organisation(api: Api) -> None:
    api.premises("room", rules={"quota_hours_per_month": 3})
    today = datetime.now(HELSINKI).date()
    first = (today.replace(day=1) + timedelta(days=62)).replace(day=1)  # a month well ahead
    assert api.book("room", local(first, 10), local(first, 12)).status_code == 201
    later = first + timedelta(days=14)  # the same month, another week
    over = api.book("room", local(later, 10), local(later, 11, 30))
    assert over.status_code == 422
    assert "end" in errors_of(over)
    next_month = (first + timedelta(days=40)).replace(day=1)
    assert api.book("room", local(next_month, 10), local(next_month, 12)).status_code == 201


def test_opening_hours_past_midnight(api: Api) -> None:
    api.premises(
        "night-club",
        opening_hours={"fri": [["18:00", "02:00"]], "sat": [["18:00", "02:00"]]},
    )
    friday = future_weekday(4)
    saturday = friday + timedelta(days=1)
    across = api.book("night-club", local(friday, 23), local(saturday, 1, 30))
    assert across.status_code == 201, across.get_json()
    assert across.get_json()["end"] == local(saturday, 1, 30).isoformat()
    too_late = api.book("night-club", local(saturday, 1, 30), local(saturday, 3))
    assert too_late.status_code == 422
    # Saturday's own evening is open; Saturday's afternoon is not.
    assert api.book("night-club", local(saturday, 18), local(saturday, 20)).status_code == 201
    assert api.book("night-club", local(saturday, 12), local(saturday, 13)).status_code == 422


def test_unknown_premises_is_404(api: Api) -> None:
    day = future_weekday(2)
    response = api.book("nowhere", local(day, 10), local(day, 11))
    assert response.status_code == 404
    assert response.mimetype == PROBLEM


def test_booker_cannot_book_for_another_organisation(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    response = api.book(
        "room", local(day, 10), local(day, 11), organisation_id=api.other_organisation_id
    )
    assert response.status_code == 403
    staff = book_as(
        api,
        "staff",
        "room",
        local(day, 10),
        local(day, 11),
        organisation_id=api.other_organisation_id,
    )
    assert staff.status_code == 201, staff.get_json()
    assert staff.get_json()["organisation_id"] == api.other_organisation_id


# --- reading --------------------------------------------------------------------------------


def test_get_one_visibility(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    path = f"/api/v1/bookings/{booking['id']}"
    colleague = api.user("booker", api.organisation_id)
    assert api.client.get(path, headers=auth(colleague)).status_code == 200
    stranger = api.client.get(path, headers=auth(other_booker(api)))
    assert stranger.status_code == 403
    assert stranger.mimetype == PROBLEM
    assert api.get(path, role="staff").get_json()["id"] == booking["id"]
    assert api.get(path, role="admin").status_code == 200
    assert api.get(path).status_code == 401
    assert api.get("/api/v1/bookings/no-such-booking", role="staff").status_code == 404


def test_list_filters_and_visibility(api: Api) -> None:
    api.premises("room")
    api.premises("hall")
    d1 = future_weekday(1)
    d2 = d1 + timedelta(days=7)
    a = api.book("room", local(d1, 10), local(d1, 11)).get_json()
    b = api.book("hall", local(d1, 10), local(d1, 11)).get_json()
    c = api.book("room", local(d2, 10), local(d2, 11)).get_json()
    theirs = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(d1, 14).isoformat(),
            "end": local(d1, 15).isoformat(),
            "title": "Kyläilta",
        },
        headers=auth(other_booker(api)),
    ).get_json()
    api.post(f"/api/v1/bookings/{c['id']}/cancel", {"reason": "sairaus"}, role="booker")

    def listed(query: str, role: str = "booker") -> list[str]:
        response = api.get(f"/api/v1/bookings?{query}", role=role)
        assert response.status_code == 200, response.get_json()
        return [x["id"] for x in response.get_json()["bookings"]]

    assert set(listed("")) == {a["id"], b["id"], c["id"]}
    assert set(listed("", role="staff")) == {a["id"], b["id"], c["id"], theirs["id"]}
    assert set(listed("premises_id=hall")) == {b["id"]}
    assert set(listed(f"from={d2}&to={d2}")) == {c["id"]}
    assert set(listed(f"from={d1}&to={d1}", role="staff")) == {a["id"], b["id"], theirs["id"]}
    assert set(listed(f"to={d1}")) == {a["id"], b["id"]}
    assert set(listed("status=cancelled")) == {c["id"]}
    assert set(listed("status=confirmed&premises_id=room")) == {a["id"]}
    # Sorted by start.
    starts = [x["start"] for x in api.get("/api/v1/bookings", role="staff").get_json()["bookings"]]
    assert [datetime.fromisoformat(s) for s in starts] == sorted(
        datetime.fromisoformat(s) for s in starts
    )
    for bad in ("from=tomorrow", "status=happy", "limit=0"):
        response = api.get(f"/api/v1/bookings?{bad}", role="booker")
        assert response.status_code == 422, bad
        assert bad.split("=")[0] in errors_of(response), bad
    assert api.get("/api/v1/bookings").status_code == 401


# --- cancelling -----------------------------------------------------------------------------


def test_cancel_before_and_after_the_deadline(api: Api) -> None:
    api.premises("early", rules={"cancellation_deadline_minutes": 60})
    api.premises("strict", rules={"cancellation_deadline_minutes": 60 * 24 * 30})
    day = future_weekday(2)
    early = api.book("early", local(day, 10), local(day, 11)).get_json()
    strict = api.book("strict", local(day, 10), local(day, 11)).get_json()

    response = api.post(f"/api/v1/bookings/{early['id']}/cancel", {"reason": "flu"}, "booker")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["late"] is False
    assert body["version"] == 2
    assert body["id"] == early["id"]

    late = api.post(f"/api/v1/bookings/{strict['id']}/cancel", {"reason": "flu"}, "booker")
    assert late.status_code == 200
    assert late.get_json()["late"] is True
    assert api.get(f"/api/v1/bookings/{strict['id']}", role="booker").get_json()["late"] is True

    # The slot is free again.
    assert api.book("early", local(day, 10), local(day, 11)).status_code == 201


def test_cancel_refusals(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    path = f"/api/v1/bookings/{booking['id']}/cancel"
    warm_tokens(api, "booker", "resident", "analyst")
    stranger = other_booker(api)
    before = event_count(api)
    response = api.client.post(path, json={"reason": "x"}, headers=auth(stranger))
    assert response.status_code == 403
    assert response.mimetype == PROBLEM
    for role in ("resident", "analyst"):
        assert api.post(path, {"reason": "x"}, role=role).status_code == 403, role
    assert api.post(path, {"reason": "x"}).status_code == 401
    assert api.post("/api/v1/bookings/nope/cancel", {}, role="booker").status_code == 404
    assert event_count(api) == before

    assert api.post(path, {"reason": "x"}, role="booker").status_code == 200
    again = api.post(path, {"reason": "x"}, role="booker")
    assert again.status_code == 409
    assert again.mimetype == PROBLEM
    # Staff may cancel any organisation's booking (and find it already cancelled here).
    assert api.post(path, {}, role="staff").status_code == 409


def test_a_booking_that_is_over_cannot_be_cancelled(api: Api) -> None:
    # Time is frozen so that the booking can be placed and then lie in the past.
    with time_machine.travel("2027-01-04T10:00:00Z", tick=False) as clock:
        api.premises("room")
        day = date(2027, 1, 5)
        booking = api.book("room", local(day, 10), local(day, 11)).get_json()
        clock.move_to("2027-01-05T09:30:00Z")  # 11:30 in Helsinki: the booking is over
        response = api.post(f"/api/v1/bookings/{booking['id']}/cancel", {}, role="booker")
        assert response.status_code == 409
        assert response.mimetype == PROBLEM
        seen = api.get(f"/api/v1/bookings/{booking['id']}", role="booker").get_json()
        assert seen["status"] == "confirmed"


def test_staff_cancel_any_booking(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    response = api.post(f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "x"}, "staff")
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"


def test_cancel_with_if_match(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    path = f"/api/v1/bookings/{booking['id']}/cancel"
    stale = api.post(path, {}, role="booker", headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert api.get(path.removesuffix("/cancel"), role="booker").get_json()["status"] == "confirmed"
    ok = api.post(path, {}, role="booker", headers={"If-Match": '"1"'})
    assert ok.status_code == 200


# --- approval -------------------------------------------------------------------------------


def test_approval_flow(api: Api) -> None:
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(2)
    pending = api.book("hall", local(day, 10), local(day, 12))
    assert pending.status_code == 201
    held = pending.get_json()
    assert held["status"] == "pending_approval"

    # A pending booking holds its slot.
    rival_token = other_booker(api)
    rival_body = {
        "premises_id": "hall",
        "start": local(day, 11).isoformat(),
        "end": local(day, 13).isoformat(),
        "title": "Kyläilta",
    }
    rival = api.client.post("/api/v1/bookings", json=rival_body, headers=auth(rival_token))
    assert rival.status_code == 409
    assert rival.get_json()["conflicts"][0]["kind"] == "hold"

    # Bookers do not decide.
    denied = api.post(f"/api/v1/bookings/{held['id']}/approve", role="booker")
    assert denied.status_code == 403
    assert api.post(f"/api/v1/bookings/{held['id']}/reject", {}, role="booker").status_code == 403

    rejected = api.post(
        f"/api/v1/bookings/{held['id']}/reject", {"reason": "Päällekkäinen tapahtuma"}, "staff"
    )
    assert rejected.status_code == 200, rejected.get_json()
    assert rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["reason"] == "Päällekkäinen tapahtuma"
    # Rejection frees the slot.
    second = api.client.post("/api/v1/bookings", json=rival_body, headers=auth(rival_token))
    assert second.status_code == 201
    assert second.get_json()["status"] == "pending_approval"
    approved = api.post(f"/api/v1/bookings/{second.get_json()['id']}/approve", role="staff")
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "confirmed"
    assert approved.get_json()["version"] == 2

    # Deciding twice is a conflict.
    assert (
        api.post(f"/api/v1/bookings/{second.get_json()['id']}/approve", role="staff").status_code
        == 409
    )
    assert api.post(f"/api/v1/bookings/{held['id']}/approve", role="staff").status_code == 409
    assert api.post("/api/v1/bookings/nope/approve", role="staff").status_code == 404


def test_approve_and_reject_honour_if_match(api: Api) -> None:
    # API.md: every resource that changes carries `version`; a stale If-Match gets 412.
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(2)
    first = api.book("hall", local(day, 10), local(day, 11)).get_json()
    second = api.book("hall", local(day, 12), local(day, 13)).get_json()
    approve = f"/api/v1/bookings/{first['id']}/approve"
    stale = api.post(approve, role="staff", headers={"If-Match": '"2"'})
    assert stale.status_code == 412
    assert stale.mimetype == PROBLEM
    assert stale.get_json()["current_version"] == 1
    seen = api.get(f"/api/v1/bookings/{first['id']}", role="booker").get_json()
    assert seen["status"] == "pending_approval"
    approved = api.post(approve, role="staff", headers={"If-Match": '"1"'})
    assert approved.status_code == 200
    assert approved.get_json()["version"] == 2

    reject = f"/api/v1/bookings/{second['id']}/reject"
    before = event_count(api)
    stale = api.post(reject, {"reason": "x"}, "staff", headers={"If-Match": '"5"'})
    assert stale.status_code == 412
    assert event_count(api) == before
    rejected = api.post(reject, {"reason": "x"}, "staff", headers={"If-Match": '"1"'})
    assert rejected.status_code == 200
    assert rejected.get_json()["status"] == "rejected"


def test_staff_bookings_skip_approval_and_confirmed_cannot_be_approved(api: Api) -> None:
    api.premises("hall", rules={"requires_approval": True})
    api.premises("room")
    day = future_weekday(2)
    by_staff = book_as(
        api, "staff", "hall", local(day, 10), local(day, 11), organisation_id=api.organisation_id
    )
    assert by_staff.get_json()["status"] == "confirmed"
    plain = api.book("room", local(day, 10), local(day, 11)).get_json()
    assert plain["status"] == "confirmed"
    response = api.post(f"/api/v1/bookings/{plain['id']}/approve", role="staff")
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
