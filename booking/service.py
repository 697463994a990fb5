"""The service layer: load a premises, decide, append, project — in one transaction, retried
on a concurrency conflict, and idempotent under a client's Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from booking import notifications
from booking.domain.decide import Command, decide
from booking.domain.errors import DomainError, NotFound
from booking.domain.premises import PremisesState, evolve
from booking.tables import idempotency_keys
from events.sql import write_transaction
from events.store import (
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    prepare,
    read_stream,
    write,
)
from projections.bookings import bookings_table
from projections.runner import BY_EVENT, BY_POSITION, project_inline


def premises_stream(premises_id: str) -> str:
    return f"premises-{premises_id}"


class PremisesRepository:
    """One state per premises, kept in memory and caught up from the log on every load.

    A load reads committed events, and the transaction's own once it has appended: a second
    command on the same premises in one transaction brings the first one's events into the
    cached state. If that transaction (or savepoint) then rolls back, the state is dropped
    and rebuilt from the log on the next load (`forget_on_rollback`).
    """

    def __init__(self) -> None:
        self._states: dict[str, PremisesState] = {}
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def _caught_up(self, conn: Connection, premises_id: str) -> PremisesState:
        state = self._states.get(premises_id) or PremisesState(premises_id)
        for recorded in read_stream(conn, premises_stream(premises_id), state.version):
            evolve(state, recorded.to_event())
        self._states[premises_id] = state
        return state

    def decide(self, conn: Connection, premises_id: str, command: Command) -> tuple[int, list[Any]]:
        """(version decided on, events) for `command` against the premises' current state."""
        with self._locks[premises_id]:
            state = self._caught_up(conn, premises_id)
            return state.version, decide(command, state)

    def advance(self, premises_id: str, version: int, events: list[Any]) -> None:
        """`events`, decided at `version`, are now appended in the caller's transaction:
        evolve the kept state by them, so that the next load has nothing to read back and
        decode. The caller holds the premises (its lock, or SQLite's write lock) and has
        called `forget_on_rollback`, so no other writer can load the state meanwhile and a
        rollback drops it."""
        with self._locks[premises_id]:
            state = self._states.get(premises_id)
            if state is None or state.version != version:
                self.forget(premises_id)
                return
            for decided in events:
                evolve(state, decided)

    def zone(self, premises_id: str) -> ZoneInfo | None:
        """The premises' time zone as last loaded (None when not loaded)."""
        state = self._states.get(premises_id)
        return state.zone if state is not None else None

    def forget(self, premises_id: str | None = None) -> None:
        if premises_id is None:
            self._states.clear()
        else:
            self._states.pop(premises_id, None)

    def forget_on_rollback(self, conn: Connection, premises_id: str) -> None:
        """Drop the premises' state if `conn` rolls back what it appended. The append lock
        is still held when the listener runs, so no other writer can load it meanwhile."""

        def drop(*_: Any) -> None:
            self.forget(premises_id)

        event.listen(conn, "rollback", drop, once=True)
        event.listen(conn, "rollback_savepoint", drop, once=True)


def run_premises_command(
    conn: Connection,
    repository: PremisesRepository,
    premises_id: str,
    command: Command,
    metadata: Metadata,
    notify: bool = True,
) -> list[RecordedEvent]:
    """Decide, append, project inline and queue the e-mails — all in the caller's
    transaction. `notify=False` is for history that nobody should be told about (demo).

    On PostgreSQL the append lock is held from the append until commit, and every writer
    of every premises queues for it: so whatever does not need the events' positions —
    the projections that read only the events, and the mails — is written first, and only
    the append and the position-stamped projections run under the lock.
    """
    lock_premises(conn, [premises_id])
    version, events = repository.decide(conn, premises_id, command)
    prepared = prepare(premises_stream(premises_id), events, version, metadata)
    pending = list(zip(events, prepared, strict=True))
    project_inline(conn, pending, BY_EVENT)
    if notify:
        notifications.notify(conn, pending, datetime.now(UTC))
    recorded = write(conn, prepared, read_in_transaction=True)
    repository.forget_on_rollback(conn, premises_id)
    repository.advance(premises_id, version, events)
    project_inline(conn, list(zip(events, recorded, strict=True)), BY_POSITION)
    return recorded


def lock_premises(conn: Connection, premises_ids: Iterable[str]) -> None:
    """Serialise the writers of these premises until the transaction ends (PostgreSQL).

    Taken before deciding: otherwise N writers of one premises all decide on the same
    version, one wins and N-1 retry, round after round (60 bookings of one hall from 5
    processes ran out of retries). Writers of other premises go on meanwhile; they meet only
    at the short append lock, from drawing a position to commit. Several premises are
    locked in sorted order, before any append, so two such writers cannot deadlock. SQLite's
    BEGIN IMMEDIATE serialises every writer already.
    """
    if conn.dialect.name != "postgresql":
        return
    for premises_id in sorted(set(premises_ids)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:stream, 0))"),
            {"stream": premises_stream(premises_id)},
        )


def premises_of_booking(conn: Connection, booking_id: str) -> str:
    t = bookings_table
    found = conn.execute(select(t.c.premises_id).where(t.c.id == booking_id)).scalar()
    if found is None:
        raise NotFound(f"No booking {booking_id!r}.")
    return str(found)


def premises_of_series(conn: Connection, series_id: str) -> str:
    t = bookings_table
    found = conn.execute(
        select(t.c.premises_id).where(t.c.series_id == series_id).limit(1)
    ).scalar()
    if found is None:
        raise NotFound(f"No booking series {series_id!r}.")
    return str(found)


# --- transactions, retries, idempotency ---------------------------------------------------


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdempotencyKey:
    actor: str
    key: str
    request_hash: str

    @classmethod
    def of(cls, actor: str, key: str, method: str, path: str, body: Any) -> IdempotencyKey:
        canonical = json.dumps([method, path, body], sort_keys=True, default=str)
        return cls(actor, key, hashlib.sha256(canonical.encode()).hexdigest())


class IdempotencyKeyReused(Exception):
    """The key was used before with a different request."""


class Busy(Exception):
    """Too many concurrency conflicts in a row: the client may retry."""


ProblemOf = Callable[[DomainError], Outcome]

# Retries are bounded by time, not by count: each conflict means another writer of the same
# premises committed, so a burst of N writers needs up to N rounds; 50 bookings of one hall
# at once ran out of a fixed 30 attempts. The budget stays well inside a worker's timeout.
RETRY_BUDGET_SECONDS = 10.0
BACKOFF_FIRST_SECONDS = 0.002
BACKOFF_CAP_SECONDS = 0.05
INTEGRITY_RETRIES = 3


def backoff(attempt: int) -> float:
    """Full jitter on an exponential ceiling: spreads a burst of losers out so that the next
    round has few conflicts, without making a lone retry wait."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_FIRST_SECONDS * 2**attempt))


def execute(
    engine: Engine,
    handler: Callable[[Connection], Outcome],
    idempotency: IdempotencyKey | None = None,
    problem_of: ProblemOf | None = None,
) -> Outcome:
    """Run `handler` in a write transaction, retrying on conflicts.

    With an idempotency key the first outcome — success or refusal — is stored in the same
    transaction and returned again for a retry of the same request, appending nothing.
    """
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    integrity_errors = 0
    attempt = 0
    while True:
        try:
            with write_transaction(engine) as conn:
                if idempotency is not None:
                    stored = _stored_outcome(conn, idempotency)
                    if stored is not None:
                        return stored
                    outcome = _run_or_refuse(conn, handler, problem_of)
                    _store_outcome(conn, idempotency, outcome)
                    return outcome
                return handler(conn)
        except (ConcurrencyError, IntegrityError) as error:
            # Another writer got there first: back off a little and decide again. A unique or
            # exclusion violation means the same (a racing idempotent retry, a second line of
            # defence firing); one that persists is a real error.
            if isinstance(error, IntegrityError):
                integrity_errors += 1
                if integrity_errors > INTEGRITY_RETRIES:
                    raise
        pause = backoff(attempt)
        attempt += 1
        if time.monotonic() + pause > deadline:
            raise Busy("the premises is too busy right now; try again")
        time.sleep(pause)


def _run_or_refuse(
    conn: Connection, handler: Callable[[Connection], Outcome], problem_of: ProblemOf | None
) -> Outcome:
    if problem_of is None:
        return handler(conn)
    savepoint = conn.begin_nested()
    try:
        outcome = handler(conn)
    except DomainError as error:
        savepoint.rollback()
        return problem_of(error)
    savepoint.commit()
    return outcome


def _stored_outcome(conn: Connection, key: IdempotencyKey) -> Outcome | None:
    t = idempotency_keys
    row = conn.execute(select(t).where(t.c.actor == key.actor, t.c.key == key.key)).first()
    if row is None:
        return None
    if row.request_hash != key.request_hash:
        raise IdempotencyKeyReused(key.key)
    return Outcome(row.status, row.body, dict(row.headers))


def _store_outcome(conn: Connection, key: IdempotencyKey, outcome: Outcome) -> None:
    conn.execute(
        insert(idempotency_keys).values(
            actor=key.actor,
            key=key.key,
            request_hash=key.request_hash,
            status=outcome.status,
            body=outcome.body,
            headers=outcome.headers,
            created_at=datetime.now(UTC),
        )
    )
