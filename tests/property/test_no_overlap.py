"""DESIGN.md invariant 2, in the pure domain: whatever commands arrive, in whatever order and
from whoever, decide+evolve never leaves two active bookings of a premises overlapping with
the buffer included, nor an active booking inside a closure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from booking.domain.commands import (
    Actor,
    AddClosure,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceSeries,
)
from booking.domain.decide import Command, decide
from booking.domain.errors import DomainError
from booking.domain.premises import PremisesState, evolve
from events.catalog import BookingPlaced, BookingSeriesPlaced
from events.slot import Slot
from tests.unit.domain_helpers import (
    BOOKER,
    NOW,
    ORG,
    OTHER_BOOKER,
    RESIDENT,
    STAFF,
    local,
    place,
    premises,
    request,
)

# Three days around the spring DST change, on a 30-minute grid, open around the clock.
FIRST_DAY = date(2027, 3, 27)
GRID = [local(FIRST_DAY, 0) + timedelta(minutes=30 * n) for n in range(3 * 48)]
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ACTORS = [BOOKER, OTHER_BOOKER, STAFF, RESIDENT, Actor("u-colleague", "booker", ORG)]


@dataclass
class World:
    state: PremisesState
    booking_ids: list[str] = field(default_factory=list)
    series_ids: list[str] = field(default_factory=list)


def a_slot(draw: st.DrawFn, most_steps: int = 8) -> Slot:
    start = draw(st.integers(0, len(GRID) - 2))
    steps = draw(st.integers(1, min(most_steps, len(GRID) - 1 - start)))
    return Slot(GRID[start], GRID[start + steps])


@st.composite
def commands(draw: st.DrawFn, world: World) -> Command:
    actor = draw(st.sampled_from(ACTORS))
    kind = draw(st.sampled_from(["place", "place", "place", "cancel", "decide", "series", "close"]))
    known = world.booking_ids or ["missing"]
    if kind == "cancel":
        return CancelBooking(actor, draw(st.sampled_from(known)), "", NOW)
    if kind == "decide":
        return DecideBooking(actor, draw(st.sampled_from(known)), draw(st.booleans()), "", NOW)
    if kind == "series":
        if world.series_ids and draw(st.booleans()):
            return CancelSeries(actor, draw(st.sampled_from(world.series_ids)), "", NOW)
        rule = draw(st.sampled_from(["FREQ=DAILY;COUNT=3", "FREQ=DAILY;INTERVAL=2;COUNT=2"]))
        return PlaceSeries(
            actor,
            str(uuid.UUID(int=draw(st.integers(0, 2**64)))),
            request(a_slot(draw), organisation_id=actor.organisation_id or ORG),
            rule,
            draw(st.sampled_from(["skip", "fail"])),
            NOW,
        )
    if kind == "close":
        return AddClosure(
            actor,
            world.state.premises_id,
            str(uuid.uuid4()),
            a_slot(draw, most_steps=4),
            "repairs",
            draw(st.booleans()),
            NOW,
        )
    organisation = (
        actor.organisation_id if actor.role != "staff" else draw(st.sampled_from([ORG, None]))
    )
    return place(a_slot(draw), actor=actor, organisation_id=organisation)


def assert_no_overlap(state: PremisesState) -> None:
    active = sorted(state.active_bookings(), key=lambda b: b.slot)
    buffer = state.rules.buffer
    for i, one in enumerate(active):
        for other in active[i + 1 :]:
            assert not one.slot.padded(buffer).overlaps(other.slot), (one, other)
        for closure in state.closures:
            assert not closure.slot.overlaps(one.slot), (closure, one)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    buffer=st.sampled_from([0, 15, 30, 60, 90]),
    requires_approval=st.booleans(),
    data=st.data(),
)
def test_no_two_active_bookings_ever_overlap(
    buffer: int, requires_approval: bool, data: st.DataObject
) -> None:
    world = World(
        premises(
            opening_hours=ALL_DAY,
            rules={
                "buffer_minutes": buffer,
                "requires_approval": requires_approval,
                "bookable_by": "anyone",
                "min_duration_minutes": 30,
            },
        )
    )
    for _ in range(data.draw(st.integers(1, 30), label="length")):
        command = data.draw(commands(world))
        try:
            events = decide(command, world.state)
        except DomainError:
            continue
        for happened in events:
            evolve(world.state, happened)
            if isinstance(happened, BookingPlaced):
                world.booking_ids.append(happened.booking_id)
            if isinstance(happened, BookingSeriesPlaced):
                world.series_ids.append(happened.series_id)
        assert_no_overlap(world.state)
    event(f"active bookings at the end: {min(len(list(world.state.active_bookings())), 5)}+")
