"""The service layer: load a premises, decide, record — in one transaction, retried on a
concurrency conflict, and idempotent under a client's Idempotency-Key.

No clock is read here: the time comes from the caller (`booking.clock`, `Runtime.clock`).

How no two holdings of one piece of floor overlap (DESIGN.md invariant 2), whatever the
number of processes:

1. A command that may occupy time — a booking, a series, a pop-up request, a closure, new
   `spaces` or a registration — takes a lock per space it touches (`lock_spaces`), in
   sorted order. A hall and its halves share spaces, so their occupying writers queue at
   the shared space's lock; the halves (no shared space) don't. Every premises occupies
   at least one space, so this also queues the premises' own occupying writers.
2. Any other command (cancel, approve, reject, withdraw, expire, retire) only frees time or
   changes none: it takes the premises' lock (`lock_premises`) so that its own writers
   queue rather than race. No transaction takes both kinds of lock, and each kind is taken
   in sorted order: no two writers wait for each other in a circle. Where an occupying
   and a freeing writer of one premises meet, the stream's version refuses the later one,
   which decides again.
3. Under those locks it reads what *other* premises hold on its spaces from the
   availability projection (`projections.availability.shared_between`). That projection is
   written in the transaction of every append, and everyone who adds a row to a space holds
   that space's lock until commit: what is read cannot change before this writer commits.
   A freeing writer may commit meanwhile; a decision that still sees the freed time is
   merely cautious.
4. The decider is handed that (`booking.domain.spaces.Shared`) and refuses an overlap
   across premises as it does within one. A closure that cancels others' bookings appends
   to their streams too, at the version it read under the shared lock.
5. On PostgreSQL an exclusion constraint on (space, tstzrange(start, blocked_until)) refuses
   an overlap even if all that were bypassed (migration 0008; the space by its integer key
   since 0013); SQLite's BEGIN IMMEDIATE
   serialises every writer, and the locks are not needed there.

A premises' spaces are known before the locks only from the state kept in memory; they
change only under the locks of the old and the new spaces, so once the believed spaces are
locked and the state caught up, either they are still the spaces or the writer retries.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from booking.domain.commands import AddClosure, RegisterPremises, UpdatePremises
from booking.domain.decide import (
    Command,
    close_elsewhere,
    decide,
    shared_window,
    spaces_after,
    spaces_touched,
)
from booking.domain.errors import DomainError, NotFound
from booking.domain.premises import BookingRecord, PremisesState, evolve
from booking.domain.spaces import NOTHING_SHARED, OFFER, Occupied, Shared, by_premises
from booking.recording import StreamAppend, record
from booking.tables import idempotency_keys
from events import pipeline
from events.decoding import event_of
from events.slot import Slot
from events.sql import read_transaction, write_transaction
from events.store import (
    READ_STREAM,
    READ_TAIL,
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    read_stream,
)
from projections.availability_read import (
    SHARED_BETWEEN,
    shared_between,
    shared_params,
    shared_rows,
)
from projections.bookings import bookings_table


def premises_stream(premises_id: str) -> str:
    return f"premises-{premises_id}"


def _tail_ahead(premises_id: str, version: int, lean: bool = False) -> pipeline.Ahead:
    """The read of a premises stream's tail from its kept state's last event (at `version`)
    that `_caught_up` will look up, to send ahead. `lean`: that event's data left out
    (`READ_TAIL`): 1.4 % of a booking's CPU on SQLite; on PostgreSQL it saved no CPU and its
    round trip measured a little slower, so it keeps `READ_STREAM` there."""
    stream, after = premises_stream(premises_id), version - 1
    return pipeline.Ahead(
        READ_TAIL if lean else READ_STREAM,
        {"stream": stream, "after": after},
        ("stream", stream, after),
        lambda rows: [RecordedEvent(*row) for row in rows],
    )


class PremisesRepository:
    """One state per premises, kept in memory and caught up from the log on every load.

    After an append the state is evolved by the events just decided (`advance`), so the
    next load has nothing to read back and decode. Whether the transaction then commits is
    not known here: it may roll back, a savepoint may, or the commit itself may fail. So
    every load checks the kept state against the log: it reads the stream from the state's
    own last event on, and that row must be the very event the state last took in (same
    version, position and time of recording). If it is not there, or is another event,
    the state ran ahead of the log and is rebuilt from the start of the stream.
    """

    def __init__(self) -> None:
        self._states: dict[str, PremisesState] = {}
        # Per premises, (position, recorded_at) of the last event its kept state took in.
        self._last: dict[str, tuple[int, datetime]] = {}
        # Reentrant: a transaction of two commands of one premises (a closure's, an accepted
        # offer's) may send the first one's held writes — and so `advance` — while the second
        # holds the lock in `decide_shared`; the second's load then sees the state moved on
        # and reads the stream again.
        self._locks: defaultdict[str, threading.RLock] = defaultdict(threading.RLock)

    def _caught_up(self, conn: Connection, premises_id: str) -> PremisesState:
        # Writes of an earlier command of this transaction first, and their `advance`: a
        # tail read ahead is not newer than them (a cancellation after a closure's).
        pipeline.send_held(conn)
        stream = premises_stream(premises_id)
        state = self._states.get(premises_id)
        last = self._last.get(premises_id)
        if state is None or last is None or state.version == 0:
            state, recorded = PremisesState(premises_id), read_stream(conn, stream)
        else:
            ahead = pipeline.remembered(conn, ("stream", stream, state.version - 1))
            recorded = ahead if ahead is not None else read_stream(conn, stream, state.version - 1)
            if recorded and _identity(recorded[0]) == (state.version, *last):
                recorded = recorded[1:]
            else:  # ahead of the log: what it took in never committed
                state, recorded = PremisesState(premises_id), read_stream(conn, stream)
        self._took_in(state, recorded)
        self._states[premises_id] = state
        return state

    def _took_in(self, state: PremisesState, recorded: list[RecordedEvent]) -> None:
        for event_ in recorded:
            # Decoded without marshmallow: the log holds only what `serializer.dump` wrote.
            evolve(state, event_of(event_))
        if recorded:
            self._last[state.premises_id] = (recorded[-1].position, recorded[-1].recorded_at)

    def decide(self, conn: Connection, premises_id: str, command: Command) -> tuple[int, list[Any]]:
        """(version decided on, events) for `command` against the premises' current state,
        when nothing other premises hold matters to it (expiry; see `decide_shared`)."""
        with self._locks[premises_id]:
            state = self._caught_up(conn, premises_id)
            return state.version, decide(command, state)

    def decide_on_state(
        self, conn: Connection, premises_id: str, command: Command
    ) -> tuple[PremisesState, list[Any]]:
        """`decide`, with the state it decided on (its `version` the one to append at):
        the expiry job takes what its mails say of each request from it."""
        with self._locks[premises_id]:
            state = self._caught_up(conn, premises_id)
            return state, decide(command, state)

    def spaces_to_lock(self, conn: Connection, premises_id: str, command: Command) -> list[str]:
        """The spaces `command` must hold the locks of ([] when it occupies no time), as the
        state kept in memory knows them: read before any lock, they may be stale, which
        `decide_shared` finds out under the locks."""
        with self._locks[premises_id]:
            state = self._states.get(premises_id)
            if state is None or state.version == 0:
                state = self._caught_up(conn, premises_id)
            # Catalogue changes lock too: a new buffer changes what neighbours may book.
            catalogue = isinstance(command, RegisterPremises | UpdatePremises)
            if shared_window(command, state) is None and not catalogue:
                return []
            return sorted(set(spaces_touched(command, state)))

    def decide_shared(
        self, conn: Connection, premises_id: str, command: Command, locked: list[str]
    ) -> tuple[int, list[Any], Shared]:
        """(version decided on, events, what others hold) for `command`, deciding with what
        other premises hold on its spaces, read under the `locked` spaces' locks."""
        with self._locks[premises_id]:
            state = self._caught_up(conn, premises_id)
            window = shared_window(command, state)
            if window is None:
                return state.version, decide(command, state), NOTHING_SHARED
            if not set(spaces_touched(command, state)) <= set(locked):
                # Its spaces changed before its lock was taken: lock the right ones.
                raise ConcurrencyError(premises_stream(premises_id), state.version)
            shared = read_shared(conn, premises_id, spaces_after(command, state), window)
            return state.version, decide(command, state, shared), shared

    def decide_elsewhere(
        self, conn: Connection, premises_id: str, closure: AddClosure
    ) -> tuple[int, list[Any]]:
        """What a closure of a premises sharing a space does to this one's bookings."""
        with self._locks[premises_id]:
            state = self._caught_up(conn, premises_id)
            return state.version, close_elsewhere(closure, state)

    def advance(self, premises_id: str, version: int, recorded: list[RecordedEvent]) -> None:
        """`recorded`, decided at `version`, were just written (or, with held writes, just
        committed: another writer of the premises may have loaded it meanwhile): evolve the
        kept state by them. The next load checks that they committed."""
        with self._locks[premises_id]:
            state = self._states.get(premises_id)
            if state is not None and state.version >= version + len(recorded) > version:
                return  # caught up past them from the log already, by a later writer
            if state is None or state.version != version:
                self.forget(premises_id)
                return
            self._took_in(state, recorded)

    def reads_ahead(
        self, conn: Connection, premises_id: str, command: Command
    ) -> list[pipeline.Ahead]:
        """What `run_premises_command` will read for `command` under its locks — the locks
        of its spaces, the stream's tail, what others hold there — as the state kept in
        memory foresees it, to send in one round trip with the caller's other reads
        (`events.pipeline.read_ahead`). The locks are taken in the same sorted order; a
        stale foresight is found out as usual (the tail, `lock_spaces`) and costs only
        the reads it missed. Nothing when the state is not loaded or the command
        occupies no time."""
        state = self._states.get(premises_id)
        if state is None or state.version == 0 or premises_id not in self._last:
            return []
        window = shared_window(command, state)
        if window is None or isinstance(command, RegisterPremises | UpdatePremises):
            return []
        spaces = sorted(set(spaces_touched(command, state)))
        postgres = conn.dialect.name == "postgresql"  # SQLite: no locks (BEGIN IMMEDIATE)
        reads = [
            pipeline.Ahead(_LOCK, {"key": space_lock_key(s)}, ("locked", s))
            for s in (spaces if postgres else [])
        ]
        reads.append(_tail_ahead(premises_id, state.version, lean=not postgres))
        others = sorted(set(spaces_after(command, state)))
        reads.append(
            pipeline.Ahead(
                SHARED_BETWEEN[conn],
                shared_params(premises_id, others, window),
                ("shared", premises_id, tuple(others), window),
                shared_rows,
            )
        )
        if not postgres:
            return reads
        return [*reads, pipeline.Ahead(None, {}, ("locked-ahead",), lambda _: spaces)]

    def tails_ahead(self, premises_ids: Iterable[str]) -> list[pipeline.Ahead]:
        """The stream reads `decide` will make for these premises (each one's tail from its
        kept state's last event), to send in one round trip (`events.pipeline.read_ahead`)
        after their locks; none for a premises not loaded. A state that moves on meanwhile
        only misses its read: `_caught_up` looks it up by the version it then has."""
        reads = []
        for premises_id in premises_ids:
            state = self._states.get(premises_id)
            if state is None or state.version == 0 or premises_id not in self._last:
                continue
            reads.append(_tail_ahead(premises_id, state.version))
        return reads

    def premises_of_booking(self, booking_id: str) -> str | None:
        """The premises whose kept state knows the booking (a booking never moves), or None
        when none does: a foresight for a command's first reads (`reads_ahead`), which the
        command checks against the bookings' rows under the premises' lock."""
        for premises_id, state in list(self._states.items()):
            if booking_id in state.bookings:
                return premises_id
        return None

    def booker_of(self, premises_id: str, booking_id: str) -> str | None:
        """Who placed the booking, as the premises' kept state knows it (None when not)."""
        record = self._booking(premises_id, booking_id)
        return record.booked_by if record is not None else None

    def booking_version(self, premises_id: str, booking_id: str) -> int | None:
        """The booking's version as the premises' kept state knows it (None when not)."""
        record = self._booking(premises_id, booking_id)
        return record.version if record is not None else None

    def _booking(self, premises_id: str, booking_id: str) -> BookingRecord | None:
        state = self._states.get(premises_id)
        return state.bookings.get(booking_id) if state is not None else None

    def zone(self, premises_id: str) -> ZoneInfo | None:
        """The premises' time zone as last loaded (None when not loaded)."""
        state = self._states.get(premises_id)
        return state.zone if state is not None else None

    def forget(self, premises_id: str | None = None) -> None:
        if premises_id is None:
            self._states.clear()
            self._last.clear()
        else:
            self._states.pop(premises_id, None)
            self._last.pop(premises_id, None)


def _identity(recorded: RecordedEvent) -> tuple[int, int, datetime]:
    return recorded.version, recorded.position, recorded.recorded_at


def read_shared(conn: Connection, premises_id: str, spaces: Iterable[str], window: Any) -> Shared:
    """What premises other than this one hold on `spaces` meeting `window`."""
    ordered = sorted(set(spaces))
    rows = pipeline.remembered(conn, ("shared", premises_id, tuple(ordered), window))
    if rows is None:
        rows = shared_between(conn, premises_id, ordered, window)
    return Shared(
        window,
        tuple(
            Occupied(
                r.premises_id,
                r.ref_id,
                r.kind,
                Slot.of_utc(r.start, r.end),
                timedelta(minutes=r.buffer_minutes),
            )
            for r in rows
        ),
    )


def run_premises_command(
    conn: Connection,
    repository: PremisesRepository,
    premises_id: str,
    command: Command,
    metadata: Metadata,
    notify: bool = True,
    *,
    now: datetime,
) -> list[RecordedEvent]:
    """Decide and record (`booking.recording.record`: append, project inline, queue the
    e-mails) — all in the caller's transaction, the events recorded at `now`.
    `notify=False` is for history that nobody should be told about (demo).

    An occupying command first takes the locks of its spaces and decides with what other
    premises hold on them (see the module doc); a closure that cancels others' bookings
    records on their streams too, in the same `record`.
    """
    locked = repository.spaces_to_lock(conn, premises_id, command)
    if locked:
        lock_spaces(conn, locked)
    else:
        lock_premises(conn, [premises_id])
    version, events, shared = repository.decide_shared(conn, premises_id, command, locked)
    appends = [(premises_id, version, events)]
    if isinstance(command, AddClosure) and command.cancel_conflicting:
        # The closure closes the floor: what premises sharing it hold there is cancelled
        # on their own streams (their writers that occupy time wait at the same locks).
        # (Allocation offers are not cancelled: the offer's series skips the closed dates.)
        taken = [o for o in shared.items if o.kind not in ("closure", OFFER)]
        for other in sorted(by_premises(taken)):
            other_version, cancelled = repository.decide_elsewhere(conn, other, command)
            if cancelled:
                appends.append((other, other_version, cancelled))
    streams = [StreamAppend(premises_stream(p), evs, v) for p, v, evs in appends]
    recorded = record(conn, streams, metadata, now, notify=notify)
    for (appended_to, at_version, _), mine in zip(appends, recorded, strict=True):
        # Once the events have their positions (held writes get them at the commit).
        pipeline.then(conn, partial(repository.advance, appended_to, at_version, mine))
    return [r for mine in recorded for r in mine]


def lock_premises(conn: Connection, premises_ids: Iterable[str]) -> None:
    """Serialise the writers of these premises until the transaction ends (PostgreSQL):
    the guard of commands that occupy no new time (occupying ones lock their spaces
    instead, `lock_spaces`; no transaction takes both kinds — see the module doc).

    Taken before deciding: otherwise N writers of one premises all decide on the same
    version, one wins and N-1 retry, round after round (60 bookings of one hall from 5
    processes ran out of retries). Writers of other premises go on meanwhile; they meet only
    at the short append lock, from drawing a position to commit. Several premises are
    locked in sorted order, before any append, so two such writers cannot deadlock. SQLite's
    BEGIN IMMEDIATE serialises every writer already.
    """
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted(set(premises_ids))
    taken = [p for p in wanted if pipeline.remembered(conn, ("locked-premises", p)) is not None]
    if taken:  # in the first round trip (`premises_locks_ahead`)
        if taken != wanted[: len(taken)]:
            # Taking the others now would break the sorted order.
            raise ConcurrencyError(premises_stream(wanted[0]), 0)
        wanted = wanted[len(taken) :]
    for premises_id in wanted:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:stream, 0))"),
            {"stream": premises_stream(premises_id)},
        )


def premises_locks_ahead(premises_ids: Iterable[str]) -> list[pipeline.Ahead]:
    """`lock_premises` as reads to send in one round trip (`events.pipeline.read_ahead`):
    the same locks in the same sorted order, each a statement the server runs in turn."""
    return [
        pipeline.Ahead(_LOCK, {"key": premises_stream(p)}, ("locked-premises", p))
        for p in sorted(set(premises_ids))
    ]


def space_lock_key(space_id: str) -> str:
    return f"space-{space_id}"


def lock_spaces(conn: Connection, space_ids: Iterable[str]) -> None:
    """Serialise the writers that occupy time on these spaces until the transaction ends
    (PostgreSQL), in sorted order; taken after every premises lock (see the module doc)."""
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted(set(space_ids))
    ahead = pipeline.remembered(conn, ("locked-ahead",))
    if ahead is not None:
        if ahead == wanted:
            return  # taken in the first round trip (`PremisesRepository.reads_ahead`)
        # Other spaces than foreseen: taking more now could break the sorted order.
        raise ConcurrencyError(space_lock_key(wanted[0]), 0)
    for space_id in wanted:
        conn.execute(_LOCK, {"key": space_lock_key(space_id)})


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


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
    """A client's key for one request, and when that request came (`used_at`: the time its
    first outcome is stored at)."""

    actor: str
    key: str
    request_hash: str
    used_at: datetime

    @classmethod
    def of(
        cls, actor: str, key: str, method: str, path: str, body: Any, now: datetime
    ) -> IdempotencyKey:
        canonical = _CANONICAL.encode([method, path, body])
        return cls(actor, key, hashlib.sha256(canonical.encode()).hexdigest(), now)


# `json.dumps` with options builds an encoder on every call: a third of the hash's cost.
_CANONICAL = json.JSONEncoder(sort_keys=True, default=str)


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

    The key is not looked up before the first attempt: most keys are new, and the lookup
    was a third of what a key added to a booking on SQLite. A repeat runs the handler, and
    the key's row (its primary key) refuses the second INSERT at the commit, which rolls
    back everything the attempt wrote (`_key_taken`); the next attempt looks the key up
    first and answers the stored outcome. A handler that raises instead of answering, on
    the first attempt, has the key looked up before its error goes out.
    """
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    integrity_errors = 0
    attempt = 0
    savepoint = False
    look_up = False
    while True:
        try:
            # Writes wait for the COMMIT and go with it: one round trip (events.pipeline).
            with write_transaction(engine, held=True) as conn:
                if idempotency is None:
                    return handler(conn)
                if look_up:
                    # The key's lookup goes with the handler's first reads: one round trip.
                    pipeline.read_soon(conn, _stored_ahead(idempotency), _replay(idempotency))
                try:
                    outcome = _run_or_refuse(conn, handler, problem_of, savepoint)
                except _Stored as found:
                    pipeline.drop_held(conn)
                    return found.outcome
                _store_outcome(conn, idempotency, outcome)
                return outcome
        except _WroteBeforeRefusal:
            savepoint = True  # again, the old way: the refusal rolls back to a savepoint
            continue
        except (ConcurrencyError, IntegrityError) as error:
            if idempotency is not None and not look_up and _key_taken(error):
                look_up = True  # a repeat (or a racing twin): answer from the key's row
                continue
            # Another writer got there first: back off a little and decide again. A unique or
            # exclusion violation means the same (a racing idempotent retry, a second line of
            # defence firing); one that persists is a real error.
            # A stream's version taken by another writer is a ConcurrencyError that held
            # writes (events.pipeline) meet only at the commit: retried as one.
            if isinstance(error, IntegrityError) and not _version_taken(error):
                integrity_errors += 1
                if integrity_errors > INTEGRITY_RETRIES:
                    raise
        except Exception:
            if idempotency is not None and not look_up:
                # Not answered from the key's row yet: a repeat's first outcome wins.
                with read_transaction(engine) as conn:
                    stored = _stored_outcome(conn, idempotency)
                if stored is not None:
                    return stored
            raise
        pause = backoff(attempt)
        attempt += 1
        if time.monotonic() + pause > deadline:
            raise Busy("the premises is too busy right now; try again")
        time.sleep(pause)


def _version_taken(error: IntegrityError) -> bool:
    """Whether the error is the events' (stream, version) key refusing a second writer."""
    said = str(error.orig)
    return "uq_events_stream_version" in said or "events.stream, events.version" in said


def _key_taken(error: Exception) -> bool:
    """Whether the error is the idempotency keys' primary key refusing a key's second row
    (PostgreSQL names the constraint `idempotency_keys_pkey`; SQLite, the columns)."""
    return isinstance(error, IntegrityError) and "idempotency_keys" in str(error.orig)


class _WroteBeforeRefusal(Exception):
    """A refusal came after a write that was not held: only a savepoint can undo it."""


def _run_or_refuse(
    conn: Connection,
    handler: Callable[[Connection], Outcome],
    problem_of: ProblemOf | None,
    savepoint_first: bool = False,
) -> Outcome:
    """The handler's outcome, or its refusal as a problem with nothing it wrote. Deciding
    is pure and the writes are held (`events.pipeline`), so a refusal drops them without a
    SAVEPOINT; only when something was written before the refusal after all (a person's
    first data key), the transaction runs again with one (`savepoint_first`)."""
    if problem_of is None:
        return handler(conn)
    if not savepoint_first and pipeline.holding(conn):
        try:
            return handler(conn)
        except DomainError as error:
            if not pipeline.drop_held(conn):
                raise _WroteBeforeRefusal() from error
            return problem_of(error)
    savepoint = conn.begin_nested()
    try:
        outcome = handler(conn)
    except DomainError as error:
        savepoint.rollback()
        return problem_of(error)
    savepoint.commit()
    return outcome


class _Stored(Exception):
    """The key's first outcome, found before anything was written: answer it again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


_STORED = select(
    idempotency_keys.c.request_hash,
    idempotency_keys.c.status,
    idempotency_keys.c.body,
    idempotency_keys.c.headers,
).where(idempotency_keys.c.actor == bindparam("actor"), idempotency_keys.c.key == bindparam("key"))


def _stored_ahead(key: IdempotencyKey) -> pipeline.Ahead:
    return pipeline.Ahead(
        _STORED,
        {"actor": key.actor, "key": key.key},
        ("idempotency", key.actor, key.key),
        lambda rows: rows[0] if rows else None,
    )


def _replay(key: IdempotencyKey) -> Callable[[Any], None]:
    """What to do with the key's stored row: nothing when there is none; else raise."""

    def check(row: Any) -> None:
        if row is None:
            return
        request_hash, status, body, headers = row
        if request_hash != key.request_hash:
            raise IdempotencyKeyReused(key.key)
        raise _Stored(Outcome(status, body, dict(headers)))

    return check


def _stored_outcome(conn: Connection, key: IdempotencyKey) -> Outcome | None:
    t = idempotency_keys
    row = conn.execute(select(t).where(t.c.actor == key.actor, t.c.key == key.key)).first()
    if row is None:
        return None
    if row.request_hash != key.request_hash:
        raise IdempotencyKeyReused(key.key)
    return Outcome(row.status, row.body, dict(row.headers))


def _store_outcome(conn: Connection, key: IdempotencyKey, outcome: Outcome) -> None:
    values = {
        "actor": key.actor,
        "key": key.key,
        "request_hash": key.request_hash,
        "status": outcome.status,
        "body": outcome.body,
        "headers": outcome.headers,
        "created_at": key.used_at,
    }
    pipeline.write(conn, _STORE_OUTCOME, values)


_STORE_OUTCOME = insert(idempotency_keys)
