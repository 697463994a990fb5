"""Rebuilding the inline projections into shadow tables while bookings go on.

The inline projections are written in every booking's own transaction, so their tables can
be neither emptied nor held while the log is replayed. Instead the replay fills shadow
tables of the same names that only the rebuild's connection sees, batch by batch, each batch
its own short transaction that locks no writer out; then catches up with what was appended
meanwhile, and swaps them in at the end in one short transaction:

1. lock the live tables (and, between the ones written before the append and the ones
   written after it, the append lock on `events`, in the order every booking takes them),
2. apply the few events appended since the last catch-up,
3. put the shadow tables in place of the live ones, and commit.

A booking waits only for that last step. Which table a statement means is left to the
database's name resolution, so the projections' own code (`Projection.replay` and the live
handlers) writes the shadow tables unchanged:

- PostgreSQL: the shadow tables live in a schema of their own (`SHADOW_SCHEMA`) that the
  rebuild's connection puts first on its `search_path`; the swap drops the live tables and
  moves the shadow ones over (`ALTER TABLE … SET SCHEMA`), constraints and indexes with
  their names. The exclusion constraint of `availability_busy` (DESIGN.md invariant 2) is
  made on the shadow table before the swap, as the live one has it (`pg_get_constraintdef`),
  and checks every rebuilt row. If a booking holds a live table that the swap waits for
  (a lock-order cycle: `lock_timeout`), the swap is rolled back and tried again.
- SQLite: the shadow tables are TEMP tables of the rebuild's connection (temp comes first in
  SQLite's name resolution), which takes no lock on the database file while it writes them.
  The swap, under the one writer's lock, copies them into the live tables: SQLite cannot move
  a table between schemas, and its writers are one at a time anyway.

Positions commit in order (`projections.runner`, invariant 3), so reading the log after the
last position replayed skips nothing, with or without a lock; the swap reads the rest while
holding the append lock, so nothing can be appended between the last event replayed and the
moment the shadow tables become the live ones. `tests/integration/test_runner_rebuild.py`
places bookings while a rebuild runs and checks the swapped-in tables against a rebuild
from scratch.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from events.decoding import event_of
from events.sql import CLOSE_REBUILD_GATE
from events.store import read_raw
from projections import set_replay
from projections.base import Projection

SHADOW_SCHEMA = "projections_rebuild"
SWAP_LOCK_TIMEOUT_MS = 100  # a booking waits at most this long for one swap attempt
SWAP_ATTEMPTS = 50
SHADOW_CACHE_KIB = 256 * 1024  # SQLite page cache for the shadow tables
MAINTENANCE_MEM = "512MB"  # PostgreSQL: for the indexes and constraints built at the end
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout runs out

Progress = Callable[[int], None]
log = logging.getLogger(__name__)


def rebuild_inline(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 20_000,
    progress: Progress | None = None,
    *,
    swap_lock_timeout_ms: int = SWAP_LOCK_TIMEOUT_MS,
    on_swap: Callable[[float], None] | None = None,
    set_based: bool = True,
) -> int:
    """Replay the log into shadow copies of the inline `projections`' tables and swap them
    in; returns the count of events read. `on_swap` is told how long (seconds) the swap's
    transaction held the live tables. `set_based`: the bookings whose rows are a function
    of their own events are written by set-based SQL first (`projections.set_replay`),
    the rest replayed by the projections; without it, every event is replayed."""
    shadow: Shadow = PostgresShadow() if engine.dialect.name == "postgresql" else SQLiteShadow()
    replay = Replay(projections, batch_size, progress)
    with engine.connect() as conn:
        try:
            began = _now()
            shadow.create(conn, projections)
            if set_based:
                with shadow.transaction(conn):
                    plan = set_replay.plan(conn, projections)
                if plan is not None:
                    replay.until(conn, shadow, plan.head, set_replay.skipped(conn))
                    planned = _now()
                    with shadow.transaction(conn):
                        set_replay.write(conn, plan)
                    replay.covered(plan.head, plan.events)
                    log.info(
                        "shadow tables: %s events of %s streams written set-based in %.1f s",
                        plan.events,
                        len(plan.streams),
                        _now() - planned,
                    )
            replay.until_head(conn, shadow)
            replayed = _now()
            shadow.finish(conn, projections)
            finished = _now()
            log.info(
                "shadow tables: %s events replayed in %.1f s, deferred indexes and "
                "constraints built in %.1f s",
                replay.count,
                replayed - began,
                finished - replayed,
            )
            replay.until_head(conn, shadow)  # what came while the last indexes were made
            for attempt in range(1, SWAP_ATTEMPTS + 1):
                try:
                    held = shadow.swap(conn, projections, replay, swap_lock_timeout_ms)
                except OperationalError as error:
                    if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                        raise
                    log.info("swap attempt %s met a booking holding a table; again", attempt)
                    replay.until_head(conn, shadow)
                    continue
                log.info("shadow tables swapped in; the swap held the live tables %.3f s", held)
                if on_swap:
                    on_swap(held)
                break
            else:
                raise RuntimeError(f"the rebuild could not swap in after {SWAP_ATTEMPTS} tries")
        finally:
            shadow.drop(conn)
            if set_based:
                _forget_set_replay(conn)
    return replay.count


def _forget_set_replay(conn: Connection) -> None:
    """The set-based step's temporary tables go. On PostgreSQL the connection is closed
    instead of pooled: that drops them, and the buffers its backend took for them."""
    if conn.dialect.name == "postgresql":
        conn.invalidate()
        return
    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            set_replay.drop(conn)
    except Exception:
        conn.invalidate()
        raise


class Replay:
    """Where the replay stands in the log, and the loop that feeds the shadow tables."""

    def __init__(
        self, projections: Sequence[Projection], batch_size: int, progress: Progress | None
    ) -> None:
        self.projections = projections
        self.batch_size = batch_size
        self.progress = progress
        self.types = frozenset().union(*(p.handled_types() for p in projections))
        self.position = 0
        self.count = 0

    def batch(self, conn: Connection, until: int | None = None, unless: str = "") -> int:
        """One batch after the position, in the caller's transaction; its length. `until`
        and `unless`: as `read_raw`'s."""
        types = sorted(self.types)
        batch = read_raw(conn, self.position, self.batch_size, types, until=until, unless=unless)
        if not batch:
            return 0
        pairs = [(event_of(r), r) for r in batch]
        for projection in self.projections:
            projection.replay(conn, pairs)
        self.position = batch[-1].position
        self.count += len(batch)
        if self.progress:
            self.progress(len(batch))
        return len(batch)

    def until_head(self, conn: Connection, shadow: Shadow) -> None:
        """Batches, each its own transaction, until one comes back short (near the head)."""
        while True:
            with shadow.transaction(conn):
                read = self.batch(conn)
            if read < self.batch_size:
                return

    def until(self, conn: Connection, shadow: Shadow, head: int, unless: str) -> None:
        """Batches up to `head`, leaving out the events of `unless` (those the set-based
        step writes), each its own transaction."""
        while True:
            with shadow.transaction(conn):
                read = self.batch(conn, head, unless)
            if read < self.batch_size:
                return

    def covered(self, head: int, count: int) -> None:
        """The set-based step wrote `count` events up to `head`: the replay goes on after."""
        self.position = max(self.position, head)
        self.count += count
        if self.progress and count:
            self.progress(count)

    def rest(self, conn: Connection) -> None:
        """Every event left, in the caller's transaction (which holds the append lock)."""
        while self.batch(conn):
            pass


class Shadow:
    """Where a dialect keeps the shadow tables and how it swaps them in."""

    def create(self, conn: Connection, projections: Sequence[Projection]) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[None]:
        """A transaction in which the projections' statements reach the shadow tables."""
        raise NotImplementedError
        yield

    def finish(self, conn: Connection, projections: Sequence[Projection]) -> None:
        """What is cheaper made once after the replay: the indexes `rebuild_drops` names."""

    def swap(
        self,
        conn: Connection,
        projections: Sequence[Projection],
        replay: Replay,
        lock_timeout_ms: int,
    ) -> float:
        raise NotImplementedError

    def drop(self, conn: Connection) -> None:
        raise NotImplementedError


def _names(projections: Sequence[Projection]) -> list[str]:
    return [table.name for p in projections for table in p.tables]


def _lock_order(projections: Sequence[Projection]) -> tuple[list[str], list[str]]:
    """The live tables a booking writes before its append (those of projections that need no
    position), and those it writes after, holding the append lock."""
    before = [t.name for p in projections if not p.needs_position for t in p.tables]
    after = [t.name for p in projections if p.needs_position for t in p.tables]
    return before, after


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresShadow(Shadow):
    def __init__(self) -> None:
        self.live = "public"
        self.deferred: list[str] = []

    def create(self, conn: Connection, projections: Sequence[Projection]) -> None:
        """Empty shadow tables with the live ones' columns, keys and indexes, by the same
        names; exclusion constraints and the `rebuild_drops` indexes wait for `finish`."""
        dropped = {index.name for p in projections for index in p.rebuild_drops}
        schema = _quoted(SHADOW_SCHEMA)
        with conn.begin():
            self.live = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
            live = _quoted(self.live)
            for leftover in (SHADOW_SCHEMA, SHADOW_SCHEMA + "_retired"):  # of a failed run
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_quoted(leftover)} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            for name in _names(projections):
                table = _quoted(name)
                conn.exec_driver_sql(
                    f"CREATE TABLE {schema}.{table} (LIKE {live}.{table} INCLUDING DEFAULTS "
                    "INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE)"
                )
                constraints = conn.exec_driver_sql(
                    "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'x', 'c') "
                    "ORDER BY contype = 'x', conname",
                    (f"{live}.{table}",),
                ).all()
                for conname, kind, definition in constraints:
                    sql = (
                        f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {_quoted(conname)} "
                        f"{definition}"
                    )
                    # The GiST index of an exclusion constraint builds faster once, at the end.
                    (self.deferred.append if kind == "x" else conn.exec_driver_sql)(sql)
                indexes = conn.exec_driver_sql(
                    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
                    (f"{live}.{table}",),
                ).all()
                for index, definition in indexes:
                    # "CREATE INDEX ix ON public.t USING btree (…)": the same, on the shadow.
                    shadowed = f" ON {schema}.{table} USING "
                    sql = re.sub(r" ON (ONLY )?\S+ USING ", shadowed, definition, count=1)
                    (self.deferred.append if index in dropped else conn.exec_driver_sql)(sql)

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[None]:
        with conn.begin():
            self._resolve_to_shadow(conn)
            yield

    def _resolve_to_shadow(self, conn: Connection) -> None:
        # For this transaction only: unqualified names find the shadow tables first, and
        # everything else (the log) where it always is.
        conn.exec_driver_sql(
            f"SET LOCAL search_path TO {_quoted(SHADOW_SCHEMA)}, {_quoted(self.live)}"
        )

    def finish(self, conn: Connection, projections: Sequence[Projection]) -> None:
        with conn.begin():
            # Index builds sort in memory up to this (the default 64 MB spills at 1M rows).
            conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_MEM}'")
            for sql in self.deferred:
                _run_timed(conn, sql)
            for name in _names(projections):
                # Fresh statistics: the live tables' plans must not meet an unanalysed table.
                _run_timed(conn, f"ANALYZE {_quoted(SHADOW_SCHEMA)}.{_quoted(name)}")

    def swap(
        self,
        conn: Connection,
        projections: Sequence[Projection],
        replay: Replay,
        lock_timeout_ms: int,
    ) -> float:
        live, schema = _quoted(self.live), _quoted(SHADOW_SCHEMA)
        before, after = _lock_order(projections)
        retired = _quoted(SHADOW_SCHEMA + "_retired")

        def lock(names: list[str]) -> str:
            tables = ", ".join(f"{live}.{_quoted(n)}" for n in names)
            return f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE;" if names else ""

        with conn.begin():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            # Writers wait at the gate from here on; those inside finish first.
            conn.exec_driver_sql(CLOSE_REBUILD_GATE)
            started = _now()
            # Readers may still hold the tables. A booking writes the position-free
            # projections, then appends under the append lock, then writes the
            # position-stamped ones: the same order here.
            conn.exec_driver_sql(
                f"{lock(before)} LOCK TABLE {live}.events IN EXCLUSIVE MODE; {lock(after)}"
            )
            self._resolve_to_shadow(conn)
            replay.rest(conn)
            # The old tables move aside and are dropped after the commit: a DROP of a large
            # table costs more than a rename, and nobody need wait for it.
            conn.exec_driver_sql(
                f"CREATE SCHEMA {retired}; "
                + " ".join(
                    f"ALTER TABLE {live}.{_quoted(n)} SET SCHEMA {retired}; "
                    f"ALTER TABLE {schema}.{_quoted(n)} SET SCHEMA {live};"
                    for n in _names(projections)
                )
            )
        held = _now() - started
        with conn.begin():
            conn.exec_driver_sql(f"DROP SCHEMA {retired} CASCADE; DROP SCHEMA {schema}")
        return held

    def drop(self, conn: Connection) -> None:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            for name in (SHADOW_SCHEMA, SHADOW_SCHEMA + "_retired"):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_quoted(name)} CASCADE")


class SQLiteShadow(Shadow):
    def __init__(self) -> None:
        self.deferred: list[str] = []
        self.names: list[str] = []

    def create(self, conn: Connection, projections: Sequence[Projection]) -> None:
        """TEMP tables made by the live ones' own statements; the `rebuild_drops` indexes
        wait for `finish`."""
        dropped = {index.name for p in projections for index in p.rebuild_drops}
        self.names = _names(projections)
        self.drop(conn)
        with conn.begin():
            conn.exec_driver_sql(f"PRAGMA temp.cache_size = -{SHADOW_CACHE_KIB}")
            for name in self.names:
                found = conn.exec_driver_sql(
                    "SELECT type, name, sql FROM main.sqlite_master "
                    "WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index'",
                    (name,),
                ).all()
                for kind, object_name, sql in found:
                    if kind == "table":
                        conn.exec_driver_sql(re.sub(r"^CREATE TABLE", "CREATE TEMP TABLE", sql))
                    elif kind == "index":
                        sql = re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX temp.", sql)
                        if object_name in dropped:
                            self.deferred.append(sql)
                        else:
                            conn.exec_driver_sql(sql)

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[None]:
        # A deferred BEGIN: the log is only read, and the TEMP tables are the connection's
        # own, so no writer waits for this transaction.
        with conn.begin():
            yield

    def finish(self, conn: Connection, projections: Sequence[Projection]) -> None:
        with conn.begin():
            for sql in self.deferred:
                _run_timed(conn, sql)

    def swap(
        self,
        conn: Connection,
        projections: Sequence[Projection],
        replay: Replay,
        lock_timeout_ms: int,
    ) -> float:
        conn.execution_options(write=True)  # BEGIN IMMEDIATE: the one writer's lock
        try:
            with conn.begin():
                started = _now()
                replay.rest(conn)
                for name in self.names:
                    table = _quoted(name)
                    conn.exec_driver_sql(f"DELETE FROM main.{table}")
                    conn.exec_driver_sql(f"INSERT INTO main.{table} SELECT * FROM temp.{table}")
            return _now() - started
        finally:
            conn.execution_options(write=False)

    def drop(self, conn: Connection) -> None:
        """The TEMP tables go, so that the pooled connection sees the live ones again (or,
        should that fail, the connection is closed rather than pooled)."""
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                for name in self.names:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_quoted(name)}")
        except Exception:
            conn.invalidate()
            raise


def _run_timed(conn: Connection, sql: str) -> None:
    """Run a statement of `finish`, and log (DEBUG) how long it took: where a rebuild's
    time goes (`python -m bench.rebuild --parts`)."""
    began = _now()
    conn.exec_driver_sql(sql)
    log.debug("%.2f s: %s", _now() - began, sql[:160])


def _now() -> float:
    """A monotonic reading, for the swap's duration only (never a time of the domain)."""
    return time.monotonic()
