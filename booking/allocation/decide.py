"""decide(command, round) -> events: every decision about an allocation round, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from booking.allocation.commands import (
    AddAllocation,
    AnswerOffer,
    LapseOffers,
    OpenRound,
    Publish,
    RecordProposal,
    RemoveAllocation,
    RoundCommand,
    SubmitApplication,
    UpdateApplication,
    WithdrawApplication,
)
from booking.allocation.model import WEEKDAYS, blocks, clock_minutes
from booking.allocation.state import ApplicationState, RoundState
from booking.allocation.tiers import criteria_problems
from booking.allocation.validate import application_problems, wishes_of
from booking.domain.commands import Actor
from booking.domain.errors import InvalidState, NotAllowed, NotFound, RuleBroken, StaleVersion
from booking.domain.rules import Problems
from events.catalog import (
    AllocationAdjusted,
    AllocationApplicationSubmitted,
    AllocationApplicationUpdated,
    AllocationApplicationWithdrawn,
    AllocationHoldReleased,
    AllocationOfferAccepted,
    AllocationOfferDeclined,
    AllocationOfferHeld,
    AllocationOfferLapsed,
    AllocationProposed,
    AllocationRoundOpened,
    AllocationRoundPublished,
    Event,
)

MAX_CONFIRM_DAYS = 90


def decide(command: RoundCommand, state: RoundState) -> list[Event]:
    match command:
        case OpenRound():
            return _open(command, state)
        case SubmitApplication():
            return _submit(command, state)
        case UpdateApplication():
            return _update(command, state)
        case WithdrawApplication():
            return _withdraw(command, state)
        case RecordProposal():
            return _propose(command, state)
        case AddAllocation():
            return _add(command, state)
        case RemoveAllocation():
            return _remove(command, state)
        case Publish():
            return _publish(command, state)
        case AnswerOffer():
            return _answer(command, state)
        case LapseOffers():
            return _lapse(command, state)


SEASON_AT_MOST = timedelta(days=366)  # days from the first to past the last


def _staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise NotAllowed("Only staff run allocation rounds.")


def _existing(state: RoundState) -> AllocationRoundOpened:
    if state.opened is None:
        raise NotFound(f"No allocation round {state.round_id!r}.")
    return state.opened


def _open(cmd: OpenRound, state: RoundState) -> list[Event]:
    _staff(cmd.actor)
    if state.exists:
        raise InvalidState("The round exists already.")
    body = cmd.body
    problems: Problems = {}
    if not any((body["name"] or {}).values()):
        problems["name"] = ["Give a name in at least one language."]
    if body["season_end"] < body["season_start"]:
        problems["season_end"] = ["The season ends on or after its first day."]
    if body["applications_close"] <= body["applications_open"]:
        problems["applications_close"] = ["Applications close after they open."]
    elif body["applications_close"].astimezone(UTC).date() > body["season_end"]:
        # Offers for a season already over could never be booked.
        problems["applications_close"] = ["Applications close before the season ends."]
    if body["season_end"] >= body["season_start"] + SEASON_AT_MOST:
        # An accepted offer is a weekly series over the whole season.
        problems["season_end"] = ["A season lasts at most a year."]
    if len(set(body["premises"])) != len(body["premises"]):
        problems["premises"] = ["Name each premises once."]
    unknown = [p for p in body["premises"] if p not in cmd.catalogue or cmd.catalogue[p].retired]
    if unknown:
        problems["premises"] = [f"Not premises in use: {', '.join(unknown)}."]
    if not 1 <= body["confirm_days"] <= MAX_CONFIRM_DAYS:
        problems["confirm_days"] = [f"From 1 to {MAX_CONFIRM_DAYS} days."]
    if wrong_criteria := criteria_problems(body["criteria"]):
        problems["criteria"] = wrong_criteria
    if problems:
        raise RuleBroken(problems)
    return [
        AllocationRoundOpened(
            round_id=cmd.round_id,
            name=dict(body["name"]),
            season_start=body["season_start"].isoformat(),
            season_end=body["season_end"].isoformat(),
            applications_open=body["applications_open"],
            applications_close=body["applications_close"],
            premises=list(dict.fromkeys(body["premises"])),
            criteria=[dict(c) for c in body["criteria"]],
            confirm_days=body["confirm_days"],
            opened_by=cmd.actor.user_id,
            opened_at=cmd.now,
        )
    ]


def _utc(instant: datetime) -> str:
    """An instant of no premises as API.md writes those: in UTC with `Z`."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _while_open(state: RoundState, now: Any) -> AllocationRoundOpened:
    opened = _existing(state)
    status = state.status(now)
    if status != "open":
        raise RuleBroken(
            {
                "applications_close": [
                    f"Applications are taken from {_utc(opened.applications_open)} "
                    f"until {_utc(opened.applications_close)}; the round is {status}."
                ]
            }
        )
    return opened


def _checked(body: dict[str, Any], opened: AllocationRoundOpened, cmd: Any) -> None:
    problems = application_problems(body, opened.premises, cmd.catalogue)
    if problems:
        raise RuleBroken(problems)


def _submit(cmd: SubmitApplication, state: RoundState) -> list[Event]:
    opened = _while_open(state, cmd.now)
    if cmd.application_id in state.applications:
        raise InvalidState("The application exists already.")
    if not cmd.actor.is_staff and cmd.actor.organisation_id != cmd.organisation_id:
        raise NotAllowed("A booker applies for their own organisation.")
    _checked(cmd.body, opened, cmd)
    body = cmd.body
    return [
        AllocationApplicationSubmitted(
            round_id=state.round_id,
            application_id=cmd.application_id,
            organisation_id=cmd.organisation_id,
            submitted_by=cmd.actor.user_id,
            purpose=body["purpose"],
            age_group=body["age_group"],
            group_size=body["group_size"],
            sections=[dict(s) for s in body["sections"]],
            submitted_at=cmd.now,
        )
    ]


def _application(state: RoundState, application_id: str, actor: Actor) -> ApplicationState:
    application = state.applications.get(application_id)
    if application is None:
        raise NotFound(f"No application {application_id!r}.")
    if not actor.is_staff and actor.organisation_id != application.organisation_id:
        raise NotAllowed("The application is another organisation's.")
    return application


def _current(application: ApplicationState, expected: int | None) -> None:
    if expected is not None and expected != application.version:
        raise StaleVersion(application.version)
    if application.status == "withdrawn":
        raise InvalidState("The application was withdrawn.")


def _update(cmd: UpdateApplication, state: RoundState) -> list[Event]:
    application = _application(state, cmd.application_id, cmd.actor)
    _current(application, cmd.expected_version)
    opened = _while_open(state, cmd.now)
    merged = {
        "purpose": application.purpose,
        "age_group": application.age_group,
        "group_size": application.group_size,
        "sections": application.sections,
        **cmd.changes,
    }
    _checked(merged, opened, cmd)
    changes = {k: v for k, v in cmd.changes.items() if k != "terms_accepted"}
    if not changes:
        return []
    return [
        AllocationApplicationUpdated(
            state.round_id, cmd.application_id, changes, cmd.actor.user_id, cmd.now
        )
    ]


def _withdraw(cmd: WithdrawApplication, state: RoundState) -> list[Event]:
    application = _application(state, cmd.application_id, cmd.actor)
    _current(application, cmd.expected_version)
    _while_open(state, cmd.now)
    return [
        AllocationApplicationWithdrawn(
            state.round_id, cmd.application_id, cmd.actor.user_id, cmd.now
        )
    ]


def _allocating(state: RoundState, now: Any, doing: str) -> AllocationRoundOpened:
    opened = _existing(state)
    status = state.status(now)
    if status != "allocating":
        raise InvalidState(f"Staff {doing} while the round is allocating; it is {status}.")
    return opened


def _propose(cmd: RecordProposal, state: RoundState) -> list[Event]:
    _staff(cmd.actor)
    _allocating(state, cmd.now, "make a proposal")
    p = cmd.proposal
    return [
        AllocationProposed(
            state.round_id,
            list(p["allocations"]),
            list(p["unallocated"]),
            dict(p["metrics"]),
            cmd.actor.user_id,
            cmd.now,
        )
    ]


def _add(cmd: AddAllocation, state: RoundState) -> list[Event]:
    _staff(cmd.actor)
    opened = _allocating(state, cmd.now, "adjust the proposal")
    body = cmd.body
    application = state.applications.get(body["application_id"])
    if application is None or application.status == "withdrawn":
        raise RuleBroken({"application_id": ["No such application in this round."]})
    section = application.section(body["section"])
    if section is None:
        raise RuleBroken({"section": ["The application has no section of this name."]})
    premises_id = body["premises_id"]
    facts = cmd.catalogue.get(premises_id)
    if premises_id not in opened.premises or facts is None:
        raise RuleBroken({"premises_id": ["Not a premises of this round."]})
    day = WEEKDAYS.index(body["weekday"])
    start, end = clock_minutes(body["start_time"]), clock_minutes(body["end_time"])
    if end <= start:
        raise RuleBroken({"end_time": ["The slot ends after it begins."]})
    # Hard rules: a closed premises, a space taken at that time.
    if not any(o <= start and end <= c for o, c in facts.hours.opening.get(day, ())):
        raise InvalidState(
            f"{premises_id} is not open {body['weekday']} {body['start_time']}–{body['end_time']}."
        )
    if clash := _clash(cmd, state, premises_id, day, start, end):
        raise InvalidState(clash)
    # Soft rules: need a written reason.
    soft: list[str] = []
    if premises_id not in section["premises"]:
        soft.append("The section did not ask for this premises.")
    wish = next(
        (
            w
            for w in sorted(wishes_of(section), key=lambda w: not w.primary)
            if w.weekday == day and w.start <= start and end <= w.end
        ),
        None,
    )
    if wish is None:
        soft.append("The time is outside the section's wishes.")
    mine = [
        a
        for a in state.allocations.values()
        if a["application_id"] == application.application_id
        and a["section"] == section["name"]
        and a["status"] not in ("declined", "lapsed")
    ]
    if len(mine) >= section["slots_per_week"]:
        soft.append(f"The section asked for {section['slots_per_week']} slot(s) a week.")
    if any(a["weekday"] == body["weekday"] for a in mine):
        soft.append("The section has a slot that day already.")
    if end - start != section["duration_minutes"]:
        soft.append(f"The section asked for {section['duration_minutes']} minutes.")
    reason = cmd.override_reason.strip()
    if soft and not reason:
        raise RuleBroken({"override_reason": [*soft, "Give a reason to override."]})
    allocation = {
        "id": cmd.allocation_id,
        "application_id": application.application_id,
        "organisation_id": application.organisation_id,
        "section": section["name"],
        "premises_id": premises_id,
        "weekday": body["weekday"],
        "start_time": body["start_time"],
        "end_time": body["end_time"],
        "tier": body.get("tier"),
        "priority": "outside_wishes"
        if wish is None
        else ("primary" if wish.primary else "secondary"),
        "premises_rank": section["premises"].index(premises_id) + 1
        if premises_id in section["premises"]
        else None,
    }
    return [
        AllocationAdjusted(
            state.round_id, allocation, None, reason if soft else "", cmd.actor.user_id, cmd.now
        )
    ]


def _clash(
    cmd: AddAllocation, state: RoundState, premises_id: str, day: int, start: int, end: int
) -> str | None:
    """Why an allocation of `premises_id` at (day, start, end) cannot be added, if another
    one keeps it out: they share a space and their times meet, each followed by its own
    premises' buffer — the booking rules' conflict, which the allocator keeps too."""
    facts = cmd.catalogue[premises_id]
    spaces, buffer = facts.hours.occupies, facts.hours.buffer
    for other in state.allocations.values():
        if other["status"] in ("declined", "lapsed"):
            continue
        other_facts = cmd.catalogue.get(other["premises_id"])
        other_spaces = other_facts.hours.occupies if other_facts else {other["premises_id"]}
        if spaces.isdisjoint(other_spaces):
            continue
        other_buffer = other_facts.hours.buffer if other_facts else 0
        other_day = WEEKDAYS.index(other["weekday"])
        other_start, other_end = (
            clock_minutes(other["start_time"]),
            clock_minutes(other["end_time"]),
        )
        if not blocks(day, start, end + buffer, other_day, other_start, other_end + other_buffer):
            continue
        if other_day == day and other_start < end and start < other_end:
            return (
                f"The time is taken by allocation {other['id']} ({other['section']}, "
                f"{other['premises_id']} {other['start_time']}–{other['end_time']})."
            )
        # They do not overlap: the buffer of whichever comes first keeps them apart.
        other_first = (other_day + 1) % 7 == day or (other_day == day and other_start < start)
        kept, minutes = (
            (other["premises_id"], other_buffer) if other_first else (premises_id, buffer)
        )
        return (
            f"The time is too close to allocation {other['id']} ({other['section']}, "
            f"{other['premises_id']} {other['weekday']} {other['start_time']}–"
            f"{other['end_time']}): {kept} keeps {minutes} minutes free after each booking."
        )
    return None


def _remove(cmd: RemoveAllocation, state: RoundState) -> list[Event]:
    _staff(cmd.actor)
    _allocating(state, cmd.now, "adjust the proposal")
    if cmd.allocation_id not in state.allocations:
        raise NotFound(f"No allocation {cmd.allocation_id!r} in this round.")
    return [
        AllocationAdjusted(state.round_id, None, cmd.allocation_id, "", cmd.actor.user_id, cmd.now)
    ]


def _publish(cmd: Publish, state: RoundState) -> list[Event]:
    _staff(cmd.actor)
    opened = _allocating(state, cmd.now, "publish")
    if state.metrics is None:
        raise InvalidState("Make a proposal before publishing.")
    published: list[Event] = [
        AllocationRoundPublished(
            state.round_id,
            sorted(state.allocations),
            cmd.now + timedelta(days=opened.confirm_days),
            cmd.actor.user_id,
            cmd.now,
        )
    ]
    # Each offer holds its free occurrences from now on (API.md: "An offer holds its time
    # against other bookings"); dates taken since the proposal are skipped, not refused.
    return published + [
        AllocationOfferHeld(
            state.round_id,
            offer_id,
            hold.premises_id,
            list(hold.held),
            list(hold.skipped),
            cmd.now,
        )
        for offer_id, hold in sorted(cmd.holds.items())
        if offer_id in state.allocations
    ]


def _released(state: RoundState, offer: dict[str, Any], now: Any) -> list[Event]:
    """The offer's held time is freed (at its acceptance the series takes it over)."""
    if not offer.get("holding"):
        return []
    return [AllocationHoldReleased(state.round_id, offer["id"], offer["premises_id"], now)]


def _answer(cmd: AnswerOffer, state: RoundState) -> list[Event]:
    _existing(state)
    offer = state.allocations.get(cmd.allocation_id)
    if offer is None or state.published_at is None:
        raise NotFound(f"No offer {cmd.allocation_id!r}.")
    if not cmd.actor.is_staff and cmd.actor.organisation_id != offer["organisation_id"]:
        raise NotAllowed("The offer is another organisation's.")
    if offer["status"] != "offered":
        raise InvalidState(f"The offer is {offer['status']} already.")
    assert state.confirm_by is not None
    if cmd.now >= state.confirm_by:
        raise InvalidState("The offer has lapsed: its confirm_by has passed.")
    answer: Event
    if cmd.accept:
        answer = AllocationOfferAccepted(
            state.round_id, cmd.allocation_id, cmd.series_id, cmd.actor.user_id, cmd.now
        )
    else:
        answer = AllocationOfferDeclined(
            state.round_id, cmd.allocation_id, cmd.actor.user_id, cmd.reason, cmd.now
        )
    return [answer, *_released(state, offer, cmd.now)]


def _lapse(cmd: LapseOffers, state: RoundState) -> list[Event]:
    if state.confirm_by is None or cmd.now < state.confirm_by:
        return []
    return [
        event
        for offer_id, offer in sorted(state.allocations.items())
        if offer["status"] == "offered"
        for event in (
            AllocationOfferLapsed(state.round_id, offer_id, cmd.now),
            *_released(state, offer, cmd.now),
        )
    ]


def first_date(season_start: str, weekday: str) -> date:
    """The season's first date that falls on `weekday`."""
    day = date.fromisoformat(season_start)
    return day + timedelta(days=(WEEKDAYS.index(weekday) - day.weekday()) % 7)
