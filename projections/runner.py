"""Feeding projections from the log.

- Inline projections are applied in the append's own transaction (`project_inline`).
- Asynchronous ones are fed by `catch_up`: a batch of events after the projection's
  checkpoint, the projection's writes and the new checkpoint commit in one transaction, so a
  crash at any point repeats nothing and skips nothing (exactly-once effect).
- `Runner` keeps them caught up: woken by PostgreSQL NOTIFY (a trigger on the events table,
  migration 0003) or by polling on SQLite.
- `rebuild` replays the log: inline projections in one transaction, asynchronous ones into
  fresh tables that are swapped in when caught up (`rebuild_swapping`); all of them
  together in one pass over the log.

Why `WHERE position > checkpoint` skips nothing (DESIGN.md invariant 3): `events.store.append`
holds an EXCLUSIVE lock on the events table from before it draws a position until it commits,
so positions commit in order. A reader that sees position p therefore sees every position
below p that will ever exist; SQLite has one writer at a time, which gives the same order.
`tests/integration/test_runner_concurrency.py` proves it with writers committing while the
runner reads, and shows that an append without the lock would be skipped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from events.catalog import Event
from events.sql import read_transaction, write_transaction
from events.store import RecordedEvent, head_position, read_all
from projections.allocation import Allocations
from projections.availability import Availability
from projections.base import Projection, checkpoints
from projections.batching import BatchProjection
from projections.bookings import Bookings
from projections.catalogue import Catalogue
from projections.decoding import event_of
from projections.feed_entries import FeedEntries
from projections.messages import Messages
from projections.popups import Popups
from projections.registry import Registry
from projections.usage import Usage

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
REBUILD_SUFFIX = "__rebuild"
REBUILD_CACHE_KIB = 256 * 1024  # SQLite page cache of a rebuild's connection

Progress = Callable[[int], None]
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


def _checkpoint(conn: Connection, name: str, lock: bool = False) -> int:
    """The checkpoint's position, created at 0 when missing; `lock` holds its row until the
    transaction ends, so two runners never feed one projection at once."""
    if lock and conn.dialect.name == "postgresql":
        conn.execute(
            postgresql.insert(checkpoints)
            .values(name=name, position=0, updated_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(checkpoints.c.position).where(checkpoints.c.name == name)
        return int(conn.execute(query.with_for_update()).scalar_one())
    found = conn.execute(select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar()
    if found is None:
        conn.execute(
            insert(checkpoints).values(name=name, position=0, updated_at=datetime.now(UTC))
        )
        return 0
    return int(found)


def read_checkpoint(conn: Connection, name: str) -> int:
    """The checkpoint's position without writing anything (0 when there is none yet)."""
    found = conn.execute(select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar()
    return int(found or 0)


def _set_checkpoint(conn: Connection, name: str, position: int) -> None:
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.name == name)
        .values(position=position, updated_at=datetime.now(UTC))
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
        batch = _read_raw(conn, after, limit, types)
    else:
        batch = read_all(conn, after, limit, types=types)
    if len(batch) == limit:
        return batch, batch[-1].position
    return batch, max(head, batch[-1].position if batch else after)


_RAW = text(
    "SELECT position, stream, version, type, schema_version, data, recorded_at FROM events "
    "WHERE position > :after AND type IN :types ORDER BY position LIMIT :limit"
).bindparams(bindparam("types", expanding=True))


def _read_raw(conn: Connection, after: int, limit: int, types: list[str]) -> list[RecordedEvent]:
    """`read_all` without the column types' per-value processing and without metadata,
    which batch projections do not read: on a rebuild that processing costs as much as the
    projection's own work. Same rows, same order."""
    rows = conn.execute(_RAW, {"after": after, "types": types, "limit": limit}).all()
    if conn.dialect.name != "sqlite":  # psycopg hands out dicts and aware datetimes
        return [RecordedEvent(p, s, v, t, sv, d, {}, r) for p, s, v, t, sv, d, r in rows]
    loads, parse = json.loads, datetime.fromisoformat
    return [
        RecordedEvent(p, s, v, t, sv, loads(d), {}, parse(r).replace(tzinfo=UTC))
        for p, s, v, t, sv, d, r in rows
    ]


def _apply(conn: Connection, projection: Projection, batch: Sequence[RecordedEvent]) -> None:
    if isinstance(projection, BatchProjection):
        projection.apply_batch(conn, batch)
    else:
        for recorded in batch:
            projection.apply(conn, event_of(recorded), recorded)


def catch_up_once(conn: Connection, projection: Projection, batch_size: int) -> int | None:
    """One batch in the caller's write transaction; the count of events applied, or None
    when the projection was already at the head."""
    name = checkpoint_name(projection)
    position = _checkpoint(conn, name, lock=True)
    batch, reached = _next_batch(conn, projection, position, batch_size)
    if reached == position:
        return None
    _apply(conn, projection, batch)
    _set_checkpoint(conn, name, reached)
    return len(batch)


def catch_up(
    engine: Engine,
    projections: Sequence[Projection] | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Feed asynchronous projections the events after their checkpoints; returns how many
    events were applied. Each batch and its checkpoint commit together."""
    applied = 0
    for projection in projections if projections is not None else ASYNC:
        while True:
            with write_transaction(engine) as conn:
                count = catch_up_once(conn, projection, batch_size)
            if count is None:
                break
            applied += count
            if progress:
                progress(count)
    return applied


# --- rebuilding ---------------------------------------------------------------------------


def rebuild(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> int:
    """Replay the log into the projections; returns the count of events read.

    With inline projections among them, everything is rebuilt in one pass and one
    transaction (`_rebuild_in_one_pass`): appends wait on the append lock meanwhile, so the
    inline projections' read-your-writes promise holds. Asynchronous ones alone are rebuilt
    into fresh tables batch by batch while appends go on, and swapped in, one after the
    other (`rebuild_swapping`).
    """
    inline = [p for p in projections if p.inline]
    later = [p for p in projections if not p.inline]
    if inline:
        return _rebuild_in_one_pass(engine, inline, later, batch_size, progress)
    return sum(rebuild_swapping(engine, p, batch_size, progress) for p in later)


def _rebuild_in_one_pass(
    engine: Engine,
    inline: Sequence[Projection],
    later: Sequence[Projection],
    batch_size: int,
    progress: Progress | None,
) -> int:
    """Each event is read and JSON-decoded once for all the projections, and decoded into
    an event (without marshmallow: `projections.decoding`) once for all inline ones. Inline
    projections are emptied and replay every batch in place (on SQLite without the indexes
    they name in `rebuild_drops`, built again at the end); asynchronous ones fill fresh
    tables, holding what they build in memory across batches (`BatchProjection.hold`), and
    are swapped in at the end of the same transaction."""
    copies = [_fresh(p) for p in later]
    for_inline = frozenset().union(*(p.handled_types() for p in inline))
    wanted = sorted(for_inline.union(*(p.handled_types() for p in later)))
    count = 0
    with write_transaction(engine) as conn, _large_cache(conn):
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
        dropped = _drop_indexes(conn, inline)
        for projection in inline:
            projection.clear(conn)
        for copy in copies:
            _create_tables(conn, copy)
            copy.hold()  # its tables are fresh and filled in this transaction alone
        position = 0
        while batch := _read_raw(conn, position, batch_size, wanted):
            pairs = [(event_of(r), r) for r in batch if r.type in for_inline]
            for projection in inline:
                projection.replay(conn, pairs)
            for copy in copies:
                types = copy.event_types
                copy.apply_batch(conn, [r for r in batch if r.type in types])
            position = batch[-1].position
            count += len(batch)
            if progress:
                progress(len(batch))
        for copy in copies:
            copy.flush(conn)
        for sql in dropped:
            conn.exec_driver_sql(sql)
        head = head_position(conn)  # no append can commit while we hold the append lock
        for copy, projection in zip(copies, later, strict=True):
            _checkpoint(conn, checkpoint_name(projection), lock=True)  # the live runner waits
            _swap_in(conn, copy, projection, head)
    return count


def _drop_indexes(conn: Connection, projections: Sequence[Projection]) -> list[str]:
    """On SQLite, drop the projections' `rebuild_drops` indexes for the replay; the
    statements that make them again, as the database had them. (Not on PostgreSQL: there
    DROP INDEX would lock readers out of the table until the rebuild commits, where now they
    go on reading the old rows.)"""
    names = [index.name for p in projections for index in p.rebuild_drops]
    if conn.dialect.name != "sqlite" or not names:
        return []
    found = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN :names"
        ).bindparams(bindparam("names", expanding=True)),
        {"names": names},
    ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def _fresh(projection: Projection) -> BatchProjection:
    if not isinstance(projection, BatchProjection):
        raise TypeError(f"{projection.name} cannot be rebuilt into fresh tables")
    return projection.fresh(REBUILD_SUFFIX)


def _create_tables(conn: Connection, copy: BatchProjection) -> None:
    """The copy's tables, empty, and its checkpoint at 0 (leftovers of an interrupted
    rebuild are dropped)."""
    for table in reversed(copy.tables):
        table.drop(conn, checkfirst=True)
    for table in copy.tables:
        table.create(conn)
    conn.execute(delete(checkpoints).where(checkpoints.c.name == copy.checkpoint_name))
    _checkpoint(conn, copy.checkpoint_name)


def _swap_in(conn: Connection, copy: BatchProjection, live: Projection, position: int) -> None:
    """The copy's tables replace the live ones, which then stand at `position`."""
    for fresh, table in zip(copy.tables, live.tables, strict=True):
        _swap(conn, fresh.name, table.name)
    _set_checkpoint(conn, checkpoint_name(live), position)
    conn.execute(delete(checkpoints).where(checkpoints.c.name == copy.checkpoint_name))


@contextmanager
def _large_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache that holds the tables a rebuild fills (the default 2 MB
    re-reads their index pages from the file for every insert), for the rebuild only."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


def rebuild_swapping(
    engine: Engine,
    projection: Projection,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> int:
    """Rebuild an asynchronous projection from zero while the live one keeps serving.

    Its tables are created afresh as `<table>__rebuild` (with a checkpoint of that name) and
    filled batch by batch, each batch its own transaction, so appends and the live runner go
    on meanwhile and an interrupted rebuild simply starts again. Once the copy is nearly
    caught up, one transaction locks the live checkpoint (the live runner waits), feeds the
    copy the last events, drops the live tables, renames the copies (and their indexes) to
    the live names and moves the checkpoint. Renaming tables inside a transaction works
    alike on SQLite and PostgreSQL, and readers see either the old tables or the new ones.
    """
    copy = _fresh(projection)
    with write_transaction(engine) as conn:
        _create_tables(conn, copy)
    count = 0
    # One connection for every batch: on SQLite its page cache then stays warm from one
    # batch to the next (a new connection per batch re-reads the growing tables each time).
    with engine.connect() as held:
        held = held.execution_options(write=True)
        if held.dialect.name == "sqlite":
            held.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
            held.commit()
        while True:
            with held.begin():
                applied = catch_up_once(held, copy, batch_size)
            count += applied or 0
            if applied and progress:
                progress(applied)
            if applied is None or applied < batch_size:
                break
    with write_transaction(engine) as conn:
        _checkpoint(conn, checkpoint_name(projection), lock=True)  # the live runner waits
        while (applied := catch_up_once(conn, copy, batch_size)) is not None:
            count += applied
        _swap_in(conn, copy, projection, read_checkpoint(conn, copy.checkpoint_name))
    return count


def _swap(conn: Connection, fresh: str, live: str) -> None:
    """Replace table `live` by table `fresh`, indexes included, in the caller's transaction."""
    conn.execute(text(f'DROP TABLE IF EXISTS "{live}"'))
    conn.execute(text(f'ALTER TABLE "{fresh}" RENAME TO "{live}"'))
    if conn.dialect.name == "postgresql":
        names = conn.execute(
            text(
                "SELECT indexname FROM pg_indexes "
                "WHERE tablename = :t AND schemaname = current_schema()"
            ),
            {"t": live},
        ).scalars()
        for name in names:
            if REBUILD_SUFFIX in name:
                renamed = name.replace(REBUILD_SUFFIX, "")
                conn.execute(text(f'ALTER INDEX "{name}" RENAME TO "{renamed}"'))
        return
    # SQLite renames a table's automatic indexes with it; named ones must be made again.
    found = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
        {"t": live},
    ).all()
    for name, sql in found:
        if sql and REBUILD_SUFFIX in name:
            conn.execute(text(f'DROP INDEX "{name}"'))
            conn.execute(text(sql.replace(REBUILD_SUFFIX, "")))


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
    catch-up per booking cost more CPU than the booking: bench/load.py). On SQLite it polls
    the head every `poll_seconds`.
    """

    def __init__(
        self,
        engine: Engine,
        projections: Sequence[Projection] | None = None,
        batch_size: int = 1000,
        poll_seconds: float = 0.5,
        settle_seconds: float = 0.2,
    ) -> None:
        self.engine = engine
        self.projections = list(projections if projections is not None else ASYNC)
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds

    def run(self, stop: threading.Event) -> None:
        listener = self._listen()
        try:
            while not stop.is_set():
                try:
                    applied = catch_up(self.engine, self.projections, self.batch_size)
                    if applied:
                        log.debug("projections caught up by %s events", applied)
                except OperationalError as error:  # the database went away: try again later
                    log.warning("catch-up failed, retrying: %s", error.orig)
                    stop.wait(min(5.0, self.poll_seconds * 4))
                    continue
                except Exception:  # a projection bug: keep the process, show the lag
                    log.exception("catch-up failed; the batch was rolled back, retrying")
                    stop.wait(30.0)
                    continue
                self._wait(listener, stop)
        finally:
            if listener is not None:
                listener.close()

    def _listen(self) -> object | None:
        if self.engine.dialect.name != "postgresql":
            return None
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = psycopg.connect(url, autocommit=True)
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return connection

    def _wait(self, listener: object | None, stop: threading.Event) -> None:
        if listener is None:
            stop.wait(self.poll_seconds)
            return
        # Wakes at the first notification (or after poll_seconds), lets the burst it belongs
        # to go on for settle_seconds, then takes what came meanwhile without waiting.
        woken = list(listener.notifies(timeout=self.poll_seconds, stop_after=1))  # type: ignore[attr-defined]
        if woken and not stop.wait(self.settle_seconds):
            for _ in listener.notifies(timeout=0):  # type: ignore[attr-defined]
                pass


class BackgroundRunner:
    """A `Runner` in a daemon thread, for one-process deployments (`booking serve`)."""

    def __init__(self, engine: Engine, **options: object) -> None:
        self.stop = threading.Event()
        self.runner = Runner(engine, **options)  # type: ignore[arg-type]
        self.thread = threading.Thread(
            target=self.runner.run, args=(self.stop,), name="projection-runner", daemon=True
        )

    def start(self) -> BackgroundRunner:
        self.thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.thread.join(timeout)


def contents(conn: Connection, projection: Projection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the projection's tables, sorted: to check that a rebuild equals it."""
    found = {}
    suffix = projection.suffix if isinstance(projection, BatchProjection) else ""
    for table in projection.tables:
        rows = conn.execute(select(table)).all()
        found[table.name.removesuffix(suffix) if suffix else table.name] = sorted(
            (tuple(row) for row in rows), key=repr
        )
    return found
