"""`booking demo load`: the Mikkeli demo — its catalogue, organisations, accounts and a year
of bookings, all written through the same commands the API sends.

The history is planned first (booking.demo.history) and then run command by command, each
with its simulated `now`. Commands run in batches, one transaction per batch: a command's
decision sees the batch's earlier events (the repository reads its own transaction's
writes), and if a batch rolls back, the repository drops what it cached of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from booking.clock import Clock, Ids, random_ids, system_clock
from booking.demo import people as demo_people
from booking.demo.catalogue import CATALOGUE
from booking.demo.history import FUTURE_WEEKS, HISTORY_WEEKS, Plan, Planner, Step, anchor_of
from booking.demo.rounds import DemoRounds, RoundsDone
from booking.demo.steps import Done, run_step
from booking.domain.errors import DomainError, RuleBroken, SlotTaken
from booking.privacy import current_vault
from booking.progress import Progress
from booking.service import PremisesRepository
from booking.usecases.catalogue import Acting, register_premises
from booking.usecases.unit import Unit
from events.sql import read_transaction, write_transaction
from events.store import ConcurrencyError, Metadata, head_position
from projections.catalogue import premises_table

BATCH_SIZE = 200  # commands per transaction
T = TypeVar("T")


class CatalogueNotEmpty(Exception):
    """The demo loads only into a database without premises."""


@dataclass
class Tally:
    """What running the plan did, counted from the events it appended."""

    placed: int = 0
    pending: int = 0
    series: int = 0
    occurrences_skipped: int = 0
    cancelled: int = 0
    late: int = 0
    approved: int = 0
    rejected: int = 0
    refused_taken: int = 0
    refused_rules: int = 0
    refused_other: int = 0
    not_run: int = 0  # cancellations and decisions of bookings that were refused

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def count(self, done: Done, placed_ids: set[str]) -> None:
        for booking in done.placed:
            self.placed += 1
            self.pending += booking.status == "pending_approval"
            placed_ids.add(booking.id)
        self.series += done.series
        self.occurrences_skipped += done.skipped
        for booking in done.cancelled:
            self.cancelled += 1
            self.late += bool(booking.late)
        self.approved += done.approved
        self.rejected += done.rejected


@dataclass(frozen=True)
class Loaded:
    """What a demo load did: who was created, what was planned and what happened."""

    people: demo_people.People
    plan: Plan
    tally: Tally
    anchor: date
    seed: int
    events: int  # the log's head position afterwards
    seconds: float
    rounds: RoundsDone


def load(
    engine: Engine,
    repository: PremisesRepository,
    booking_count: int = 20_000,
    seed: int = 2026,
    if_empty: bool = False,
    anchor: date | None = None,
    clock: Clock = system_clock,
    ids: Ids = random_ids,
) -> str:
    """Load the demo and return a summary for people (`booking demo load`)."""
    try:
        loaded = load_demo(engine, repository, booking_count, seed, anchor, clock=clock, ids=ids)
    except CatalogueNotEmpty as error:
        if if_empty:
            return f"{error.args[0]}; the demo was not loaded."
        raise
    return summary(loaded)


def load_demo(
    engine: Engine,
    repository: PremisesRepository,
    booking_count: int = 20_000,
    seed: int = 2026,
    anchor: date | None = None,
    batch_size: int = BATCH_SIZE,
    clock: Clock = system_clock,
    ids: Ids = random_ids,
) -> Loaded:
    """Load the demo into a database without premises. The history is the same for the same
    seed and anchor week (the anchor defaults to `clock`'s today in Helsinki). Accounts and
    premises are made by the same handlers as the API's, with `clock` and `ids`."""
    started = time.monotonic()
    with read_transaction(engine) as conn:
        existing = conn.execute(select(func.count()).select_from(premises_table)).scalar_one()
    if existing:
        raise CatalogueNotEmpty(f"The catalogue already has {existing} premises")
    monday = anchor_of(anchor or clock().astimezone(ZoneInfo("Europe/Helsinki")).date())

    def register(conn: Connection) -> demo_people.People:
        people = demo_people.create(conn, clock, ids)
        acting = Acting(people.staff, clock(), Metadata(actor=people.staff.user_id))
        for p in CATALOGUE:
            register_premises(conn, repository, acting, p.profile, p.premises_id, notify=False)
        return people

    people = _in_transaction(engine, register)
    # The autumn's allocation round first: its accepted series are history the planner
    # keeps clear of; the spring's round waits for staff on the proposal.
    demo_rounds = DemoRounds(engine, repository, people, monday, seed, clock, ids)
    demo_rounds.make_clubs()
    demo_rounds.past()
    plan = Planner(seed, monday, people, demo_rounds.done.reserved).plan(booking_count)
    with Progress("demo", len(plan.steps), unit="cmd") as progress:
        tally = run(engine, repository, plan.steps, progress, batch_size, clock)
    rounds_done = demo_rounds.current()
    with read_transaction(engine) as conn:
        events = head_position(conn)
    return Loaded(
        people, plan, tally, monday, seed, events, time.monotonic() - started, rounds_done
    )


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work` in one write transaction, retried when another writer got in first. A
    rollback drops the repository's states of the premises it touched (the repository
    listens for it), so a retry decides on committed events only."""
    for _ in range(10):
        try:
            with write_transaction(engine) as conn:
                return work(conn)
        except ConcurrencyError:
            continue
    raise RuntimeError("the database is too busy to load the demo; try again")


def run(
    engine: Engine,
    repository: PremisesRepository,
    steps: Sequence[Step],
    progress: Callable[[int], None],
    batch_size: int = BATCH_SIZE,
    clock: Clock = system_clock,
) -> Tally:
    """Run the planned commands in order; refusals are counted, not raised."""
    tally, placed_ids = Tally(), set[str]()
    for first in range(0, len(steps), batch_size):
        batch = steps[first : first + batch_size]
        work = partial(
            _run_batch, repository=repository, batch=batch, placed_ids=placed_ids, clock=clock
        )
        done, new_ids = _in_transaction(engine, work)
        tally.add(done)
        placed_ids.update(new_ids)
        progress(len(batch))
    return tally


def _run_batch(
    conn: Connection,
    repository: PremisesRepository,
    batch: Sequence[Step],
    placed_ids: set[str],
    clock: Clock,
) -> tuple[Tally, set[str]]:
    done, new_ids = Tally(), set[str]()
    vault = current_vault()  # the one the demo's people were made with
    for step in batch:
        if step.needs is not None and step.needs not in placed_ids and step.needs not in new_ids:
            done.not_run += 1
            continue
        metadata = Metadata(actor=step.command.actor.user_id, correlation_id="demo")
        # notify=False: nobody is e-mailed about a history that never happened.
        unit = Unit(conn, repository, vault, metadata, clock, notify=False)
        try:
            finished = run_step(unit, step)
        except SlotTaken:
            done.refused_taken += 1
        except RuleBroken:
            done.refused_rules += 1
        except DomainError:
            done.refused_other += 1
        else:
            done.count(finished, new_ids)
    return done, new_ids


def summary(loaded: Loaded) -> str:
    tally, people, rounds = loaded.tally, loaded.people, loaded.rounds
    free = sum(p.profile["free_of_charge"] for p in CATALOGUE)
    districts = len({p.profile["district"] for p in CATALOGUE})
    refused = tally.refused_taken + tally.refused_rules + tally.refused_other
    lines = [
        f"Loaded the Mikkeli demo in {loaded.seconds:.1f} s (seed {loaded.seed}, anchor week "
        f"{loaded.anchor}: {HISTORY_WEEKS} weeks back, {FUTURE_WEEKS} ahead).",
        f"  premises       {len(CATALOGUE)} ({free} free of charge) in {districts} districts",
        f"  organisations  {len(people.organisation_ids)}, "
        f"users {len(people.bookers) + len(people.accounts) - 1}",
        f"  bookings       {tally.placed + rounds.booked:,} placed "
        f"({tally.series + rounds.accepted} weekly series, {rounds.accepted} of them from "
        "the autumn's allocation round), "
        f"{tally.cancelled:,} cancelled ({tally.late:,} late)",
        f"  approvals      {tally.pending:,} asked for, {tally.approved:,} approved, "
        f"{tally.rejected:,} rejected, the rest still pending",
        f"  refused        {refused:,} attempts skipped ({tally.refused_taken:,} slot taken, "
        f"{tally.refused_rules:,} rule broken, {tally.refused_other:,} other), "
        f"{tally.occurrences_skipped:,} series occurrences skipped",
        f"  rounds         autumn: {rounds.past_applications} applications, "
        f"{rounds.offers} offers, {rounds.accepted} accepted, {rounds.declined} declined",
        f"                 spring: {rounds.current_applications} applications, allocating; "
        f"the proposal leaves {rounds.unallocated} sections out: "
        f"/staff/rounds/{rounds.current_id}",
        f"  log            {loaded.events:,} events",
        "",
        "Demo accounts: sign in to the pages with the e-mail and password, send the token to "
        "the API.",
        f"  {'role':<9} {'e-mail':<24} {'password':<14} API token",
    ]
    for account in people.accounts:
        member = f"  ({account.organisation})" if account.organisation else ""
        lines.append(
            f"  {account.role:<9} {account.email:<24} {account.password:<14} {account.token}"
            f"{member}"
        )
    lines += [
        "",
        "Try: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:5000/api/v1/users/me",
    ]
    return "\n".join(lines)
