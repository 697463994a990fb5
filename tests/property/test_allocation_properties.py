"""The allocator on random small rounds: API.md's invariants hold, a first-come allocation
never beats it on its objective, lower tiers never change what a higher tier gets, and with
the premises' buffers (each its own, across a hall and its halves, past midnight) no two
allocations are closer than the booking rules allow."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.allocation import explain
from booking.allocation.candidates import Candidate
from booking.allocation.greedy import first_come
from booking.allocation.model import Premises, Section, TimeWish
from booking.allocation.solver import solve
from booking.domain.spaces import Occupied, Shared
from events.slot import Slot

SETTINGS = settings(
    max_examples=int(os.environ.get("ALLOCATION_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
STEP = 30

# A gym split in halves, and a room: four premises over four spaces.
PLACES = {
    "sali": frozenset({"ita", "lansi"}),
    "sali-ita": frozenset({"ita"}),
    "sali-lansi": frozenset({"lansi"}),
    "huone": frozenset({"huone"}),
}


# Buffers are drawn per premises, so a hall and its halves often keep different ones.
BUFFERS = st.sampled_from([0, 0, 15, 30, 60])


@st.composite
def premises(draw: st.DrawFn) -> dict[str, Premises]:
    result = {}
    for premises_id, spaces in PLACES.items():
        opening = {}
        for day in range(3):
            opens = draw(st.sampled_from([16, 17, 18])) * 60
            closes = draw(st.sampled_from([20, 21, 22])) * 60
            opening[day] = ((opens, closes),) if draw(st.booleans()) or day == 0 else ()
        result[premises_id] = Premises(premises_id, opening, spaces, draw(BUFFERS))
    return result


SUN, MON = 6, 0


@st.composite
def nights(draw: st.DrawFn) -> tuple[list[Section], dict[str, Premises]]:
    """A round around midnight: Sunday evening and Monday's small hours, whose buffers run
    into the next day (Sunday's into the next week's Monday)."""
    places = {}
    for premises_id, spaces in PLACES.items():
        opening = {
            SUN: ((draw(st.sampled_from([22, 23])) * 60, 24 * 60),),
            MON: ((0, draw(st.sampled_from([1, 2])) * 60),),
        }
        places[premises_id] = Premises(premises_id, opening, spaces, draw(BUFFERS))
    apps = []
    for i in range(draw(st.integers(1, 6))):
        day = draw(st.sampled_from([SUN, MON]))
        window = (22 * 60, 24 * 60) if day == SUN else (0, 2 * 60)
        wanted = draw(
            st.lists(st.sampled_from(sorted(PLACES)), min_size=1, max_size=2, unique=True)
        )
        apps.append(
            Section(
                f"app-{i}",
                "main",
                f"org-{draw(st.integers(0, 2))}",
                draw(st.integers(0, 1)),
                1,
                draw(st.sampled_from([30, 60])),
                tuple(wanted),
                (TimeWish(day, *window),),
            )
        )
    return apps, places


# A Monday: allocations are weekly, so each is checked against the others' occurrences in
# the week before, the same week and the week after.
MONDAY = datetime(2027, 1, 4, tzinfo=UTC)


def occurrence(c: Candidate, week: int) -> Slot:
    day = MONDAY + timedelta(days=7 * week + c.weekday)
    return Slot(day + timedelta(minutes=c.start), day + timedelta(minutes=c.end))


def too_close(chosen: list[Candidate], places: dict[str, Premises]) -> list[tuple[str, str]]:
    """Pairs of allocations that the booking rules would refuse as weekly series: sharing a
    space, one's slot followed by its premises' buffer meets the other's followed by its
    own (booking.domain.spaces, the write side's check), in real time."""
    found = []
    for a in chosen:
        mine = occurrence(a, 1)
        for b in chosen:
            if b is a or PLACES[a.premises_id].isdisjoint(PLACES[b.premises_id]):
                continue
            theirs = [
                Occupied(
                    b.premises_id,
                    f"{b.section.application_id}-{week}",
                    "booking",
                    occurrence(b, week),
                    timedelta(minutes=places[b.premises_id].buffer),
                )
                for week in (0, 1, 2)
            ]
            buffer = timedelta(minutes=places[a.premises_id].buffer)
            if Shared(None, tuple(theirs)).holding(mine, buffer):
                found.append((a.allocation().id, b.allocation().id))
    return found


@st.composite
def sections(draw: st.DrawFn) -> list[Section]:
    count = draw(st.integers(1, 8))
    result = []
    for i in range(count):
        wishes = []
        for _ in range(draw(st.integers(1, 3))):
            day = draw(st.integers(0, 2))
            start = draw(st.integers(16, 20)) * 60
            length = draw(st.sampled_from([60, 90, 120, 180]))
            wishes.append(TimeWish(day, start, start + length, draw(st.booleans())))
        wanted = draw(
            st.lists(st.sampled_from(sorted(PLACES)), min_size=1, max_size=3, unique=True)
        )
        result.append(
            Section(
                application_id=f"app-{i}",
                name="main",
                organisation_id=f"org-{draw(st.integers(0, 3))}",
                tier=draw(st.integers(0, 2)),
                slots_per_week=draw(st.integers(1, 3)),
                duration=draw(st.sampled_from([60, 90, 120])),
                premises=tuple(wanted),
                times=tuple(wishes),
            )
        )
    return result


def lexicographically_at_least(
    ours: list[tuple[float, ...]], theirs: list[tuple[float, ...]]
) -> bool:
    for mine, other in zip(
        (v for t in ours for v in t), (v for t in theirs for v in t), strict=True
    ):
        if math.isclose(mine, other, abs_tol=1e-6):
            continue
        return mine > other
    return True


@SETTINGS
@given(sections(), premises())
def test_the_proposal_keeps_api_invariants(
    apps: list[Section], places: dict[str, Premises]
) -> None:
    solved = solve(apps, places, step=STEP, rel_gap=0.0)
    assert explain.check(solved.sections, solved.chosen) == []
    for c in solved.chosen:
        assert c.premises_id in c.section.premises
        assert any(o <= c.start and c.end <= e for o, e in places[c.premises_id].opening[c.weekday])
        assert any(
            w.weekday == c.weekday and w.start <= c.start and c.end <= w.end
            for w in c.section.times
        )
    # Every section short of its slots is listed, with a reason.
    short = {
        s.key
        for s in solved.sections
        if sum(1 for c in solved.chosen if c.section.key == s.key) < s.slots_per_week
    }
    listed = explain.unallocated(solved.sections, solved.candidates, solved.chosen)
    assert {(u.application_id, u.section) for u in listed} == short
    assert all(u.reason for u in listed)
    assert all(s.status == "Optimal" for s in solved.stages)


@SETTINGS
@given(sections(), premises())
def test_first_come_never_beats_the_solver_on_its_objective(
    apps: list[Section], places: dict[str, Premises]
) -> None:
    # Holding values, the proposal is the exact lexicographic optimum over all tiers.
    solved = solve(apps, places, step=STEP, rel_gap=0.0, hold="values")
    ordered_sections, greedy = first_come(apps, places, step=STEP)
    ours = explain.tier_values(solved.sections, solved.chosen)
    theirs = explain.tier_values(ordered_sections, greedy)
    assert lexicographically_at_least(ours, theirs), (ours, theirs)
    # Holding allocations (the default), the highest tier is still optimal.
    fast = solve(apps, places, step=STEP, rel_gap=0.0, hold="allocations")
    top = explain.tier_values(fast.sections, fast.chosen)[:1]
    assert lexicographically_at_least(top, theirs[:1]), (top, theirs)
    assert top == ours[:1] or all(
        math.isclose(a, b, abs_tol=1e-6) for a, b in zip(top[0], ours[0], strict=True)
    )


@SETTINGS
@given(sections(), premises(), st.sampled_from(["values", "allocations"]))
def test_removing_lower_tiers_never_changes_what_a_higher_tier_gets(
    apps: list[Section], places: dict[str, Premises], hold: str
) -> None:
    tiers = sorted({s.tier for s in apps})
    full = solve(apps, places, step=STEP, rel_gap=0.0, hold=hold)
    full_values = explain.tier_values(full.sections, full.chosen)
    for cut, top in enumerate(tiers[:-1]):
        higher = [s for s in apps if s.tier <= top]
        alone = solve(higher, places, step=STEP, rel_gap=0.0, hold=hold)
        alone_values = explain.tier_values(alone.sections, alone.chosen)
        for kept, reached in zip(alone_values, full_values[: cut + 1], strict=True):
            assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(kept, reached, strict=True))
        if hold == "allocations":  # the very same slots, too
            assert {c.allocation() for c in alone.chosen} == {
                c.allocation() for c in full.chosen if c.section.tier <= top
            }


@SETTINGS
@given(sections(), premises(), st.sampled_from(["values", "allocations"]))
def test_no_two_allocations_are_closer_than_the_buffers_allow(
    apps: list[Section], places: dict[str, Premises], hold: str
) -> None:
    solved = solve(apps, places, step=STEP, rel_gap=0.0, hold=hold)
    assert too_close(solved.chosen, places) == []
    assert too_close(first_come(apps, places, step=STEP)[1], places) == []
    # Without the buffers the proposal is never worse: they only take time away.
    plain = {p: Premises(p, v.opening, v.spaces) for p, v in places.items()}
    unbuffered = solve(apps, plain, step=STEP, rel_gap=0.0, hold=hold)
    ours = explain.tier_values(solved.sections, solved.chosen)
    assert ours[0][0] <= explain.tier_values(unbuffered.sections, unbuffered.chosen)[0][0]


@SETTINGS
@given(nights(), st.sampled_from(["values", "allocations"]))
def test_buffers_past_midnight_keep_the_next_day_free_as_the_rules_do(
    round_: tuple[list[Section], dict[str, Premises]], hold: str
) -> None:
    apps, places = round_
    solved = solve(apps, places, step=STEP, rel_gap=0.0, hold=hold)
    assert explain.check(solved.sections, solved.chosen) == []
    assert too_close(solved.chosen, places) == []
    assert all(s.status == "Optimal" for s in solved.stages)
    ordered_sections, greedy = first_come(apps, places, step=STEP)
    assert too_close(greedy, places) == []
    if hold == "values":  # still the exact optimum: first come never beats it
        ours = explain.tier_values(solved.sections, solved.chosen)
        theirs = explain.tier_values(ordered_sections, greedy)
        assert lexicographically_at_least(ours, theirs), (ours, theirs)
