"""decide(command, premises): every decision about a premises, proved with plain values.

State is always built by evolving real events, and every successful decision is evolved too
(`run`), so these tests also prove that `evolve` understands what `decide` emits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from booking.domain.commands import (
    Actor,
    AddClosure,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceSeries,
    RegisterPremises,
    RetirePremises,
    UpdatePremises,
)
from booking.domain.decide import decide, occurrence_id
from booking.domain.errors import (
    Conflict,
    InvalidState,
    NotAllowed,
    NotFound,
    RuleBroken,
    SlotTaken,
    StaleVersion,
)
from booking.domain.premises import PremisesState
from events.catalog import (
    PREMISES_RETIRED,
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    BookingSeriesCancelled,
    BookingSeriesPlaced,
    ClosureAdded,
    PremisesRegistered,
    PremisesRetired,
    PremisesUpdated,
)
from events.slot import Slot
from tests.unit.domain_helpers import (
    ADMIN,
    BOOKER,
    HELSINKI,
    MONDAY,
    NOW,
    ORG,
    OTHER_BOOKER,
    OTHER_ORG,
    PREMISES,
    RESIDENT,
    STAFF,
    local,
    place,
    premises,
    profile,
    request,
    run,
    slot,
)

TEN_TO_ELEVEN = slot(MONDAY, (10, 0), (11, 0))


def booked(state: PremisesState, when: Slot = TEN_TO_ELEVEN, actor: Actor = BOOKER) -> str:
    command = place(when, actor=actor)
    run(state, command)
    return command.booking_id


# --- placing a booking --------------------------------------------------------------------


def test_a_booker_places_a_confirmed_booking_for_its_organisation() -> None:
    state = premises()
    command = place(TEN_TO_ELEVEN, title="Kuoroharjoitus", attendees=8, public=True)
    (event,) = run(state, command)
    assert event == BookingPlaced(
        premises_id=PREMISES,
        booking_id=command.booking_id,
        organisation_id=ORG,
        booked_by=BOOKER.user_id,
        start=TEN_TO_ELEVEN.start,
        end=TEN_TO_ELEVEN.end,
        title="Kuoroharjoitus",
        attendees=8,
        public=True,
        notes="",
        status="confirmed",
        placed_at=NOW,
        series_id=None,
    )
    record = state.bookings[command.booking_id]
    assert (record.status, record.slot, record.version) == ("confirmed", TEN_TO_ELEVEN, 1)


def test_requires_approval_makes_a_bookers_booking_pending_but_not_staffs() -> None:
    state = premises(rules={"requires_approval": True})
    (pending,) = run(state, place(TEN_TO_ELEVEN))
    assert isinstance(pending, BookingPlaced) and pending.status == "pending_approval"
    later = slot(MONDAY, (12, 0), (13, 0))
    (by_staff,) = run(state, place(later, actor=STAFF, organisation_id=ORG))
    assert isinstance(by_staff, BookingPlaced) and by_staff.status == "confirmed"


@pytest.mark.parametrize(
    ("actor", "organisation_id"),
    [(RESIDENT, None), (Actor("u-analyst", "analyst", ORG), ORG), (BOOKER, OTHER_ORG)],
)
def test_who_may_not_book(actor: Actor, organisation_id: str | None) -> None:
    state = premises()
    with pytest.raises(NotAllowed):
        decide(place(TEN_TO_ELEVEN, actor=actor, organisation_id=organisation_id), state)
    assert state.bookings == {}


def test_staff_and_admin_may_book_for_any_organisation() -> None:
    state = premises()
    run(state, place(TEN_TO_ELEVEN, actor=STAFF, organisation_id=OTHER_ORG))
    run(state, place(slot(MONDAY, (12, 0), (13, 0)), actor=ADMIN, organisation_id=ORG))
    assert sorted(b.organisation_id or "" for b in state.bookings.values()) == [ORG, OTHER_ORG]


def test_booking_an_unknown_premises_is_not_found() -> None:
    with pytest.raises(NotFound):
        decide(place(TEN_TO_ELEVEN), PremisesState("nowhere"))


def test_a_broken_rule_names_its_field() -> None:
    with pytest.raises(RuleBroken) as refused:
        decide(place(slot(MONDAY, (6, 0), (7, 0))), premises())
    assert list(refused.value.problems) == ["start"]


def test_a_retired_premises_takes_no_booking() -> None:
    state = premises(PremisesRetired(PREMISES, "sold"))
    with pytest.raises(RuleBroken) as refused:
        decide(place(TEN_TO_ELEVEN), state)
    assert list(refused.value.problems) == ["premises_id"]


# --- conflicts ----------------------------------------------------------------------------


def test_slot_taken_lists_every_conflicting_interval_in_order() -> None:
    state = premises()
    booked(state, slot(MONDAY, (12, 0), (13, 0)))
    booked(state, slot(MONDAY, (9, 0), (10, 30)), OTHER_BOOKER)
    booked(state, slot(MONDAY, (15, 0), (16, 0)))
    with pytest.raises(SlotTaken) as taken:
        decide(place(slot(MONDAY, (10, 0), (12, 30)), actor=STAFF, organisation_id=ORG), state)
    assert taken.value.conflicts == [
        Conflict(slot(MONDAY, (9, 0), (10, 30)), "booking"),
        Conflict(slot(MONDAY, (12, 0), (13, 0)), "booking"),
    ]


def test_touching_bookings_do_not_conflict_without_a_buffer() -> None:
    state = premises()
    booked(state)
    booked(state, slot(MONDAY, (11, 0), (12, 0)))
    booked(state, slot(MONDAY, (9, 0), (10, 0)))
    assert len(state.bookings) == 3


@pytest.mark.parametrize(
    ("start", "end", "free"),
    [
        ((11, 15), (12, 0), True),  # exactly the buffer after
        ((11, 14), (12, 0), False),
        ((9, 0), (9, 45), True),  # exactly the buffer before
        ((9, 0), (9, 46), False),
        ((10, 30), (11, 30), False),
    ],
)
def test_the_buffer_keeps_a_gap_on_both_sides(
    start: tuple[int, int], end: tuple[int, int], free: bool
) -> None:
    state = premises(rules={"buffer_minutes": 15})
    booked(state)
    command = place(slot(MONDAY, start, end), actor=OTHER_BOOKER)
    if free:
        run(state, command)
    else:
        with pytest.raises(SlotTaken) as taken:
            decide(command, state)
        assert taken.value.conflicts == [Conflict(TEN_TO_ELEVEN, "booking")]


def test_a_pending_booking_holds_its_slot_until_rejected() -> None:
    state = premises(rules={"requires_approval": True})
    pending = booked(state)
    with pytest.raises(SlotTaken) as taken:
        decide(place(TEN_TO_ELEVEN, actor=STAFF, organisation_id=OTHER_ORG), state)
    assert taken.value.conflicts == [Conflict(TEN_TO_ELEVEN, "hold")]
    (rejected,) = run(state, DecideBooking(STAFF, pending, False, "double booked", NOW))
    assert rejected == BookingRejected(PREMISES, pending, STAFF.user_id, "double booked", NOW)
    assert state.bookings[pending].status == "rejected"
    booked(state, TEN_TO_ELEVEN, OTHER_BOOKER)


def test_an_approved_booking_keeps_its_slot_as_a_booking() -> None:
    state = premises(rules={"requires_approval": True})
    pending = booked(state)
    (approved,) = run(state, DecideBooking(STAFF, pending, True, "", NOW))
    assert approved == BookingApproved(PREMISES, pending, STAFF.user_id, NOW)
    assert (state.bookings[pending].status, state.bookings[pending].version) == ("confirmed", 2)
    with pytest.raises(SlotTaken) as taken:
        decide(place(TEN_TO_ELEVEN, actor=OTHER_BOOKER), state)
    assert taken.value.conflicts == [Conflict(TEN_TO_ELEVEN, "booking")]


def test_a_cancelled_booking_frees_its_slot() -> None:
    state = premises()
    first = booked(state)
    run(state, CancelBooking(BOOKER, first, "", NOW))
    booked(state, TEN_TO_ELEVEN, OTHER_BOOKER)


# --- approve and reject -------------------------------------------------------------------


@pytest.mark.parametrize("approve", [True, False])
def test_only_pending_bookings_are_approved_or_rejected(approve: bool) -> None:
    state = premises()
    confirmed = booked(state)
    with pytest.raises(InvalidState, match="confirmed"):
        decide(DecideBooking(STAFF, confirmed, approve, "", NOW), state)
    state = premises(rules={"requires_approval": True})
    pending = booked(state)
    run(state, DecideBooking(STAFF, pending, False, "no", NOW))
    with pytest.raises(InvalidState, match="rejected"):
        decide(DecideBooking(STAFF, pending, approve, "", NOW), state)
    cancelled = booked(state, slot(MONDAY, (12, 0), (13, 0)))
    run(state, CancelBooking(BOOKER, cancelled, "", NOW))
    with pytest.raises(InvalidState, match="cancelled"):
        decide(DecideBooking(STAFF, cancelled, approve, "", NOW), state)


def test_only_staff_approve_and_unknown_bookings_are_not_found() -> None:
    state = premises(rules={"requires_approval": True})
    pending = booked(state)
    with pytest.raises(NotAllowed):
        decide(DecideBooking(BOOKER, pending, True, "", NOW), state)
    with pytest.raises(NotFound):
        decide(DecideBooking(STAFF, "missing", True, "", NOW), state)


# --- cancelling ---------------------------------------------------------------------------


def test_cancelling_exactly_at_the_deadline_is_not_late_and_a_moment_after_is() -> None:
    state = premises(rules={"cancellation_deadline_minutes": 1440})
    booking = booked(state)
    deadline = TEN_TO_ELEVEN.start - timedelta(days=1)
    (on_time,) = decide(CancelBooking(BOOKER, booking, "ill", deadline), state)
    assert on_time == BookingCancelled(PREMISES, booking, BOOKER.user_id, "ill", False, deadline)
    moment_after = deadline + timedelta(microseconds=1)
    (late,) = decide(CancelBooking(BOOKER, booking, "ill", moment_after), state)
    assert isinstance(late, BookingCancelled) and late.late is True
    # A booking that has begun but not ended can still be cancelled, late.
    (during,) = decide(CancelBooking(BOOKER, booking, "", TEN_TO_ELEVEN.start), state)
    assert isinstance(during, BookingCancelled) and during.late is True


def test_a_booking_that_is_over_cannot_be_cancelled() -> None:
    state = premises()
    booking = booked(state)
    with pytest.raises(InvalidState, match="over"):
        decide(CancelBooking(BOOKER, booking, "", TEN_TO_ELEVEN.end), state)


def test_cancelling_twice_is_invalid() -> None:
    state = premises()
    booking = booked(state)
    run(state, CancelBooking(BOOKER, booking, "", NOW))
    assert (state.bookings[booking].status, state.bookings[booking].version) == ("cancelled", 2)
    with pytest.raises(InvalidState, match="already cancelled"):
        decide(CancelBooking(BOOKER, booking, "", NOW), state)


def test_another_organisation_may_not_cancel_but_staff_may() -> None:
    state = premises()
    booking = booked(state)
    for outsider in (OTHER_BOOKER, RESIDENT, Actor("u-x", "booker", None)):
        with pytest.raises(NotAllowed):
            decide(CancelBooking(outsider, booking, "", NOW), state)
    colleague = Actor("u-colleague", "booker", ORG)
    (event,) = decide(CancelBooking(colleague, booking, "", NOW), state)
    assert isinstance(event, BookingCancelled) and event.cancelled_by == colleague.user_id


def test_staff_may_cancel_any_booking() -> None:
    state = premises()
    booking = booked(state)
    (event,) = run(state, CancelBooking(STAFF, booking, "maintenance", NOW))
    assert isinstance(event, BookingCancelled) and event.cancelled_by == STAFF.user_id


def test_cancel_with_a_stale_version_is_refused() -> None:
    state = premises(rules={"requires_approval": True})
    booking = booked(state)
    run(state, DecideBooking(STAFF, booking, True, "", NOW))
    with pytest.raises(StaleVersion) as stale:
        decide(CancelBooking(BOOKER, booking, "", NOW, expected_version=1), state)
    assert stale.value.current == 2
    assert decide(CancelBooking(BOOKER, booking, "", NOW, expected_version=2), state)


def test_cancelling_an_unknown_booking_is_not_found() -> None:
    with pytest.raises(NotFound):
        decide(CancelBooking(STAFF, "missing", "", NOW), premises())


# --- series -------------------------------------------------------------------------------

SERIES = "7b7c1f5e-3c4e-4f57-9d3e-0c1d2e3f4a5b"


def series(
    first: Slot,
    rrule: str,
    on_conflict: str = "skip",
    actor: Actor = BOOKER,
    series_id: str = SERIES,
) -> PlaceSeries:
    organisation = actor.organisation_id or ORG
    return PlaceSeries(
        actor, series_id, request(first, organisation_id=organisation), rrule, on_conflict, NOW
    )


def test_a_weekly_series_books_every_occurrence_after_its_header() -> None:
    state = premises()
    events = run(state, series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=3"))
    header, *placed = events
    assert header == BookingSeriesPlaced(
        premises_id=PREMISES,
        series_id=SERIES,
        rrule="FREQ=WEEKLY;COUNT=3",
        organisation_id=ORG,
        booked_by=BOOKER.user_id,
        placed_at=NOW,
        skipped=[],
    )
    assert [e.booking_id for e in placed if isinstance(e, BookingPlaced)] == [
        occurrence_id(SERIES, n) for n in range(3)
    ]
    assert [e.start.astimezone(HELSINKI).hour for e in placed if isinstance(e, BookingPlaced)] == [
        18,
        18,
        18,
    ]
    assert state.series[SERIES].booking_ids == [occurrence_id(SERIES, n) for n in range(3)]


def test_deciding_a_series_twice_gives_the_same_occurrence_ids() -> None:
    command = series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=2")
    assert decide(command, premises()) == decide(command, premises())
    assert occurrence_id(SERIES, 0) == str(uuid.uuid5(uuid.UUID(SERIES), "0"))


def test_a_series_across_the_spring_change_stays_at_18_local() -> None:
    state = premises(rules={"max_advance_days": 365})
    first = slot(date(2027, 3, 15), (18, 0), (20, 0))
    placed = run(state, series(first, "FREQ=WEEKLY;COUNT=3"))[1:]
    starts = [e.start for e in placed if isinstance(e, BookingPlaced)]
    assert [s.astimezone(HELSINKI).hour for s in starts] == [18, 18, 18]
    assert [s.hour for s in starts] == [16, 16, 15]


def test_skip_records_each_skipped_occurrence_with_its_reason() -> None:
    state = premises(opening_hours={"mon": [["08:00", "22:00"]]}, rules={"max_advance_days": 20})
    taken = slot(MONDAY + timedelta(days=7), (18, 0), (19, 0))
    booked(state, taken, OTHER_BOOKER)
    header, *placed = run(state, series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=3"))
    assert isinstance(header, BookingSeriesPlaced)
    assert len(placed) == 1
    week_2, week_3 = (MONDAY + timedelta(days=7 * n) for n in (1, 2))
    assert header.skipped == [
        {
            "start": local(week_2, 18).isoformat(),
            "end": local(week_2, 20).isoformat(),
            "reason": "conflict",
        },
        {
            "start": local(week_3, 18).isoformat(),
            "end": local(week_3, 20).isoformat(),
            "reason": "start: Book at most 20 days ahead.",
        },
    ]


def test_fail_raises_at_the_first_bad_occurrence_and_returns_nothing() -> None:
    state = premises()
    booked(state, slot(MONDAY + timedelta(days=14), (19, 0), (21, 0)), OTHER_BOOKER)
    version = state.version
    with pytest.raises(SlotTaken) as taken:
        decide(series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=3", "fail"), state)
    assert taken.value.conflicts == [
        Conflict(slot(MONDAY + timedelta(days=14), (19, 0), (21, 0)), "booking")
    ]
    assert state.version == version and SERIES not in state.series
    with pytest.raises(RuleBroken):
        decide(series(slot(MONDAY, (21, 0), (23, 0)), "FREQ=WEEKLY;COUNT=3", "fail"), state)


def test_occurrences_are_checked_against_each_other() -> None:
    # A 21-hour buffer: Monday 22:00-02:00 and Tuesday 22:00-02:00 are 20 hours apart.
    state = premises(
        opening_hours={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed")},
        rules={"buffer_minutes": 21 * 60},
    )
    tuesday = MONDAY + timedelta(days=1)
    first = slot(MONDAY, (22, 0), (2, 0), end_day=tuesday)
    header, *placed = run(state, series(first, "FREQ=WEEKLY;BYDAY=MO,TU;COUNT=4"))
    assert isinstance(header, BookingSeriesPlaced)
    assert [s["reason"] for s in header.skipped] == ["conflict", "conflict"]
    assert len(placed) == 2
    fresh = premises(
        opening_hours={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed")},
        rules={"buffer_minutes": 21 * 60},
    )
    with pytest.raises(SlotTaken) as taken:
        decide(series(first, "FREQ=WEEKLY;BYDAY=MO,TU;COUNT=2", "fail"), fresh)
    assert taken.value.conflicts == [Conflict(first, "booking")]


def test_the_quota_counts_earlier_occurrences_of_the_same_series() -> None:
    state = premises(rules={"quota_hours_per_week": 3})
    header, *placed = run(state, series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=DAILY;COUNT=3"))
    assert isinstance(header, BookingSeriesPlaced)
    assert len(placed) == 1
    assert all("quota" in s["reason"] for s in header.skipped) and len(header.skipped) == 2


def test_a_series_nothing_of_which_can_be_booked_is_refused() -> None:
    state = premises()
    with pytest.raises(RuleBroken) as refused:
        decide(series(slot(MONDAY, (6, 0), (7, 0)), "FREQ=WEEKLY;COUNT=2"), state)
    assert list(refused.value.problems) == ["rrule"]
    with pytest.raises(RuleBroken) as bad:
        decide(series(slot(MONDAY, (18, 0), (19, 0)), "FREQ=HOURLY;COUNT=2"), state)
    assert "at most daily" in bad.value.problems["rrule"][0]
    with pytest.raises(RuleBroken, match="no occurrences"):
        decide(series(slot(MONDAY, (18, 0), (19, 0)), "FREQ=WEEKLY;UNTIL=20270101"), state)


def test_who_may_place_a_series() -> None:
    state = premises()
    with pytest.raises(NotAllowed):
        decide(series(slot(MONDAY, (18, 0), (19, 0)), "FREQ=WEEKLY;COUNT=2", actor=RESIDENT), state)
    assert run(state, series(slot(MONDAY, (18, 0), (19, 0)), "FREQ=WEEKLY;COUNT=2", actor=STAFF))


def test_cancelling_a_series_cancels_only_its_future_active_occurrences() -> None:
    state = premises()
    run(state, series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=4"))
    ids = state.series[SERIES].booking_ids
    run(state, CancelBooking(BOOKER, ids[2], "", NOW))
    during_the_second = local(MONDAY + timedelta(days=7), 19)
    events = run(state, CancelSeries(BOOKER, SERIES, "season over", during_the_second))
    assert [e.booking_id for e in events if isinstance(e, BookingCancelled)] == [ids[3]]
    assert isinstance(events[-1], BookingSeriesCancelled)
    assert [state.bookings[b].status for b in ids] == [
        "confirmed",
        "confirmed",
        "cancelled",
        "cancelled",
    ]
    with pytest.raises(InvalidState):
        decide(CancelSeries(BOOKER, SERIES, "", during_the_second), state)


def test_only_the_organisation_or_staff_cancel_a_series() -> None:
    state = premises()
    run(state, series(slot(MONDAY, (18, 0), (20, 0)), "FREQ=WEEKLY;COUNT=2"))
    with pytest.raises(NotAllowed):
        decide(CancelSeries(OTHER_BOOKER, SERIES, "", NOW), state)
    with pytest.raises(NotFound):
        decide(CancelSeries(STAFF, str(uuid.uuid4()), "", NOW), state)
    events = run(state, CancelSeries(STAFF, SERIES, "", NOW))
    assert len(events) == 3


# --- closures -----------------------------------------------------------------------------


def closure(when: Slot, cancel_conflicting: bool, actor: Actor = STAFF) -> AddClosure:
    return AddClosure(actor, PREMISES, "c1", when, "water damage", cancel_conflicting, NOW)


def test_a_closure_over_bookings_is_refused_with_the_conflicts() -> None:
    state = premises()
    first = booked(state)
    booked(state, slot(MONDAY, (13, 0), (14, 0)), OTHER_BOOKER)
    with pytest.raises(SlotTaken) as taken:
        decide(closure(slot(MONDAY, (9, 0), (15, 0)), False), state)
    assert [c.slot for c in taken.value.conflicts] == [
        TEN_TO_ELEVEN,
        slot(MONDAY, (13, 0), (14, 0)),
    ]
    assert state.bookings[first].status == "confirmed"


def test_a_closure_may_cancel_the_bookings_it_covers() -> None:
    state = premises()
    first = booked(state)
    outside = booked(state, slot(MONDAY, (15, 0), (16, 0)))
    events = run(state, closure(slot(MONDAY, (9, 0), (15, 0)), True))
    assert events == [
        # The staff's words only; the cause is a code, said in each reader's language.
        BookingCancelled(
            PREMISES, first, STAFF.user_id, "water damage", False, NOW, cause="premises_closed"
        ),
        ClosureAdded(PREMISES, "c1", local(MONDAY, 9), local(MONDAY, 15), "water damage"),
    ]
    assert state.bookings[first].status == "cancelled"
    assert state.bookings[outside].status == "confirmed", "touching the closure is fine"
    with pytest.raises(RuleBroken, match="closed"):
        decide(place(slot(MONDAY, (12, 0), (13, 0))), state)


def test_a_closure_over_nothing_is_just_added_and_only_staff_add_one() -> None:
    state = premises()
    assert run(state, closure(slot(MONDAY, (9, 0), (15, 0)), False)) == [
        ClosureAdded(PREMISES, "c1", local(MONDAY, 9), local(MONDAY, 15), "water damage")
    ]
    with pytest.raises(NotAllowed):
        decide(closure(TEN_TO_ELEVEN, True, actor=BOOKER), state)
    with pytest.raises(NotFound):
        decide(closure(TEN_TO_ELEVEN, True), PremisesState("nowhere"))


# --- the catalogue ------------------------------------------------------------------------


def register(**overrides: object) -> RegisterPremises:
    return RegisterPremises(STAFF, PREMISES, profile(**overrides))


def test_register_fills_in_the_default_rules() -> None:
    state = PremisesState(PREMISES)
    (event,) = run(state, register(rules={"buffer_minutes": 10}))
    assert isinstance(event, PremisesRegistered)
    assert event.rules["buffer_minutes"] == 10
    assert event.rules["cancellation_deadline_minutes"] == 1440
    assert (state.exists, state.catalogue_version, state.rules.buffer_minutes) == (True, 1, 10)


def test_register_is_for_staff_once() -> None:
    with pytest.raises(NotAllowed):
        decide(RegisterPremises(BOOKER, PREMISES, profile()), PremisesState(PREMISES))
    with pytest.raises(InvalidState):
        decide(register(), premises())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "Europe"}, "timezone"),  # a directory of the zone database
        ({"timezone": "Europe/Helsinki/Kallio"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),  # a file of the server, not a place
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"opening_hours": {"mon": [["08:00", "25:00"]]}}, "opening_hours"),
        ({"opening_hours": {"mon": [["10:00", "10:00"]]}}, "opening_hours"),
        ({"opening_hours": {"funday": []}}, "opening_hours"),
        ({"rules": {"min_duration_minutes": 120, "max_duration_minutes": 60}}, "rules"),
        ({"name": {"fi": "", "en": None}}, "name"),
    ],
)
def test_register_refuses_a_bad_profile(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        decide(register(**overrides), PremisesState(PREMISES))
    assert list(refused.value.problems) == [field]


def test_update_checks_the_catalogue_version() -> None:
    state = premises()
    run(state, UpdatePremises(STAFF, PREMISES, {"capacity": 20}, expected_version=1))
    assert (state.capacity, state.catalogue_version) == (20, 2)
    booked(state)  # bookings move the stream's version, not the catalogue's
    assert state.catalogue_version == 2 and state.version == 3
    with pytest.raises(StaleVersion) as stale:
        decide(UpdatePremises(STAFF, PREMISES, {"capacity": 5}, expected_version=1), state)
    assert stale.value.current == 2
    assert decide(UpdatePremises(STAFF, PREMISES, {"capacity": 5}, expected_version=2), state)
    assert decide(UpdatePremises(STAFF, PREMISES, {"capacity": 5}), state), "If-Match is optional"


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Not/AZone"},
        {"timezone": "Europe"},
        {"opening_hours": {"mon": [["8:00", "12:00"]]}},
        {"rules": {"max_duration_minutes": 10}},  # below the current min of 30
        # Beyond what any premises may allow: the availability search relies on these.
        {"rules": {"max_duration_minutes": 7 * 24 * 60 + 1}},
        {"rules": {"popup_max_duration_minutes": 7 * 24 * 60 + 1}},
        {"rules": {"buffer_minutes": 24 * 60 + 1}},
        {"name": {}},
    ],
)
def test_update_refuses_bad_changes(changes: dict[str, object]) -> None:
    with pytest.raises(RuleBroken):
        decide(UpdatePremises(STAFF, PREMISES, changes), premises())


def test_update_merges_partial_rules_with_the_current_ones() -> None:
    state = premises(rules={"max_duration_minutes": 480})
    # 300 is above the default maximum (240) but below this premises' 480.
    run(state, UpdatePremises(STAFF, PREMISES, {"rules": {"min_duration_minutes": 300}}))
    assert (state.rules.min_duration_minutes, state.rules.max_duration_minutes) == (300, 480)
    run(state, UpdatePremises(STAFF, PREMISES, {"rules": {"buffer_minutes": 30}}))
    assert (state.rules.min_duration_minutes, state.rules.buffer_minutes) == (300, 30)


def test_update_changes_the_rules_decide_applies() -> None:
    state = premises()
    run(state, UpdatePremises(STAFF, PREMISES, {"opening_hours": {"tue": [["08:00", "12:00"]]}}))
    with pytest.raises(RuleBroken):
        decide(place(TEN_TO_ELEVEN), state)  # a Monday: closed now
    run(state, UpdatePremises(STAFF, PREMISES, {"timezone": "UTC"}))
    tuesday = MONDAY + timedelta(days=1)
    utc_morning = Slot(
        datetime.combine(tuesday, datetime.min.time(), UTC) + timedelta(hours=8),
        datetime.combine(tuesday, datetime.min.time(), UTC) + timedelta(hours=9),
    )
    assert run(state, place(utc_morning))


def test_update_is_staff_only_and_needs_the_premises() -> None:
    with pytest.raises(NotAllowed):
        decide(UpdatePremises(BOOKER, PREMISES, {"capacity": 1}), premises())
    with pytest.raises(NotFound):
        decide(UpdatePremises(STAFF, PREMISES, {"capacity": 1}), PremisesState(PREMISES))


def test_retire() -> None:
    state = premises()
    assert run(state, RetirePremises(STAFF, PREMISES, "sold")) == [
        PremisesRetired(PREMISES, "sold")
    ]
    assert state.retired and state.catalogue_version == 2
    with pytest.raises(InvalidState):
        decide(RetirePremises(STAFF, PREMISES, "again"), state)
    with pytest.raises(InvalidState):
        decide(UpdatePremises(STAFF, PREMISES, {"capacity": 3}), state)
    with pytest.raises(NotAllowed):
        decide(RetirePremises(BOOKER, PREMISES, "mine now"), premises())
    with pytest.raises(NotFound):
        decide(RetirePremises(STAFF, PREMISES, "x"), PremisesState(PREMISES))


def test_retire_over_bookings_still_to_come_lists_them_unless_cancelling() -> None:
    """Issue 14.9: retiring is like a closure that never ends. What is still to come (or
    under way) at `now` is a conflict; a booking already over is history and stays."""
    state = premises()
    over = booked(state, slot(MONDAY, (8, 0), (9, 0)))
    coming = booked(state, TEN_TO_ELEVEN)
    later = booked(state, slot(MONDAY + timedelta(days=7), (10, 0), (11, 0)))
    at = local(MONDAY, 9, 30)
    with pytest.raises(SlotTaken) as refused:
        decide(RetirePremises(STAFF, PREMISES, "sold", at), state)
    assert [c.slot for c in refused.value.conflicts] == [
        TEN_TO_ELEVEN,
        slot(MONDAY + timedelta(days=7), (10, 0), (11, 0)),
    ]
    assert not state.retired
    # Without a time nothing can be told apart: every active booking is in the way.
    with pytest.raises(SlotTaken) as timeless:
        decide(RetirePremises(STAFF, PREMISES, "sold", cancel_conflicting=True), state)
    assert len(timeless.value.conflicts) == 3

    events = run(state, RetirePremises(STAFF, PREMISES, "Myyty", at, cancel_conflicting=True))
    assert events == [
        BookingCancelled(PREMISES, coming, STAFF.user_id, "Myyty", False, at, PREMISES_RETIRED),
        BookingCancelled(PREMISES, later, STAFF.user_id, "Myyty", False, at, PREMISES_RETIRED),
        PremisesRetired(PREMISES, "Myyty"),
    ]
    assert state.retired
    assert state.bookings[over].status == "confirmed"
    assert state.bookings[coming].status == "cancelled"


def test_retire_checks_the_version_it_was_asked_against() -> None:
    state = premises()
    with pytest.raises(StaleVersion):
        decide(RetirePremises(STAFF, PREMISES, "x", NOW, expected_version=2), state)
    assert run(state, RetirePremises(STAFF, PREMISES, "x", NOW, expected_version=1)) == [
        PremisesRetired(PREMISES, "x")
    ]


def test_premises_updated_event_carries_only_the_changes() -> None:
    (event,) = decide(UpdatePremises(STAFF, PREMISES, {"capacity": 30}), premises())
    assert event == PremisesUpdated(PREMISES, {"capacity": 30})


# --- no clock ---------------------------------------------------------------------------


@pytest.mark.parametrize("wall_clock", ["2020-02-29 12:00:00", "2031-07-01 03:00:00"])
def test_decide_reads_no_clock_only_the_commands_now(wall_clock: str) -> None:
    # Far from NOW on either side, the system clock would break notice and advance checks.
    command = place(TEN_TO_ELEVEN, booking_id="b-1")
    cancel = CancelBooking(BOOKER, "b-1", "", NOW)
    expected = decide(command, premises())
    with time_machine.travel(wall_clock, tick=False):
        state = premises()
        assert run(state, command) == expected
        (cancelled,) = decide(cancel, state)
        assert isinstance(cancelled, BookingCancelled)
        assert (cancelled.cancelled_at, cancelled.late) == (NOW, False)


def test_a_closure_leaves_bookings_that_are_over_alone() -> None:
    state = premises()
    day = NOW.date()
    earlier = slot(day - timedelta(days=1), (10, 0), (12, 0))
    run(state, place(earlier, now=NOW - timedelta(days=3)))
    whole_week = Slot(earlier.start - timedelta(hours=1), NOW + timedelta(days=2))
    events = decide(closure(whole_week, cancel_conflicting=False), state)
    assert [type(e).__name__ for e in events] == ["ClosureAdded"]


def test_a_series_must_start_on_one_of_its_occurrences() -> None:
    state = premises()
    monday = NOW.date() + timedelta(days=(7 - NOW.date().weekday()) % 7 + 7)
    with pytest.raises(RuleBroken) as refused:
        decide(series(slot(monday, (18, 0), (19, 0)), "FREQ=WEEKLY;BYDAY=TU;COUNT=3"), state)
    assert "rrule" in refused.value.problems
