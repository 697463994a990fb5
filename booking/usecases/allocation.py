"""Allocation rounds' use cases: load a round's stream, decide, record — in the caller's
transaction. The API, the pages, the scheduler's lapse job and the demo all call these.

A round is one stream (`allocation-round-<id>`): applications, proposals, adjustments and
answers to offers are decided against the whole round, with its stream version as the
concurrency guard. Accepting an offer also places a weekly series in the premises' stream
through the ordinary series command, in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking import strong_identity
from booking.allocation.commands import (
    AddAllocation,
    AnswerOffer,
    Catalogue,
    LapseOffers,
    OfferHold,
    OpenRound,
    PremisesFacts,
    Publish,
    RecordProposal,
    RemoveAllocation,
    RoundCommand,
    SubmitApplication,
    UpdateApplication,
    WithdrawApplication,
)
from booking.allocation.decide import decide, first_date
from booking.allocation.model import Premises
from booking.allocation.solver import DEFAULT_TIME_LIMIT_SECONDS, propose
from booking.allocation.state import RoundState, evolve, round_stream
from booking.allocation.tiers import tier_of
from booking.allocation.validate import section_of
from booking.domain.commands import Actor, BookingRequest, PlaceSeries
from booking.domain.errors import NotFound, RuleBroken, SlotTaken
from booking.domain.recurrence import BadRecurrence, expand
from booking.recording import StreamAppend
from booking.recording import record as record_streams
from booking.service import PremisesRepository, lock_spaces
from booking.tables import organisations
from booking.usecases.unit import Unit, record
from events.catalog import AllocationOfferLapsed, BookingPlaced, BookingSeriesPlaced, Event
from events.decoding import event_of
from events.slot import Slot
from events.store import RecordedEvent, read_stream
from projections.allocation import allocations_table, applications_table, rounds_table
from projections.availability_tables import spaces_table
from projections.catalogue import premises_table

# --- loading and recording ------------------------------------------------------------------


def load_round(conn: Connection, round_id: str) -> RoundState:
    state = RoundState(round_id)
    for recorded in read_stream(conn, round_stream(round_id)):
        evolve(state, event_of(recorded))
    return state


def run_round_command(
    unit: Unit, round_id: str, command: RoundCommand, state: RoundState | None = None
) -> tuple[RoundState, list[Event]]:
    """Decide against the round's current state (`state` when the caller loaded it in this
    transaction) and record (`booking.recording.record`, at the unit's clock) with its
    version as guard. The mails they cause (application received, offers, declines, lapses)
    are written with them: booking/allocation_mails.py."""
    if state is None:
        state = load_round(unit.conn, round_id)
    events = decide(command, state)
    if events:
        append = StreamAppend(round_stream(round_id), events, state.version)
        record_streams(unit.conn, [append], unit.metadata, unit.clock(), notify=unit.notify)
        for event in events:
            evolve(state, event)
    return state, events


def catalogue(conn: Connection, premises_ids: Iterable[str]) -> Catalogue:
    """What the allocation rules need of these premises. A premises occupies the spaces
    the catalogue names (divisible halls), or itself alone where it names none, and keeps
    its rules' buffer after each allocation as after each booking."""
    t = premises_table
    # In id order: the allocator's model follows it, and ties must fall alike on every
    # database (PostgreSQL returns rows in heap order).
    rows = conn.execute(select(t).where(t.c.id.in_(sorted(set(premises_ids)))).order_by(t.c.id))
    found: Catalogue = {}
    for row in rows:
        spaces = frozenset(getattr(row, "spaces", None) or ())
        rules = row.rules or {}
        found[row.id] = PremisesFacts(
            Premises.from_opening_hours(
                row.id, row.opening_hours, spaces, int(rules.get("buffer_minutes", 0))
            ),
            int(rules.get("min_duration_minutes", 30)),
            int(rules.get("max_duration_minutes", 240)),
            bool(row.retired),
            row.capacity,
        )
    return found


def zone_of(conn: Connection, premises_id: str) -> ZoneInfo:
    t = premises_table
    found = conn.execute(select(t.c.timezone).where(t.c.id == premises_id)).scalar()
    return ZoneInfo(found or "Europe/Helsinki")


# --- staff: the round -------------------------------------------------------------------------


def open_round(
    unit: Unit,
    actor: Actor,
    round_id: str,
    body: dict[str, Any],
    now: datetime,
) -> RoundState:
    command = OpenRound(actor, round_id, body, catalogue(unit.conn, body["premises"]), now)
    return run_round_command(unit, round_id, command)[0]


def _existing(conn: Connection, round_id: str) -> RoundState:
    state = load_round(conn, round_id)
    if not state.exists:
        raise NotFound(f"No allocation round {round_id!r}.")
    return state


def round_of_application(conn: Connection, application_id: str) -> str:
    t = applications_table
    found = conn.execute(select(t.c.round_id).where(t.c.id == application_id)).scalar()
    if found is None:
        raise NotFound(f"No application {application_id!r}.")
    return str(found)


def round_of_allocation(conn: Connection, allocation_id: str) -> str:
    t = allocations_table
    found = conn.execute(select(t.c.round_id).where(t.c.id == allocation_id)).scalar()
    if found is None:
        raise NotFound(f"No allocation {allocation_id!r}.")
    return str(found)


# --- bookers: applications -----------------------------------------------------------------


def _check_strong_identity(conn: Connection, actor: Actor, sections: Any, strong: bool) -> None:
    """Premises with `rules.requires_strong_identity` take applications only from strong
    sessions (staff on behalf excepted): 403 when any wished premises asks for it."""
    wished = {
        p
        for section in sections or ()
        if isinstance(section, dict)
        for p in section.get("premises") or ()
        if isinstance(p, str)
    }
    for premises_id in sorted(wished):
        strong_identity.check(conn, premises_id, actor, strong)


def submit_application(
    unit: Unit,
    actor: Actor,
    round_id: str,
    application_id: str,
    organisation_id: str,
    body: dict[str, Any],
    now: datetime,
    strong: bool = False,
) -> RoundState:
    """`strong`: the session signed in strongly (booking.auth.signed_in_strongly)."""
    _check_strong_identity(unit.conn, actor, body.get("sections"), strong)
    state = _existing(unit.conn, round_id)
    assert state.opened is not None
    command = SubmitApplication(
        actor,
        application_id,
        organisation_id,
        body,
        catalogue(unit.conn, state.opened.premises),
        now,
    )
    return run_round_command(unit, round_id, command, state)[0]


def update_application(
    unit: Unit,
    actor: Actor,
    application_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
    now: datetime,
    strong: bool = False,
) -> RoundState:
    _check_strong_identity(unit.conn, actor, changes.get("sections"), strong)
    round_id = round_of_application(unit.conn, application_id)
    state = _existing(unit.conn, round_id)
    assert state.opened is not None
    command = UpdateApplication(
        actor,
        application_id,
        changes,
        catalogue(unit.conn, state.opened.premises),
        now,
        expected_version,
    )
    return run_round_command(unit, round_id, command)[0]


def withdraw_application(
    unit: Unit,
    actor: Actor,
    application_id: str,
    expected_version: int | None,
    now: datetime,
) -> RoundState:
    round_id = round_of_application(unit.conn, application_id)
    command = WithdrawApplication(actor, application_id, now, expected_version)
    return run_round_command(unit, round_id, command)[0]


# --- staff: proposal, adjustments, publication ----------------------------------------------


def _organisation_types(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    t = organisations
    rows = conn.execute(select(t.c.id, t.c.type).where(t.c.id.in_(sorted(set(ids)))))
    return {row.id: row.type for row in rows}


def previous_season_organisations(conn: Connection, state: RoundState) -> set[str]:
    """Organisations that accepted an allocation at any of this round's premises in the
    previous round: the latest round over any of them whose season ended before this one's
    began."""
    opened = state.opened
    assert opened is not None
    r = rounds_table
    earlier = conn.execute(
        select(r.c.id, r.c.premises, r.c.season_end)
        .where(r.c.season_end < opened.season_start, r.c.id != state.round_id)
        .order_by(r.c.season_end.desc(), r.c.id)
    )
    mine = set(opened.premises)
    previous = next((row.id for row in earlier if mine & set(row.premises)), None)
    if previous is None:
        return set()
    a = allocations_table
    rows = conn.execute(
        select(a.c.organisation_id).where(
            a.c.round_id == previous, a.c.status == "accepted", a.c.premises_id.in_(sorted(mine))
        )
    )
    return {row.organisation_id for row in rows}


def tiers(conn: Connection, state: RoundState) -> dict[str, int]:
    """application id → its tier (0 = the round's first criterion)."""
    opened = state.opened
    assert opened is not None
    applications = [a for a in state.applications.values() if a.status == "submitted"]
    types = _organisation_types(conn, (a.organisation_id for a in applications))
    previous = previous_season_organisations(conn, state)
    return {
        a.application_id: tier_of(
            opened.criteria,
            age_group=a.age_group,
            purpose=a.purpose,
            organisation_type=types.get(a.organisation_id, "other"),
            previous_season=a.organisation_id in previous,
        )
        for a in applications
    }


def make_proposal(
    unit: Unit,
    actor: Actor,
    round_id: str,
    now: datetime,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> RoundState:
    """The allocator's proposal (`time_limit`: wall-clock seconds for the solver; the demo,
    which must give the same proposal on a loaded machine, allows more)."""
    state = _existing(unit.conn, round_id)
    assert state.opened is not None
    tier_by_application = tiers(unit.conn, state)
    sections = [
        section_of(a.application_id, a.organisation_id, tier_by_application[a.application_id], s)
        for a in state.applications.values()
        if a.status == "submitted"
        for s in a.sections
    ]
    facts = catalogue(unit.conn, state.opened.premises)
    hours = {p: f.hours for p, f in facts.items() if not f.retired}
    proposal = propose(sections, hours, time_limit=time_limit)
    body = proposal.as_json()
    organisation_of = {a.application_id: a.organisation_id for a in state.applications.values()}
    for allocation in body["allocations"]:
        allocation["organisation_id"] = organisation_of[allocation["application_id"]]
    command = RecordProposal(actor, body, now)
    return run_round_command(unit, round_id, command)[0]


def add_allocation(
    unit: Unit,
    actor: Actor,
    round_id: str,
    allocation_id: str,
    body: dict[str, Any],
    now: datetime,
) -> RoundState:
    state = _existing(unit.conn, round_id)
    assert state.opened is not None
    tier = tiers(unit.conn, state).get(body["application_id"])
    command = AddAllocation(
        actor,
        allocation_id,
        {**body, "tier": None if tier is None else tier + 1},
        body.get("override_reason") or "",
        catalogue(unit.conn, state.opened.premises),
        now,
    )
    return run_round_command(unit, round_id, command)[0]


def remove_allocation(
    unit: Unit,
    actor: Actor,
    round_id: str,
    allocation_id: str,
    now: datetime,
) -> RoundState:
    return run_round_command(unit, round_id, RemoveAllocation(actor, allocation_id, now))[0]


def publish(unit: Unit, actor: Actor, round_id: str, now: datetime) -> RoundState:
    """Every allocation becomes an offer that holds its season's free occurrences.

    What each offer holds is decided as its series would be (a dry run of the same
    command, `hold_of`), under the locks of every space of the offered premises, taken in
    sorted order as a booking takes its own: no booking or pop-up request can take an
    occurrence between that look and the commit, and on PostgreSQL the exclusion
    constraint on the availability rows would refuse it anyway. An occurrence booked since
    the proposal is not refused but skipped: the offer lists it, as the series preview did.
    """
    state = _existing(unit.conn, round_id)
    holds: dict[str, OfferHold] = {}
    if state.status(now) == "allocating" and state.metrics is not None:
        commands = {
            offer_id: series_command(
                unit.conn, state, allocation, actor, hold_series_id(offer_id), now
            )
            for offer_id, allocation in sorted(state.allocations.items())
        }
        locked = sorted(
            {
                space
                for command in commands.values()
                for space in unit.premises.spaces_to_lock(
                    unit.conn, command.request.premises_id, command
                )
            }
        )
        lock_spaces(unit.conn, locked)
        holds = {offer_id: hold_of(unit, command, locked) for offer_id, command in commands.items()}
    return run_round_command(unit, round_id, Publish(actor, now, holds), state)[0]


def hold_series_id(allocation_id: str) -> str:
    """The id of the dry-run series a publication decides an offer's hold with (never
    recorded; derived, so deciding twice gives the same)."""
    return str(uuid.uuid5(_HOLD_NAMESPACE, allocation_id))


_HOLD_NAMESPACE = uuid.UUID("3b0f8c52-6c1e-4d0a-9a57-0c4e1f2d7a11")


def hold_of(unit: Unit, command: PlaceSeries, locked: list[str]) -> OfferHold:
    """The occurrences `command` would book now (held) and those it would skip, decided with
    what the premises and every premises sharing its spaces hold, under `locked`."""
    premises_id = command.request.premises_id
    try:
        _, events, _ = unit.premises.decide_shared(unit.conn, premises_id, command, locked)
    except (RuleBroken, SlotTaken) as error:  # no occurrence can be held: all skipped
        zone = unit.premises.zone(premises_id) or zone_of(unit.conn, premises_id)
        try:
            every = expand(command.request.slot, command.rrule, zone)
        except BadRecurrence:
            every = []
        reason = "conflict" if isinstance(error, SlotTaken) else str(error)
        skipped = [_span(slot) | {"reason": reason} for slot in every]
        return OfferHold(premises_id, [], skipped)
    header = next(e for e in events if isinstance(e, BookingSeriesPlaced))
    held = [_span(Slot(e.start, e.end)) for e in events if isinstance(e, BookingPlaced)]
    return OfferHold(premises_id, held, list(header.skipped))


def _span(slot: Slot) -> dict[str, Any]:
    return {"start": slot.start.isoformat(), "end": slot.end.isoformat()}


# --- offers: accept, decline, lapse ------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPlan:
    """What accepting an allocation would book: its series command, and the dates that
    closures or existing bookings would skip (from a dry run of the same decision)."""

    command: PlaceSeries
    skipped: list[dict[str, Any]]
    booked: int


def series_command(
    conn: Connection,
    state: RoundState,
    allocation: dict[str, Any],
    actor: Actor,
    series_id: str,
    now: datetime,
) -> PlaceSeries:
    """The weekly series over the rest of the season, in the premises' local wall time."""
    opened = state.opened
    assert opened is not None
    zone = zone_of(conn, allocation["premises_id"])
    start_day = max(date.fromisoformat(opened.season_start), now.astimezone(zone).date())
    first = first_date(start_day.isoformat(), allocation["weekday"])
    start = datetime.combine(first, time.fromisoformat(allocation["start_time"]), zone)
    end = datetime.combine(first, time.fromisoformat(allocation["end_time"]), zone)
    application = state.applications[allocation["application_id"]]
    until = date.fromisoformat(opened.season_end).strftime("%Y%m%dT235959")
    request = BookingRequest(
        premises_id=allocation["premises_id"],
        slot=Slot(start, end),
        title=f"{application.purpose} — {allocation['section']}"[:300],
        attendees=application.group_size,
        public=False,
        notes="",
        organisation_id=allocation["organisation_id"],
    )
    return PlaceSeries(actor, series_id, request, f"FREQ=WEEKLY;UNTIL={until}", "skip", now)


def preview_series(
    conn: Connection,
    repository: PremisesRepository,
    state: RoundState,
    allocation: dict[str, Any],
    actor: Actor,
    series_id: str,
    now: datetime,
) -> SeriesPlan:
    command = series_command(conn, state, allocation, actor, series_id, now)
    try:
        _, events = repository.decide(conn, allocation["premises_id"], command)
    except Exception as error:  # every date refused: say why instead of failing the list
        return SeriesPlan(command, [{"reason": str(error)}], 0)
    header = next(e for e in events if isinstance(e, BookingSeriesPlaced))
    booked = sum(1 for e in events if isinstance(e, BookingPlaced))
    return SeriesPlan(command, list(header.skipped), booked)


def answer_offer(
    unit: Unit,
    actor: Actor,
    allocation_id: str,
    accept: bool,
    series_id: str,
    reason: str,
    now: datetime,
    state: RoundState | None = None,
) -> tuple[RoundState, list[RecordedEvent]]:
    """Accept (placing the weekly series in the same transaction) or decline an offer.
    `state`: the offer's round as the caller holds it, current (`run_round_command`)."""
    round_id = round_of_allocation(unit.conn, allocation_id)
    if accept:
        # The offer's hold gives way to the series in this transaction. Holding the spaces'
        # locks from before the hold is released until commit, as the series' own writer
        # does, leaves nobody a moment to take the time in between.
        a = allocations_table
        premises_id = unit.conn.execute(
            select(a.c.premises_id).where(a.c.id == allocation_id)
        ).scalar_one()
        lock_spaces(unit.conn, spaces_of(unit.conn, premises_id))
    state, _ = run_round_command(
        unit, round_id, AnswerOffer(actor, allocation_id, accept, series_id, reason, now), state
    )
    placed: list[RecordedEvent] = []
    if accept:
        allocation = state.allocations[allocation_id]
        command = series_command(unit.conn, state, allocation, actor, series_id, now)
        placed = record(unit, allocation["premises_id"], command)
    return state, placed


def lapse_offers(unit: Unit, now: datetime) -> int:
    """Every offer not answered by its confirm_by lapses (the scheduler's job)."""
    a = allocations_table
    due = unit.conn.execute(
        select(a.c.round_id)
        .where(a.c.status == "offered", a.c.confirm_by <= now)
        .group_by(a.c.round_id)
        .order_by(a.c.round_id)
    )
    lapsed = 0
    for (round_id,) in due.all():
        _, events = run_round_command(unit, round_id, LapseOffers(now))
        lapsed += sum(1 for e in events if isinstance(e, AllocationOfferLapsed))
    return lapsed


def spaces_of(conn: Connection, premises_id: str) -> list[str]:
    t = spaces_table
    found = conn.execute(select(t.c.space_id).where(t.c.premises_id == premises_id))
    return sorted(found.scalars()) or [premises_id]
