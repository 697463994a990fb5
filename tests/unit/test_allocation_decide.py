"""The allocation round's pure decider: status from time, the window, adjustments' hard and
soft rules, answering and lapsing offers, and tiers from the ordered criteria."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from booking.allocation.commands import (
    AddAllocation,
    AnswerOffer,
    LapseOffers,
    OpenRound,
    PremisesFacts,
    Publish,
    RecordProposal,
    SubmitApplication,
)
from booking.allocation.decide import decide
from booking.allocation.model import Premises
from booking.allocation.state import RoundState, evolve
from booking.allocation.tiers import tier_of
from booking.domain.commands import Actor
from booking.domain.errors import InvalidState, NotAllowed, RuleBroken

STAFF = Actor("staff-1", "staff")
BOOKER = Actor("booker-1", "booker", "org-1")
OTHER = Actor("booker-2", "booker", "org-2")
OPEN = datetime(2026, 11, 1, 8, tzinfo=UTC)
CLOSE = datetime(2026, 11, 30, 22, tzinfo=UTC)
EVENINGS = {d: [["16:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
CATALOGUE = {
    "sali": PremisesFacts(
        Premises.from_opening_hours("sali", EVENINGS, frozenset({"e", "w"})), 30, 180, capacity=60
    ),
    "sali-e": PremisesFacts(
        Premises.from_opening_hours("sali-e", EVENINGS, frozenset({"e"})), 30, 180, capacity=30
    ),
}


def run(state: RoundState, command: Any) -> list[Any]:
    events = decide(command, state)
    for event in events:
        evolve(state, event)
    return events


def opened() -> RoundState:
    state = RoundState("r1")
    body = {
        "name": {"fi": "Kevät"},
        "season_start": date(2027, 1, 11),
        "season_end": date(2027, 5, 31),
        "applications_open": OPEN,
        "applications_close": CLOSE,
        "premises": ["sali", "sali-e"],
        "criteria": [{"key": "age_group"}],
        "confirm_days": 7,
    }
    run(state, OpenRound(STAFF, "r1", body, CATALOGUE, OPEN - timedelta(days=1)))
    return state


def section(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "P10",
        "slots_per_week": 1,
        "duration_minutes": 90,
        "premises": ["sali-e"],
        "times": [{"weekday": "mon", "from": "17:00", "to": "18:30", "priority": "primary"}],
        **overrides,
    }


def applied(state: RoundState, actor: Actor = BOOKER, app_id: str = "a1") -> None:
    body = {
        "purpose": "Salibandy",
        "age_group": "7-14",
        "group_size": 20,
        "terms_accepted": True,
        "sections": [section()],
    }
    run(
        state,
        SubmitApplication(
            actor, app_id, actor.organisation_id or "", body, CATALOGUE, OPEN + timedelta(days=1)
        ),
    )


def test_status_follows_time_and_publication() -> None:
    state = opened()
    assert state.status(OPEN - timedelta(seconds=1)) == "upcoming"
    assert state.status(OPEN) == "open"
    assert state.status(CLOSE) == "allocating"
    applied(state)
    run(state, RecordProposal(STAFF, {"allocations": [], "unallocated": [], "metrics": {}}, CLOSE))
    run(state, Publish(STAFF, CLOSE + timedelta(hours=1)))
    assert state.status(CLOSE + timedelta(days=1)) == "published"
    assert state.status(datetime(2027, 6, 1, 12, tzinfo=UTC)) == "closed"


def test_applications_only_while_open_and_only_for_ones_own_organisation() -> None:
    state = opened()
    body = {
        "purpose": "x",
        "age_group": "7-14",
        "group_size": 5,
        "terms_accepted": True,
        "sections": [section()],
    }
    with pytest.raises(RuleBroken) as refused:
        decide(SubmitApplication(BOOKER, "a1", "org-1", body, CATALOGUE, CLOSE), state)
    assert "applications_close" in refused.value.problems
    with pytest.raises(NotAllowed):
        decide(SubmitApplication(BOOKER, "a1", "org-2", body, CATALOGUE, OPEN), state)


def proposed_state() -> RoundState:
    state = opened()
    applied(state)
    applied(state, OTHER, "a2")
    allocation = {
        "id": "x1",
        "application_id": "a1",
        "organisation_id": "org-1",
        "section": "P10",
        "premises_id": "sali-e",
        "weekday": "mon",
        "start_time": "17:00",
        "end_time": "18:30",
        "tier": 1,
        "priority": "primary",
        "premises_rank": 1,
    }
    run(
        state,
        RecordProposal(
            STAFF, {"allocations": [allocation], "unallocated": [], "metrics": {}}, CLOSE
        ),
    )
    return state


def test_the_whole_hall_over_a_taken_half_is_a_hard_conflict_and_soft_rules_need_a_reason() -> None:
    state = proposed_state()
    body = {
        "application_id": "a2",
        "section": "P10",
        "premises_id": "sali",
        "weekday": "mon",
        "start_time": "18:00",
        "end_time": "19:30",
    }
    with pytest.raises(InvalidState, match="taken"):
        decide(AddAllocation(STAFF, "x2", body, "", CATALOGUE, CLOSE), state)
    later = {**body, "start_time": "19:00", "end_time": "20:30"}
    with pytest.raises(RuleBroken) as soft:
        decide(AddAllocation(STAFF, "x2", later, "", CATALOGUE, CLOSE), state)
    assert "override_reason" in soft.value.problems
    (event,) = decide(
        AddAllocation(STAFF, "x2", later, "Sovittu seuran kanssa", CATALOGUE, CLOSE), state
    )
    assert event.override_reason == "Sovittu seuran kanssa"
    assert event.allocation["priority"] == "outside_wishes"


def test_offers_are_answered_by_their_organisation_before_confirm_by_and_lapse_after() -> None:
    state = proposed_state()
    run(state, Publish(STAFF, CLOSE))
    assert state.confirm_by == CLOSE + timedelta(days=7)
    with pytest.raises(NotAllowed):
        decide(AnswerOffer(OTHER, "x1", True, "s1", "", CLOSE), state)
    assert decide(LapseOffers(CLOSE + timedelta(days=6)), state) == []
    with pytest.raises(InvalidState):
        decide(AnswerOffer(BOOKER, "x1", True, "s1", "", CLOSE + timedelta(days=7)), state)
    (lapsed,) = run(state, LapseOffers(CLOSE + timedelta(days=7)))
    assert lapsed.allocation_id == "x1" and state.allocations["x1"]["status"] == "lapsed"
    assert decide(LapseOffers(CLOSE + timedelta(days=8)), state) == []


def test_the_tier_is_the_first_criterion_met() -> None:
    criteria = [
        {"key": "previous_season"},
        {"key": "age_group"},
        {"key": "purpose", "in": ["soveltava"]},
    ]
    kid = {"age_group": "7-14", "purpose": "x", "organisation_type": "association"}
    assert tier_of(criteria, previous_season=True, **kid) == 0
    assert tier_of(criteria, previous_season=False, **kid) == 1
    adult = {**kid, "age_group": "20-64", "purpose": "Soveltava liikunta"}
    assert tier_of(criteria, previous_season=False, **adult) == 2
    assert tier_of(criteria, previous_season=False, **{**adult, "purpose": "x"}) == 3


def test_an_adjustment_into_another_allocations_buffer_is_a_hard_conflict() -> None:
    # The whole hall keeps 30 minutes free after each booking, its half none. x1 (the half,
    # mon 17:00–18:30) may be followed at once by the whole; the whole before x1 must end
    # 30 minutes before it begins, as the booking rules would have it.
    catalogue = {
        "sali": PremisesFacts(
            Premises.from_opening_hours("sali", EVENINGS, frozenset({"e", "w"}), 30), 30, 180
        ),
        "sali-e": PremisesFacts(
            Premises.from_opening_hours("sali-e", EVENINGS, frozenset({"e"}), 0), 30, 180
        ),
    }
    state = proposed_state()
    after = {
        "application_id": "a2",
        "section": "P10",
        "premises_id": "sali",
        "weekday": "mon",
        "start_time": "18:30",
        "end_time": "20:00",
    }
    reason = "Sovittu"
    (event,) = decide(AddAllocation(STAFF, "x2", after, reason, catalogue, CLOSE), state)
    assert event.allocation["start_time"] == "18:30"

    def before_x1(end_time: str, facts: dict[str, PremisesFacts] = catalogue) -> Any:
        """x2 on the whole from 16:00 (opening time) to `end_time`, before x1 at 17:00."""
        times = {**after, "start_time": "16:00", "end_time": end_time}
        return decide(AddAllocation(STAFF, "x2", times, reason, facts, CLOSE), state)

    with pytest.raises(InvalidState, match="too close to allocation x1") as refused:
        before_x1("16:45")
    assert "sali keeps 30 minutes free after each booking" in str(refused.value)
    with pytest.raises(InvalidState, match="too close"):
        before_x1("16:31")
    # Opening hours start at 16:00, so the whole fits before x1 only with its buffer:
    # 16:00–16:30 ends exactly 30 minutes before.
    assert before_x1("16:30")
    # Without buffers (the module's catalogue) back to back is fine.
    assert before_x1("17:00", CATALOGUE)
    # An overlap is still said as such.
    with pytest.raises(InvalidState, match="taken by allocation x1"):
        decide(
            AddAllocation(STAFF, "x2", {**after, "start_time": "18:00"}, reason, catalogue, CLOSE),
            state,
        )
