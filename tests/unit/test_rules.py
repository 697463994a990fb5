"""`check_booking`: every rule a booking must keep, each at its boundary, as plain values."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from booking.domain.commands import Actor
from booking.domain.premises import PremisesState
from booking.domain.rules import check_booking, conflicts_with
from events.catalog import BookingCancelled, ClosureAdded, PremisesRetired
from events.slot import Slot
from tests.unit.domain_helpers import (
    BOOKER,
    MONDAY,
    NOW,
    ORG,
    OTHER_BOOKER,
    OTHER_ORG,
    PREMISES,
    STAFF,
    apply,
    local,
    place,
    premises,
    request,
    run,
    slot,
)

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def problems(
    state: PremisesState, when: Slot, actor: Actor = BOOKER, **fields: Any
) -> dict[str, list[str]]:
    fields.setdefault("organisation_id", actor.organisation_id)
    return check_booking(request(when, **fields), actor, state, NOW)


def test_a_good_booking_breaks_no_rule() -> None:
    assert problems(premises(), slot(MONDAY, (10, 0), (12, 0))) == {}


def test_a_retired_premises_takes_no_booking_and_says_only_that() -> None:
    state = premises(PremisesRetired(PREMISES, "renovation"))
    found = problems(state, slot(MONDAY, (3, 0), (3, 5)), attendees=500)
    assert list(found) == ["premises_id"]
    assert "no longer in use" in found["premises_id"][0]


def test_bookable_by_organisations_needs_an_organisation() -> None:
    found = problems(premises(), slot(MONDAY, (10, 0), (11, 0)), STAFF, organisation_id=None)
    assert "organisation_id" in found
    anyone = premises(rules={"bookable_by": "anyone"})
    assert problems(anyone, slot(MONDAY, (10, 0), (11, 0)), STAFF, organisation_id=None) == {}


def test_duration_limits_are_inclusive() -> None:
    state = premises(rules={"min_duration_minutes": 30, "max_duration_minutes": 120})
    assert problems(state, slot(MONDAY, (10, 0), (10, 30))) == {}
    assert problems(state, slot(MONDAY, (10, 0), (12, 0))) == {}
    assert "at least 30 minutes" in problems(state, slot(MONDAY, (10, 0), (10, 29)))["end"][0]
    assert "at most 120 minutes" in problems(state, slot(MONDAY, (10, 0), (12, 1)))["end"][0]


def test_min_notice_is_measured_from_the_commands_now() -> None:
    state = premises(opening_hours=ALL_DAY, rules={"min_notice_minutes": 60})
    on_time = Slot(NOW + timedelta(minutes=60), NOW + timedelta(minutes=120))
    assert problems(state, on_time) == {}
    too_soon = Slot(on_time.start - timedelta(seconds=1), on_time.end)
    assert "60 minutes ahead" in problems(state, too_soon)["start"][0]
    in_the_past = Slot(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert "start" in problems(state, in_the_past)


def test_max_advance_is_inclusive() -> None:
    state = premises(opening_hours=ALL_DAY, rules={"max_advance_days": 30})
    last = NOW + timedelta(days=30)
    assert problems(state, Slot(last, last + timedelta(hours=1))) == {}
    late = last + timedelta(minutes=1)
    assert "30 days ahead" in problems(state, Slot(late, late + timedelta(hours=1)))["start"][0]


def test_opening_hours() -> None:
    state = premises(opening_hours={"mon": [["08:00", "20:00"]]})
    assert problems(state, slot(MONDAY, (8, 0), (10, 0))) == {}
    assert problems(state, slot(MONDAY, (18, 0), (20, 0))) == {}
    assert "not open" in problems(state, slot(MONDAY, (7, 30), (9, 0)))["start"][0]
    assert "start" in problems(state, slot(MONDAY, (19, 30), (20, 30)))
    tuesday = MONDAY + timedelta(days=1)
    assert "start" in problems(state, slot(tuesday, (10, 0), (11, 0))), "closed on Tuesdays"


def test_opening_hours_past_midnight() -> None:
    state = premises(opening_hours={"fri": [["18:00", "02:00"]]})
    friday, saturday = date(2027, 1, 15), date(2027, 1, 16)
    assert problems(state, slot(friday, (18, 0), (20, 0))) == {}
    assert problems(state, slot(friday, (23, 0), (2, 0), end_day=saturday)) == {}
    assert problems(state, slot(saturday, (0, 30), (1, 30))) == {}, "Friday's hours, on Saturday"
    assert "start" in problems(state, slot(saturday, (1, 0), (3, 0)))
    assert "start" in problems(state, slot(saturday, (18, 0), (19, 0)))


def test_a_booking_crossing_midnight_between_two_days_opening_hours() -> None:
    state = premises(opening_hours={"mon": [["16:00", "24:00"]], "tue": [["00:00", "03:00"]]})
    tuesday = MONDAY + timedelta(days=1)
    assert problems(state, slot(MONDAY, (22, 0), (2, 0), end_day=tuesday)) == {}
    assert "start" in problems(state, slot(MONDAY, (23, 0), (3, 30), end_day=tuesday))


def test_capacity() -> None:
    state = premises(capacity=12)
    assert problems(state, slot(MONDAY, (10, 0), (11, 0)), attendees=12) == {}
    assert (
        "at most 12 people"
        in problems(state, slot(MONDAY, (10, 0), (11, 0)), attendees=13)["attendees"][0]
    )


def test_closures_block_what_they_overlap_and_nothing_else() -> None:
    closure = ClosureAdded(PREMISES, "c1", local(MONDAY, 12), local(MONDAY, 14), "floors")
    state = premises(closure)
    assert "closed" in problems(state, slot(MONDAY, (13, 0), (15, 0)))["start"][0]
    assert "start" in problems(state, slot(MONDAY, (11, 0), (15, 0)))
    assert problems(state, slot(MONDAY, (10, 0), (12, 0))) == {}, "touching is fine"
    assert problems(state, slot(MONDAY, (14, 0), (15, 0))) == {}


def test_every_problem_is_reported_at_once() -> None:
    state = premises(rules={"min_duration_minutes": 60}, capacity=2)
    found = problems(state, slot(MONDAY, (7, 0), (7, 15)), attendees=3)
    assert set(found) == {"end", "start", "attendees"}


# --- per-organisation quota ---------------------------------------------------------------


def booked(state: PremisesState, when: Slot, actor: Actor = BOOKER) -> str:
    command = place(when, actor=actor)
    run(state, command)
    return command.booking_id


def test_weekly_quota_counts_the_organisations_active_bookings_in_the_local_iso_week() -> None:
    state = premises(opening_hours=ALL_DAY, rules={"quota_hours_per_week": 4})
    first = booked(state, slot(MONDAY, (10, 0), (12, 0)))
    booked(state, slot(MONDAY + timedelta(days=6), (10, 0), (11, 0)), OTHER_BOOKER)
    wednesday = MONDAY + timedelta(days=2)
    assert problems(state, slot(wednesday, (10, 0), (12, 0))) == {}, "exactly the quota"
    over = problems(state, slot(wednesday, (10, 0), (12, 1)))
    assert over == {"end": ["Over the organisation's quota of 4 hours per week."]}
    assert problems(state, slot(wednesday, (10, 0), (13, 0)), OTHER_BOOKER) == {}
    assert problems(state, slot(MONDAY + timedelta(days=7), (10, 0), (13, 0))) == {}
    # A cancelled booking gives its hours back.
    apply(state, [BookingCancelled(PREMISES, first, BOOKER.user_id, "", False, NOW)])
    assert problems(state, slot(wednesday, (10, 0), (14, 0))) == {}


def test_weekly_quota_uses_the_local_week_not_the_utc_week() -> None:
    # Monday 01:00 in Helsinki is still Sunday 23:00 UTC: locally it opens a new week.
    state = premises(opening_hours=ALL_DAY, rules={"quota_hours_per_week": 3})
    sunday = MONDAY - timedelta(days=1)
    booked(state, slot(sunday, (10, 0), (12, 0)))
    next_monday_night = slot(MONDAY, (1, 0), (3, 0))
    assert next_monday_night.start.weekday() == 6, "a Sunday in UTC"
    assert problems(state, next_monday_night) == {}
    late_sunday = slot(sunday, (22, 0), (23, 30))
    assert "end" in problems(state, late_sunday)


def test_monthly_quota_uses_the_local_month() -> None:
    state = premises(opening_hours=ALL_DAY, rules={"quota_hours_per_month": 3})
    booked(state, slot(date(2027, 1, 20), (10, 0), (12, 0)))
    first_of_february = slot(date(2027, 2, 1), (0, 30), (2, 30))  # still 31 January in UTC
    assert first_of_february.start.month == 1
    assert problems(state, first_of_february) == {}
    assert "per month" in problems(state, slot(date(2027, 1, 31), (22, 0), (23, 30)))["end"][0]


def test_staff_are_not_held_to_the_quota() -> None:
    state = premises(opening_hours=ALL_DAY, rules={"quota_hours_per_week": 1})
    booked(state, slot(MONDAY, (10, 0), (11, 0)))
    assert "end" in problems(state, slot(MONDAY, (12, 0), (14, 0)))
    assert problems(state, slot(MONDAY, (12, 0), (14, 0)), STAFF, organisation_id=ORG) == {}


@pytest.mark.parametrize("quota", [0, 0.5])
def test_a_small_quota_refuses_even_a_first_booking(quota: float) -> None:
    state = premises(rules={"quota_hours_per_week": quota, "min_duration_minutes": 30})
    assert "end" in problems(state, slot(MONDAY, (10, 0), (11, 0)))


# --- conflicts_with -----------------------------------------------------------------------


def test_conflicts_include_the_buffer_on_both_sides_and_name_their_kind() -> None:
    state = premises(rules={"buffer_minutes": 15, "requires_approval": True})
    booked(state, slot(MONDAY, (10, 0), (11, 0)))  # pending: a hold
    booked(state, slot(MONDAY, (14, 0), (15, 0)), Actor("s", "staff", OTHER_ORG))
    assert conflicts_with(state, slot(MONDAY, (11, 15), (13, 45))) == []
    assert conflicts_with(state, slot(MONDAY, (11, 14), (12, 0))) == [
        (slot(MONDAY, (10, 0), (11, 0)), "hold")
    ]
    assert conflicts_with(state, slot(MONDAY, (13, 0), (13, 46))) == [
        (slot(MONDAY, (14, 0), (15, 0)), "booking")
    ]
    assert [kind for _, kind in conflicts_with(state, slot(MONDAY, (9, 0), (16, 0)))] == [
        "hold",
        "booking",
    ]
