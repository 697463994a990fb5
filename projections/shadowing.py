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
  SQLite cannot move a table between schemas, so `finish` copies them into `<table>__swap`
  tables of the main database in short write transactions (bookings go in between), TEMP
  triggers note what the catch-up changes after that, and the swap, under the one writer's
  lock, copies those few rows and exchanges the live tables' and the copies' root pages
  (`SQLiteShadow`); the old B-trees are then emptied in short transactions and dropped.

Positions commit in order (`projections.runner`, invariant 3), so reading the log after the
last position replayed skips nothing, with or without a lock; the swap reads the rest while
holding the append lock, so nothing can be appended between the last event replayed and the
moment the shadow tables become the live ones. `tests/integration/test_runner_rebuild.py`
places bookings while a rebuild runs and checks the swapped-in tables against a rebuild
from scratch.
"""

from __future__ import annotations

import json
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
    """The replay writes TEMP tables (no lock on the database file); `finish` copies them,
    in short write transactions, into tables of the main database named `<table>__swap`
    with the live tables' indexes (`<index>__swap`), and TEMP triggers note every row the
    catch-up changes after that. The swap, under the one writer's lock, applies the last
    events, copies the rows they changed, and exchanges the live tables' and the copies'
    root pages in `sqlite_master`: the live names then lead to the rebuilt B-trees, and
    the `__swap` names to the old ones, dropped after the commit. The lock is held for a
    few rows and a schema change, not for a copy of every table (8.7–10.6 s at 1,000,000
    events)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.columns: dict[str, str] = {}
        self.cache_size: int | None = None
        self.autocheckpoint = 0

    def create(self, conn: Connection, projections: Sequence[Projection]) -> None:
        """TEMP tables made by the live ones' own statements, without the `rebuild_drops`
        indexes (the replay finds rows by key; the copies in the main database have them).
        Leftovers of an interrupted rebuild are dropped first."""
        dropped = {index.name for p in projections for index in p.rebuild_drops}
        self.names = _names(projections)
        self.drop(conn)
        with conn.begin():
            self.cache_size = int(conn.exec_driver_sql("PRAGMA main.cache_size").scalar_one())
            self.autocheckpoint = int(
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
            )
            conn.exec_driver_sql(f"PRAGMA temp.cache_size = -{SHADOW_CACHE_KIB}")
            for name in self.names:
                for kind, object_name, sql in _schema_of(conn, name):
                    if kind == "table":
                        conn.exec_driver_sql(re.sub(r"^CREATE TABLE", "CREATE TEMP TABLE", sql))
                    elif kind == "index" and object_name not in dropped:
                        conn.exec_driver_sql(
                            re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX temp.", sql)
                        )
                self.columns[name] = ", ".join(
                    ["rowid"]
                    + [
                        _quoted(str(row[1]))
                        for row in conn.exec_driver_sql(f"PRAGMA temp.table_info({_quoted(name)})")
                    ]
                )

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[None]:
        # A deferred BEGIN: the log is only read, and the TEMP tables are the connection's
        # own, so no writer waits for this transaction.
        with conn.begin():
            yield

    def finish(self, conn: Connection, projections: Sequence[Projection]) -> None:
        """The copies in the main database, made empty with every index and filled from
        the TEMP tables in short write transactions (bookings go in between); from here on
        the TEMP triggers note the rows the catch-up changes."""
        with _writing(conn):
            conn.exec_driver_sql(f"PRAGMA main.cache_size = -{SHADOW_CACHE_KIB}")
            # This connection checkpoints after each of its write transactions (`_paced`),
            # not in their commits, which then hold the lock for their own pages only.
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
            for name in self.names:
                for _kind, object_name, sql in _schema_of(conn, name):
                    conn.exec_driver_sql(_renamed(sql, object_name, name))
        with conn.begin():
            # Not a key: a statement's own conflict clause (OR REPLACE, OR ABORT) would be its
            # triggers' too. A rowid noted twice is copied once (`IN`).
            conn.exec_driver_sql(f"CREATE TEMP TABLE {CHANGES} (tbl TEXT NOT NULL, rid INTEGER)")
            conn.exec_driver_sql(f"CREATE INDEX temp.{CHANGES}_rows ON {CHANGES} (tbl, rid)")
            for name in self.names:
                note = f"INSERT INTO {CHANGES} VALUES ('{name}', "
                for event, rows in NOTED.items():
                    body = " ".join(f"{note}{row}.rowid);" for row in rows)
                    conn.exec_driver_sql(
                        f"CREATE TEMP TRIGGER {_quoted(f'{name}{SWAP_SUFFIX}_{event.lower()}')} "
                        f"AFTER {event} ON {_quoted(name)} BEGIN {body} END"
                    )
        for name in self.names:
            self._copy(conn, name)

    def _copy(self, conn: Connection, name: str) -> None:
        """Every row of TEMP table `name` into its copy, by rowid ranges (`_paced`)."""
        table, copy, columns = _quoted(name), _quoted(name + SWAP_SUFFIX), self.columns[name]
        with conn.begin():
            low, high = conn.exec_driver_sql(
                f"SELECT min(rowid), max(rowid) FROM temp.{table}"
            ).one()
        if low is None:
            return
        after = int(low) - 1

        def copy_rows(rows: int) -> bool:
            nonlocal after
            conn.exec_driver_sql(
                f"INSERT INTO main.{copy} ({columns}) SELECT {columns} FROM temp.{table} "
                "WHERE rowid > ? AND rowid <= ?",
                (after, after + rows),
            )
            after += rows
            return after < int(high)

        _paced(conn, copy_rows, f"{name} copied")

    def _apply_changes(self, conn: Connection, rows: int | None = None) -> int:
        """The rows the catch-up changed (noted by the TEMP triggers), copied again, in the
        caller's write transaction: all of them, or `rows` rowids at most; how many."""
        limit = "" if rows is None else f" LIMIT {int(rows)}"
        noted = conn.exec_driver_sql(
            f"SELECT DISTINCT tbl, rid FROM temp.{CHANGES} ORDER BY tbl, rid{limit}"
        ).all()
        by_table: dict[str, list[int]] = {}
        for table_name, rowid in noted:
            by_table.setdefault(str(table_name), []).append(int(rowid))
        for name, rowids in by_table.items():
            table, copy, columns = _quoted(name), _quoted(name + SWAP_SUFFIX), self.columns[name]
            listed = (json.dumps(rowids),)
            these = "SELECT value FROM json_each(?)"
            conn.exec_driver_sql(f"DELETE FROM main.{copy} WHERE rowid IN ({these})", listed)
            conn.exec_driver_sql(
                f"INSERT INTO main.{copy} ({columns}) SELECT {columns} FROM temp.{table} "
                f"WHERE rowid IN ({these})",
                listed,
            )
            conn.exec_driver_sql(
                f"DELETE FROM temp.{CHANGES} WHERE tbl = ? AND rid IN ({these})", (name, *listed)
            )
        return len(noted)

    def swap(
        self,
        conn: Connection,
        projections: Sequence[Projection],
        replay: Replay,
        lock_timeout_ms: int,
    ) -> float:
        # What the catch-up after the copy changed, copied again in short transactions
        # until what comes meanwhile is little: the final step copies only that.
        copied = []
        for _ in range(SWAP_ROUNDS):
            count = 0

            def changes(rows: int) -> bool:
                nonlocal count
                done = self._apply_changes(conn, rows)
                count += done
                return done == rows

            _paced(conn, changes, "changed rows copied again")
            copied.append(count)
            replay.until_head(conn, self)
            if count <= SWAP_FEW_ROWS:
                break
        try:
            with _writing(conn):
                started = _now()
                replay.rest(conn)
                last = self._apply_changes(conn)
                _exchange_root_pages(conn, self.names)
        except BaseException:
            # Rolled back: this connection reads the schema again (it may have read the
            # exchanged one inside the transaction).
            with conn.begin():
                conn.exec_driver_sql("PRAGMA writable_schema = RESET")
            raise
        held = _now() - started
        log.info("rows changed after the copy, copied again: %s, then %s in the swap", copied, last)
        self._drop_copies(conn)  # now the old tables
        return held

    def _drop_copies(self, conn: Connection) -> None:
        """The `__swap` tables emptied in short transactions (a DROP of a large table holds
        the lock while it frees every page), then dropped."""
        for name in self.names:
            copy = _quoted(name + SWAP_SUFFIX)
            with conn.begin():
                found = conn.exec_driver_sql(
                    "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                    (name + SWAP_SUFFIX,),
                ).first()
            if found is None:
                continue

            def delete_rows(rows: int, copy: str = copy) -> bool:
                deleted = conn.exec_driver_sql(
                    f"DELETE FROM main.{copy} WHERE rowid IN "
                    f"(SELECT rowid FROM main.{copy} LIMIT {int(rows)})"
                ).rowcount
                return bool(deleted == rows)

            _paced(conn, delete_rows, f"{name}'s old rows deleted")
            with _writing(conn):
                _run_timed(conn, f"DROP TABLE IF EXISTS main.{copy}")

    def drop(self, conn: Connection) -> None:
        """The TEMP tables go, so that the pooled connection sees the live ones again, and
        the copies in the main database (or, should that fail, the connection is closed
        rather than pooled)."""
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{CHANGES}")
                for name in self.names:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_quoted(name)}")
                if self.cache_size is not None:
                    conn.exec_driver_sql(f"PRAGMA main.cache_size = {self.cache_size}")
                    conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {self.autocheckpoint}")
            with conn.begin():
                left = conn.exec_driver_sql(
                    "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name IN "
                    f"({', '.join('?' for _ in self.names)})",
                    tuple(name + SWAP_SUFFIX for name in self.names),
                ).scalar_one()
            if left:
                self._drop_copies(conn)
        except Exception:
            conn.invalidate()
            raise


SWAP_SUFFIX = "__swap"  # SQLite: the copies in the main database, and their indexes
CHANGES = "swap_changes"  # SQLite: TEMP table of the rows changed after the copy
COPY_CHUNK_SECONDS = 0.025  # SQLite: one write transaction of the copy, about
COPY_FIRST_ROWS = 2_000
COPY_LEAST_ROWS = 100
COPY_MOST_ROWS = 200_000
SWAP_ROUNDS = 5  # SQLite: catch-ups after the copy at most, before the final step
SWAP_FEW_ROWS = 500  # SQLite: changed rows few enough to copy in the final step
# SQLite: the TEMP triggers' note of a changed row, by statement: the rowids it names.
NOTED = {"INSERT": ("new",), "UPDATE": ("old", "new"), "DELETE": ("old",)}


def _paced(conn: Connection, step: Callable[[int], bool], what: str) -> None:
    """`step(rows)` (true while there is more to do) again and again, each call a write
    transaction of about `COPY_CHUNK_SECONDS` (`rows` adapts to it); after each one the
    connection checkpoints its pages and waits as long as it held the lock, so that the
    bookings that waited for the lock get it."""
    began, width, count, held, more = _now(), COPY_FIRST_ROWS, 0, 0.0, True
    while more:
        with _writing(conn):
            started = _now()
            more = step(width)
        took = _now() - started
        # The pages just written go from the WAL to the file here, outside the lock:
        # otherwise the booking whose commit next crossed `wal_autocheckpoint` would.
        if (driver := conn.connection.driver_connection) is not None:
            driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
        held += took
        count += 1
        width = int(width * COPY_CHUNK_SECONDS / max(took, 1e-4))
        width = min(COPY_MOST_ROWS, max(COPY_LEAST_ROWS, width))
        time.sleep(min(took, 2 * COPY_CHUNK_SECONDS))
    log.info(
        "%s in %.1f s: %s write transactions holding the lock %.1f s",
        what,
        _now() - began,
        count,
        held,
    )


@contextmanager
def _writing(conn: Connection) -> Iterator[None]:
    """A write transaction: on SQLite BEGIN IMMEDIATE, the one writer's lock."""
    conn.execution_options(write=True)
    try:
        with conn.begin():
            yield
    finally:
        conn.execution_options(write=False)


def _schema_of(conn: Connection, name: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of live table `name` and its indexes of a statement of their own."""
    return [
        (str(kind), str(object_name), str(sql))
        for kind, object_name, sql in conn.exec_driver_sql(
            "SELECT type, name, sql FROM main.sqlite_master "
            "WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index', name",
            (name,),
        )
    ]


def _renamed(sql: str, object_name: str, table: str) -> str:
    """A live table's or index's statement, made for its copy in the main database."""
    named, on = re.escape(object_name), re.escape(table)
    if sql.startswith("CREATE TABLE"):
        copy = _quoted(table + SWAP_SUFFIX)
        renamed, count = re.subn(rf'^CREATE TABLE\s+("?){named}\1', f"CREATE TABLE {copy}", sql)
    else:
        copy = f"{_quoted(object_name + SWAP_SUFFIX)} ON {_quoted(table + SWAP_SUFFIX)}"
        renamed, count = re.subn(
            rf'^CREATE (UNIQUE )?INDEX\s+("?){named}\2\s+ON\s+("?){on}\3',
            lambda m: f"CREATE {m[1] or ''}INDEX {copy}",
            sql,
        )
    if count != 1 or "WITHOUT ROWID" in sql.upper() or "AUTOINCREMENT" in sql.upper():
        raise RuntimeError(f"cannot make a swappable copy of {object_name}: {sql}")
    return renamed


def _exchange_root_pages(conn: Connection, names: Sequence[str]) -> None:
    """Each live table and index of `names` exchanges its root page with its `__swap`
    copy's, in the caller's write transaction. The two are made by the same statements
    (but for their names), so each B-tree fits the definition it comes under. SQLite's
    documented way of a schema change that leaves the stored content as it is: an UPDATE
    of `sqlite_master` under `writable_schema`, and the schema version one up, which makes
    every connection read the schema again before its next statement."""
    marks = ", ".join("?" for _ in names)
    found = conn.exec_driver_sql(
        f"SELECT name, tbl_name, rootpage FROM main.sqlite_master WHERE tbl_name IN ({marks}) "
        f"OR tbl_name IN ({marks})",
        (*names, *(name + SWAP_SUFFIX for name in names)),
    ).all()
    roots = {str(name): int(root) for name, _table, root in found}
    pairs = []
    for name, table, _root in found:
        name, table = str(name), str(table)
        if table.endswith(SWAP_SUFFIX):
            continue
        if name.startswith("sqlite_autoindex_"):
            copy = (
                "sqlite_autoindex_"
                + table
                + SWAP_SUFFIX
                + name.removeprefix("sqlite_autoindex_" + table)
            )
        else:
            copy = name + SWAP_SUFFIX
        pairs.append((name, copy))
    if sorted(roots) != sorted(n for pair in pairs for n in pair):
        raise RuntimeError(f"the copies' indexes differ from the live tables': {sorted(roots)}")
    version = int(conn.exec_driver_sql("PRAGMA main.schema_version").scalar_one())
    # First: a schema read inside this transaction then never matches the file's, should
    # the transaction roll back.
    conn.exec_driver_sql(f"PRAGMA main.schema_version = {version + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for live, copy in pairs:
            conn.exec_driver_sql(
                "UPDATE main.sqlite_master SET rootpage = CASE name WHEN ? THEN ? ELSE ? END "
                "WHERE name IN (?, ?)",
                (live, roots[copy], roots[live], live, copy),
            )
    finally:
        # Off, and this connection's own schema read again (the others see the version).
        conn.exec_driver_sql("PRAGMA writable_schema = RESET")


def _run_timed(conn: Connection, sql: str) -> None:
    """Run a statement of `finish`, and log (DEBUG) how long it took: where a rebuild's
    time goes (`python -m bench.rebuild --parts`)."""
    began = _now()
    conn.exec_driver_sql(sql)
    log.debug("%.2f s: %s", _now() - began, sql[:160])


def _now() -> float:
    """A monotonic reading, for the swap's duration only (never a time of the domain)."""
    return time.monotonic()
