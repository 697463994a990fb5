"""Feeding projections from the log.

- Inline projections are applied in the append's own transaction (`project_inline`).
- Asynchronous ones are fed by `catch_up`: a batch of events after the projection's
  checkpoint, the projection's writes and the new checkpoint commit in one transaction, so a
  crash at any point repeats nothing and skips nothing (exactly-once effect).
- `Runner` keeps them caught up: woken by PostgreSQL NOTIFY (a trigger on the events table,
  migration 0003) or by polling on SQLite.
- Replaying the log from zero is `projections.rebuilding`.

Nothing here reads the clock: a checkpoint's `updated_at` comes from the `clock` the caller
hands in (the booking side's, `booking.clock`).

Why `WHERE position > checkpoint` skips nothing (DESIGN.md invariant 3): `events.store.append`
holds an EXCLUSIVE lock on the events table from before it draws a position until it commits,
so positions commit in order. A reader that sees position p therefore sees every position
below p that will ever exist; SQLite has one writer at a time, which gives the same order.
`tests/integration/test_runner_concurrency.py` proves it with writers committing while the
runner reads, and shows that an append without the lock would be skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from events.catalog import Event
from events.decoding import event_of
from events.sql import read_transaction, write_transaction
from events.store import RecordedEvent, events_table, head_position, read_all, read_raw
from projections.allocation import Allocations
from projections.availability import Availability
from projections.base import Projection, checkpoints
from projections.batching import BatchProjection
from projections.bookings import Bookings
from projections.catalogue import Catalogue
from projections.feed_entries import FeedEntries
from projections.messages import Messages
from projections.popups import Popups
from projections.registry import Registry
from projections.usage.projection import Usage

# Every projection, inline or fed by the runner; add a new one here.
ALL: tuple[Projection, ...] = (
    Catalogue(),
    Bookings(),
    Availability(),
    FeedEntries(),
    Popups(),
    Messages(),
    Allocations(),
    Registry(),
    Usage(),
)
INLINE = tuple(p for p in ALL if p.inline)
ASYNC = tuple(p for p in ALL if not p.inline)

NOTIFY_CHANNEL = "tilavaraus_events"  # the trigger of migration 0003 notifies here
# The least time between the starts of two of the runner's rounds on PostgreSQL (`Runner`).
ROUND_SECONDS = 1.0

Progress = Callable[[int], None]
# The time a checkpoint is written at: handed in by the caller (`booking.clock.Clock`).
Clock = Callable[[], datetime]
# The connection that LISTENs for the events table's NOTIFY.
Listener = psycopg.Connection[tuple[Any, ...]]
log = logging.getLogger(__name__)


def by_name(names: Sequence[str] = ()) -> list[Projection]:
    known = {p.name: p for p in ALL}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [known[n] for n in names] if names else list(ALL)


# The inline projections that read only the events, and those that need their positions.
BY_EVENT = tuple(p for p in INLINE if not p.needs_position)
BY_POSITION = tuple(p for p in INLINE if p.needs_position)


def project_inline(
    conn: Connection,
    appended: Sequence[tuple[Event, RecordedEvent]],
    projections: Sequence[Projection] = INLINE,
) -> None:
    """Apply just-appended events to the inline projections, in the caller's transaction.
    (`BY_EVENT` may also be given events about to be appended: see `booking.service`.)
    Projections that handle none of the events are passed over (an expiry run's 10,000
    `PopupExpired` cost ~100 ms of misses in four projections that ignore them)."""
    names = {type(event).__name__ for event, _ in appended}
    for projection in projections:
        if not _handled(projection).isdisjoint(names):
            projection.apply_all(conn, appended)


_HANDLED: dict[type[Projection], frozenset[str]] = {}


def _handled(projection: Projection) -> frozenset[str]:
    """The projection's event type names, worked out once per class."""
    found = _HANDLED.get(type(projection))
    if found is None:
        found = _HANDLED[type(projection)] = projection.handled_types()
    return found


# --- checkpoints ------------------------------------------------------------------------


def checkpoint_name(projection: Projection) -> str:
    if isinstance(projection, BatchProjection):
        return projection.checkpoint_name
    return projection.name


def open_checkpoint(conn: Connection, name: str, now: datetime, lock: bool = False) -> int:
    """The checkpoint's position, created at 0 (at `now`) when missing; `lock` holds its row
    until the transaction ends, so two runners never feed one projection at once."""
    if lock and conn.dialect.name == "postgresql":
        conn.execute(
            postgresql.insert(checkpoints)
            .values(name=name, position=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(checkpoints.c.position).where(checkpoints.c.name == name)
        return int(conn.execute(query.with_for_update()).scalar_one())
    found = conn.execute(select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar()
    if found is None:
        conn.execute(insert(checkpoints).values(name=name, position=0, updated_at=now))
        return 0
    return int(found)


def read_checkpoint(conn: Connection, name: str) -> int:
    """The checkpoint's position without writing anything (0 when there is none yet)."""
    found = conn.execute(select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar()
    return int(found or 0)


def set_checkpoint(conn: Connection, name: str, position: int, now: datetime) -> None:
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.name == name)
        .values(position=position, updated_at=now)
    )


# --- catching up --------------------------------------------------------------------------


def _next_batch(
    conn: Connection, projection: Projection, after: int, limit: int
) -> tuple[list[RecordedEvent], int]:
    """The projection's events after `after` (its types only) and the position they take it
    to. When fewer than `limit` are left, that is the head read first: every event up to it
    has committed (see the module docstring), so the events of other types up to it are
    passed over for good."""
    head = head_position(conn)
    types = sorted(projection.handled_types())
    if isinstance(projection, BatchProjection):
        batch = read_raw(conn, after, limit, types)
    else:
        batch = read_all(conn, after, limit, types=types)
    if len(batch) == limit:
        return batch, batch[-1].position
    return batch, max(head, batch[-1].position if batch else after)


def _apply(conn: Connection, projection: Projection, batch: Sequence[RecordedEvent]) -> None:
    if isinstance(projection, BatchProjection):
        projection.apply_batch(conn, batch)
    else:
        for recorded in batch:
            projection.apply(conn, event_of(recorded), recorded)


def catch_up_once(
    conn: Connection, projection: Projection, batch_size: int, now: datetime
) -> int | None:
    """One batch in the caller's write transaction, its checkpoint written at `now`; the
    count of events applied, or None when the projection was already at the head."""
    name = checkpoint_name(projection)
    position = open_checkpoint(conn, name, now, lock=True)
    batch, reached = _next_batch(conn, projection, position, batch_size)
    if reached == position:
        return None
    _apply(conn, projection, batch)
    set_checkpoint(conn, name, reached, now)
    return len(batch)


def catch_up(
    engine: Engine,
    projections: Sequence[Projection] | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
    *,
    clock: Clock,
) -> int:
    """Feed asynchronous projections the events after their checkpoints; returns how many
    events were applied (an event that two projections take counts twice). Each round's
    batches and their checkpoints (at `clock()`) commit together, in one transaction for
    all the projections (`catch_up_together`); a round that read fewer events than
    `batch_size` reached the head read before it, and is the last."""
    chosen = list(projections if projections is not None else ASYNC)
    applied = 0
    while chosen:
        with write_transaction(engine) as conn:
            count, more = catch_up_together(conn, chosen, batch_size, clock())
        applied += count
        if progress and count:
            progress(count)
        if not more:
            break
    return applied


def catch_up_each(
    engine: Engine,
    projections: Sequence[Projection] | None = None,
    batch_size: int = 1000,
    *,
    clock: Clock,
) -> list[tuple[Projection, Exception]]:
    """`catch_up` of each projection on its own, for after a failed round: a projection
    that fails holds back only itself. Returns the projections that failed, with why."""
    failed = []
    for projection in projections if projections is not None else ASYNC:
        try:
            catch_up(engine, [projection], batch_size, clock=clock)
        except OperationalError:
            raise
        except Exception as error:  # the others go on; the caller reports it
            failed.append((projection, error))
    return failed


def catch_up_together(
    conn: Connection, projections: Sequence[Projection], batch_size: int, now: datetime
) -> tuple[int, bool]:
    """One round for several projections in the caller's write transaction: their
    checkpoints locked (and created at `now` when missing) and the head read in one
    statement; one read of the events of all their types after the lowest checkpoint; each
    projection's share applied; the moved checkpoints written at `now` in one statement.
    Returns the count applied and whether the batch was full (there may be more).

    Where `_next_batch` holds for one projection, this holds for each: an event of its
    types after its checkpoint and up to the last position read is in the batch, so when
    the batch is full the projection reaches that position; when it is not, also the head
    read before the events (every position up to it had committed: the module docstring)."""
    names = [checkpoint_name(p) for p in projections]
    found, head = _lock_checkpoints(conn, names, now)
    types = sorted(set().union(*(_handled(p) for p in projections)))
    after = min(found.values())
    if all(isinstance(p, BatchProjection) for p in projections):
        batch = read_raw(conn, after, batch_size, types)
    else:
        batch = read_all(conn, after, batch_size, types=types)
    full = len(batch) == batch_size
    last = batch[-1].position if batch else after
    top = last if full else max(head, last)
    applied = 0
    moved: dict[int, list[str]] = {}
    for projection, name in zip(projections, names, strict=True):
        position = found[name]
        if top <= position:
            continue
        handled = _handled(projection)
        mine = [r for r in batch if r.position > position and r.type in handled]
        if mine:
            _apply(conn, projection, mine)
            applied += len(mine)
        moved.setdefault(top, []).append(name)
    for position, moving in moved.items():
        conn.execute(
            update(checkpoints)
            .where(checkpoints.c.name.in_(moving))
            .values(position=position, updated_at=now)
        )
    return applied, full


def _lock_checkpoints(
    conn: Connection, names: Sequence[str], now: datetime
) -> tuple[dict[str, int], int]:
    """The checkpoints of `names` (created at 0 when missing), locked until the transaction
    ends (in the order of their names, so that two lockers never wait for each other), and
    the log's head, read in the same statement."""
    head = select(func.coalesce(func.max(events_table.c.position), 0)).scalar_subquery()
    query = (
        select(checkpoints.c.name, checkpoints.c.position, head)
        .where(checkpoints.c.name.in_(names))
        .order_by(checkpoints.c.name)
        .with_for_update(of=checkpoints)
    )
    rows = conn.execute(query).all()
    if len(rows) < len(set(names)):
        missing = set(names) - {row[0] for row in rows}
        for name in sorted(missing):
            open_checkpoint(conn, name, now, lock=True)
        rows = conn.execute(query).all()
    return {name: int(position) for name, position, _ in rows}, int(rows[0][2])


# --- status and waiting -------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    lag: int
    inline: bool


def status(conn: Connection) -> list[Status]:
    """Position and lag (events behind the head) of every projection; reads only."""
    head = head_position(conn)
    found = []
    for p in ALL:
        position = head if p.inline else read_checkpoint(conn, checkpoint_name(p))
        found.append(Status(p.name, position, head - position, p.inline))
    return found


def position_of(engine: Engine, name: str) -> int:
    projection = by_name([name])[0]
    if projection.inline:
        with read_transaction(engine) as conn:
            return head_position(conn)
    with read_transaction(engine) as conn:
        return read_checkpoint(conn, checkpoint_name(projection))


def wait_for(engine: Engine, name: str, position: int, timeout: float = 5.0) -> int:
    """Wait (at most `timeout` seconds) until projection `name` reflects `position`; returns
    the position it reflects then, which is lower than asked when time ran out."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        reached = position_of(engine, name)
        if reached >= position or time.monotonic() >= deadline:
            return reached
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.2)


# --- the runner ---------------------------------------------------------------------------


class Runner:
    """Keeps the asynchronous projections caught up until `stop` is set.

    On PostgreSQL it sleeps in LISTEN and wakes on the NOTIFY that every append's commit
    sends (the trigger of migration 0003); `poll_seconds` is then only a safety net. After
    a wake-up it lets `settle_seconds` pass and takes every notification that came
    meanwhile, so a burst of commits costs one catch-up, not one each (under load a
    catch-up per booking cost more CPU than the booking: bench/load.py). Rounds also start
    at least `round_seconds` apart: under steady traffic a round every settle (0.2 s) was
    five rounds a second, each costing about as much whether it took two bookings or forty,
    so the projector spent more CPU per booking the busier the system (bench.load: 1.4 ms
    a booking, the database's backends more). A first change after a quiet spell still
    shows within `settle_seconds`; under load within `round_seconds`, well inside the 3 s
    that a read with `min_position` waits. On SQLite it polls the head every
    `poll_seconds`.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        projections: Sequence[Projection] | None = None,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        settle_seconds: float = 0.2,
        round_seconds: float = ROUND_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.projections = list(projections if projections is not None else ASYNC)
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.round_seconds = round_seconds
        self._round_began = float("-inf")  # time.monotonic() when the last round began

    def run(self, stop: threading.Event) -> None:
        listener = self._listen()
        woken = True  # the first round looks whatever the checkpoints say
        try:
            while not stop.is_set():
                try:
                    self._round_began = time.monotonic()
                    if woken or self.behind():
                        applied = catch_up(
                            self.engine, self.projections, self.batch_size, clock=self.clock
                        )
                        if applied:
                            log.debug("projections caught up by %s events", applied)
                except OperationalError as error:  # the database went away: try again later
                    log.warning("catch-up failed, retrying: %s", error.orig)
                    stop.wait(min(5.0, self.poll_seconds * 4))
                    continue
                except Exception:  # a projection bug: keep the process, show the lag
                    log.exception("catch-up failed; the round was rolled back, retrying")
                    self._each_alone()
                    stop.wait(30.0)
                    continue
                woken = self._wait(listener, stop)
        finally:
            if listener is not None:
                listener.close()

    def behind(self) -> bool:
        """Whether a projection's checkpoint is below the head: one read, no write. A round
        without a notification (SQLite's polling, PostgreSQL's safety net) asks first."""
        names = [checkpoint_name(p) for p in self.projections]
        head = select(func.coalesce(func.max(events_table.c.position), 0)).scalar_subquery()
        lowest = select(func.min(checkpoints.c.position), func.count(), head).where(
            checkpoints.c.name.in_(names)
        )
        with read_transaction(self.engine) as conn:
            position, count, top = conn.execute(lowest).one()
        return count < len(set(names)) or int(position) < int(top)

    def _each_alone(self) -> None:
        """After a failed round: each projection on its own, so that a failing one holds
        back only itself."""
        try:
            failed = catch_up_each(self.engine, self.projections, self.batch_size, clock=self.clock)
        except Exception as error:  # the database again: the next round reports it
            log.warning("catch-up of each projection alone failed: %s", error)
            return
        for projection, why in failed:
            log.error("projection %s failed and is held back: %r", projection.name, why)

    def _listen(self) -> Listener | None:
        if self.engine.dialect.name != "postgresql":
            return None
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = psycopg.connect(url, autocommit=True)
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return connection

    def _wait(self, listener: Listener | None, stop: threading.Event) -> bool:
        """Wait for the next round; whether a notification came (always False on SQLite)."""
        if listener is None:
            stop.wait(self.poll_seconds)
            return False
        # Wakes at the first notification (or after poll_seconds), lets the burst it belongs
        # to go on for settle_seconds (and until round_seconds since the last round began),
        # then takes what came meanwhile without waiting.
        woken = list(listener.notifies(timeout=self.poll_seconds, stop_after=1))
        since = time.monotonic() - self._round_began
        if woken and not stop.wait(max(self.settle_seconds, self.round_seconds - since)):
            for _ in listener.notifies(timeout=0):
                pass
        return bool(woken)


class BackgroundRunner:
    """A `Runner` in a daemon thread, for one-process deployments (`booking serve`)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        poll_seconds: float = 0.5,
        settle_seconds: float = 0.2,
        round_seconds: float = ROUND_SECONDS,
    ) -> None:
        self.stop = threading.Event()
        self.runner = Runner(
            engine,
            clock,
            poll_seconds=poll_seconds,
            settle_seconds=settle_seconds,
            round_seconds=round_seconds,
        )
        self.thread = threading.Thread(
            target=self.runner.run, args=(self.stop,), name="projection-runner", daemon=True
        )

    def start(self) -> BackgroundRunner:
        self.thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
