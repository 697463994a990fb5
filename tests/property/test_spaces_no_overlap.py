"""DESIGN.md invariant 2 across premises that share spaces, in the pure domain: whatever
place, cancel, approve, pop-up and closure commands arrive over a gym with two halves and two
meeting rooms that combine, decide+evolve — each premises handed what the others hold on its
spaces, as the service reads it under the spaces' locks — never leaves two active bookings
or holds on a shared space overlapping (each followed by its premises' buffer), nor one
inside a closure of a premises sharing its floor.

The guard that makes "what the others hold" current under concurrency is proved in
tests/integration/test_spaces.py (threads on both databases, processes on PostgreSQL).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from itertools import combinations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from booking.domain.commands import (
    Actor,
    AddClosure,
    BookingRequest,
    CancelBooking,
    DecideBooking,
    PlaceBooking,
)
from booking.domain.decide import Command, close_elsewhere, decide, shared_window
from booking.domain.errors import DomainError
from booking.domain.popups import DecidePopup, RequestPopup, WithdrawPopup
from booking.domain.premises import PremisesState, evolve
from booking.domain.spaces import Occupied, Shared
from events.catalog import BookingPlaced, PopupRequested, PremisesRegistered
from events.slot import Slot
from tests.unit.domain_helpers import BOOKER, NOW, ORG, RESIDENT, STAFF, local, profile

FIRST_DAY = date(2027, 1, 12)  # within the pop-up horizon of NOW (30 days)
GRID = [local(FIRST_DAY, 8) + timedelta(minutes=30 * n) for n in range(2 * 48)]
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
LAYOUT = {
    "sali": ("ita", "lansi"),
    "sali-ita": ("ita",),
    "sali-lansi": ("lansi",),
    "huone-1": ("h1",),
    "huone-2": ("h2",),
    "huoneet": ("h1", "h2"),
}
ACTORS = [BOOKER, STAFF, RESIDENT, Actor("u-colleague", "booker", ORG)]


def registered(premises_id: str, buffer: int, approval: bool) -> PremisesState:
    state = PremisesState(premises_id)
    rules = {
        "buffer_minutes": buffer,
        "requires_approval": approval,
        "bookable_by": "anyone",
        "popup_allowed": True,
        "popup_max_duration_minutes": 240,
        "min_duration_minutes": 30,
    }
    body = profile(opening_hours=ALL_DAY, rules=rules, capacity=50)
    evolve(
        state, PremisesRegistered(premises_id=premises_id, spaces=[*LAYOUT[premises_id]], **body)
    )
    return state


def held(state: PremisesState) -> list[tuple[str, str, Slot]]:
    """(kind, ref, slot) of every active booking and pending pop-up request."""
    found = [(b.kind, b.booking_id, b.slot) for b in state.active_bookings()]
    found += [("hold", p.request_id, p.slot) for p in state.popups.values() if p.pending]
    return found


def shared_for(world: dict[str, PremisesState], premises_id: str, window: Slot) -> Shared:
    """What the other premises hold on `premises_id`'s spaces: the availability projection's
    rows, as `booking.service.read_shared` hands them to the decider."""
    mine = set(world[premises_id].spaces)
    items = []
    for other, state in world.items():
        if other == premises_id or not mine & set(state.spaces):
            continue
        for kind, ref, slot in held(state):
            items.append(Occupied(other, ref, kind, slot, state.rules.buffer))
        for closure in state.closures:
            items.append(Occupied(other, closure.closure_id, "closure", closure.slot, timedelta()))
    return Shared(window, tuple(i for i in items if i.slot.overlaps(window)))


def a_slot(draw: st.DrawFn, most_steps: int = 6) -> Slot:
    start = draw(st.integers(0, len(GRID) - 2))
    steps = draw(st.integers(1, min(most_steps, len(GRID) - 1 - start)))
    return Slot(GRID[start], GRID[start + steps])


@st.composite
def commands(draw: st.DrawFn, world: dict[str, PremisesState]) -> tuple[str, Command]:
    premises_id = draw(st.sampled_from(sorted(LAYOUT)))
    state = world[premises_id]
    actor = draw(st.sampled_from(ACTORS))
    kind = draw(st.sampled_from(["place", "place", "place", "cancel", "approve", "popup", "close"]))
    bookings = sorted(state.bookings) or ["missing"]
    popups = sorted(state.popups) or ["missing"]
    if kind == "cancel":
        return premises_id, CancelBooking(actor, draw(st.sampled_from(bookings)), "", NOW)
    if kind == "approve":
        return premises_id, DecideBooking(STAFF, draw(st.sampled_from(bookings)), True, "", NOW)
    if kind == "popup":
        choice = draw(st.sampled_from(["ask", "ask", "approve", "withdraw"]))
        if choice == "approve":
            request_id = draw(st.sampled_from(popups))
            return premises_id, DecidePopup(STAFF, request_id, True, str(uuid.uuid4()), "", NOW)
        if choice == "withdraw":
            return premises_id, WithdrawPopup(RESIDENT, draw(st.sampled_from(popups)), NOW)
        return premises_id, RequestPopup(
            RESIDENT, str(uuid.uuid4()), str(uuid.uuid4()), premises_id, a_slot(draw, 4),
            "Pop-up", "", 5, NOW,
        )  # fmt: skip
    if kind == "close":
        return premises_id, AddClosure(
            STAFF, premises_id, str(uuid.uuid4()), a_slot(draw, 4), "repairs",
            draw(st.booleans()), NOW,
        )  # fmt: skip
    organisation = actor.organisation_id if actor.role != "staff" else ORG
    request = BookingRequest(premises_id, a_slot(draw), "Vuoro", 5, False, "", organisation)
    return premises_id, PlaceBooking(actor, str(uuid.uuid4()), request, NOW)


def assert_no_overlap(world: dict[str, PremisesState]) -> None:
    every = [
        (state, kind, ref, slot) for state in world.values() for kind, ref, slot in held(state)
    ]
    for (a, _, ra, sa), (b, _, rb, sb) in combinations(every, 2):
        if not set(a.spaces) & set(b.spaces):
            continue
        first = Slot.of_utc(sa.start, sa.end + a.rules.buffer)
        second = Slot.of_utc(sb.start, sb.end + b.rules.buffer)
        assert not first.overlaps(second), (a.premises_id, ra, b.premises_id, rb)
    for state in world.values():
        for other in world.values():
            if not set(state.spaces) & set(other.spaces):
                continue
            for _, ref, slot in held(state):
                for closure in other.closures:
                    assert not closure.slot.overlaps(slot), (state.premises_id, ref, closure)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    buffer=st.sampled_from([0, 15, 30]),
    approval=st.booleans(),
    data=st.data(),
)
def test_no_two_holdings_of_a_shared_space_ever_overlap(
    buffer: int, approval: bool, data: st.DataObject
) -> None:
    # The halves keep a buffer of their own; the wholes another: buffers differ across a space.
    world = {
        premises_id: registered(premises_id, buffer if "-" in premises_id else 0, approval)
        for premises_id in LAYOUT
    }
    refused = 0
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        premises_id, command = data.draw(commands(world))
        state = world[premises_id]
        window = shared_window(command, state)
        shared = shared_for(world, premises_id, window) if window is not None else Shared()
        try:
            events = decide(command, state, shared)
        except DomainError:
            refused += 1
            continue
        for happened in events:
            evolve(state, happened)
        if isinstance(command, AddClosure) and command.cancel_conflicting:
            for other in sorted({o.premises_id for o in shared.items if o.kind != "closure"}):
                for happened in close_elsewhere(command, world[other]):
                    evolve(world[other], happened)
        assert_no_overlap(world)
        if any(isinstance(e, BookingPlaced | PopupRequested) for e in events):
            event("something was placed")
    held_at_end = sum(len(held(s)) for s in world.values())
    event(f"holdings at the end: {min(held_at_end, 6)}+, refused: {min(refused, 5)}+")


def test_the_check_finds_an_overlap_that_is_there() -> None:
    """The property is worth something only if its check fails on a real overlap."""
    world = {p: registered(p, 0, False) for p in LAYOUT}
    when = Slot(GRID[4], GRID[6])
    for premises_id in ("sali", "sali-ita"):
        request = BookingRequest(premises_id, when, "Vuoro", 5, False, "", ORG)
        for happened in decide(
            PlaceBooking(BOOKER, str(uuid.uuid4()), request, NOW), world[premises_id]
        ):
            evolve(world[premises_id], happened)
    try:
        assert_no_overlap(world)
    except AssertionError:
        return
    raise AssertionError("an overlap of the whole and a half went unnoticed")


def test_deciding_with_what_the_others_hold_refuses_the_whole_over_a_half() -> None:
    world = {p: registered(p, 0, False) for p in LAYOUT}
    when = Slot(GRID[4], GRID[6])
    half = BookingRequest("sali-ita", when, "Vuoro", 5, False, "", ORG)
    for happened in decide(PlaceBooking(BOOKER, "b-1", half, NOW), world["sali-ita"]):
        evolve(world["sali-ita"], happened)
    whole = PlaceBooking(BOOKER, "b-2", replace(half, premises_id="sali"), NOW)
    window = shared_window(whole, world["sali"])
    assert window is not None
    try:
        decide(whole, world["sali"], shared_for(world, "sali", window))
    except DomainError as error:
        assert "conflicting" in str(error)
        return
    raise AssertionError("the whole was booked over a half")
