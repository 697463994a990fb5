"""Column types and engine set-up shared by everything that talks to the database.

SQLite is the embedded default and PostgreSQL is production; the differences between the
two (how a write transaction begins, how instants are stored) are settled here once.
"""

from __future__ import annotations

import os
import select
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql import ColumnElement

from events import pipeline

JSONDocument = JSON().with_variant(JSONB(), "postgresql")

IN_CHUNK = 500  # values per `IN (…)`: well under every driver's parameter limit
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`items` in runs of at most `size`, for statements with an `IN (…)` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# SQLite: rows per INSERT of `in_runs` (and never more parameters than SQLite allows).
SQLITE_ROWS_PER_INSERT = 500
_SQLITE_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def in_runs(
    head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """SQLite: `rows` of `width` values as INSERTs of up to `SQLITE_ROWS_PER_INSERT` rows
    each — (`head` `VALUES (?, …), (?, …), …` `tail`, the rows' values in one tuple). One
    statement steps through a run, where `executemany` reset, bound and stepped it once per
    row: 10,000 mails into the outbox 43 → 34 ms, 10,000 events 21 → 17 ms (CPU). The full
    runs share one statement text, which the driver keeps prepared."""
    size = max(1, min(SQLITE_ROWS_PER_INSERT, _SQLITE_PARAMETERS // width))
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        values = ", ".join([one] * len(part))
        yield f"{head}VALUES {values}{tail and ' '}{tail}", tuple(chain.from_iterable(part))


def one_of(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name` at execution, with one parameter on every
    database, so that the statement's text — SQLAlchemy's rendering, the driver's parse of
    it, PostgreSQL's plan — is the same for every list (an expanding IN is rendered again
    with one placeholder per value: 20 renderings of 500 for an expiry run's 10,000 ids) and
    it can run on the driver (`events.pipeline`, which takes no expanding IN). PostgreSQL:
    `= ANY(array)`; SQLite: `IN (SELECT value FROM json_each(:name))`, the list bound as a
    JSON array (SQLite still looks each value up in `column`'s index)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=BinaryArray(column.type)))
    values = func.json_each(bindparam(name, type_=JSON())).table_valued("value")
    return column.in_(values.select())


class _BinaryList(list[Any]):
    """A list that psycopg sends as an array in binary (registered below)."""


# psycopg picks a list's format by its items, and a list of strings goes as text: every
# string is searched for characters to quote (10,000 ids of an expiry run, three lists of
# them: ~10 % of the job's time). In binary each goes as its length and bytes.
psycopg.adapters.register_dumper(_BinaryList, ListBinaryDumper)


class BinaryArray(TypeDecorator[list[Any]]):
    """`ARRAY(item type)` whose values psycopg sends in binary (`one_of`'s lists): the same
    array, of the same type, without the text format's quoting."""

    impl = postgresql.ARRAY
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        items = self.impl_instance.bind_processor(dialect)

        def process(value: Any) -> Any:
            if value is None:
                return None
            return _BinaryList(items(value) if items is not None else value)

        return process


# Values per `one_of` list: one array (PostgreSQL) or JSON text (SQLite) is one parameter, so
# a list is only bounded to keep a statement's memory in reason.
ARRAY_CHUNK = 10_000


def one_of_chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in the runs a `one_of` list takes."""
    return chunks(items, ARRAY_CHUNK)


class ByDialect(Generic[T]):
    """A statement built once per dialect (for `one_of`): `statements[conn]`."""

    def __init__(self, build: Callable[[str], T]) -> None:
        self._build = build
        self._built: dict[str, T] = {}

    def __getitem__(self, conn: Connection) -> T:
        name = conn.dialect.name
        found = self._built.get(name)
        if found is None:
            found = self._built[name] = self._build(name)
        return found


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored in UTC, always returned with tzinfo=UTC, naive values refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is required")
        value = value.astimezone(UTC)
        # SQLite has no zone-aware type: keep a fixed UTC text form so that comparisons
        # of the stored strings order the same way as the instants.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # `process_bind_param` and SQLite's DATETIME text in one step: a booking binds some
        # twenty instants, and the two layers cost more than SQLite's own work on them.
        return sqlite_instant

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return value  # PostgreSQL's, with the session in UTC (make_engine)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_instant(value: datetime | None) -> str | None:
    """An instant as SQLite's DATETIME stores it (`sqlalchemy.dialects.sqlite.DATETIME`'s
    storage format, microseconds always written), in UTC; None for None. For every writer
    of SQLite instants: the statements SQLAlchemy compiles (`UTCDateTime`) and the rows
    written straight to the driver (`projections.batching`)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # (what the log's decoding and `datetime.now(UTC)` give)
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is required")
        value = value.astimezone(UTC)
    return _utc_text(value)


@lru_cache(maxsize=1 << 16)
def _utc_text(instant: datetime) -> str:
    """`sqlite_instant` of an instant in UTC, remembered: a booking binds its start, end
    and time of recording in several tables (some twenty instants, a handful of them
    distinct), a rebuild writes millions. One cache for both writers, which had one each
    and so wrote a booking's time of recording twice. Only instants in UTC are keys: two
    local times of one zone compare by their wall clocks, so the earlier and the later
    03:30 of an autumn night are equal keys, an hour apart."""
    return instant.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


# Pages in SQLite's WAL before the commit that crosses it checkpoints them into the database
# (SQLite's default: 1,000). A booking writes some 25 pages (about 20 B-trees: its rows in
# seven tables and their indexes), so at 1,000 every 40th booking paid a checkpoint: two
# fsyncs and a copy of every distinct page in the WAL, a commit of 3.8–6.5 ms (in
# bench.booking_commands at 3,000 bookings, about 0.12 ms of a booking's 0.9 ms on average,
# and the checkpoints' CPU grew with the database). At 4,000 the fsyncs come 4× less often
# and the pages that every booking writes again (the tables' and indexes' last leaves and
# their parents) are copied once per 160 bookings rather than once per 40; the WAL file stays
# under about 16 MB. What synchronous=NORMAL risks is unchanged in kind: a power cut (not a
# crashed process) may roll back the commits since the last sync, never leave the database
# inconsistent; there are more of them at most (up to 4,000 pages' worth, not 1,000).
WAL_AUTOCHECKPOINT_PAGES = 4000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose write transactions serialise correctly on both databases.

    On SQLite a write transaction starts with BEGIN IMMEDIATE: a deferred transaction that
    reads and then writes fails with SQLITE_BUSY when another writer committed in between.
    """
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # A pooled connection stays open: closing the last connection to a WAL database
            # checkpoints it, which costs a sync per transaction.
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # REPLACE deletes the row it collides with, and SQLite fires delete triggers for
            # that only with recursive triggers on: without this, INSERT OR REPLACE would
            # rewrite history past the append-only trigger (DESIGN.md invariant 1).
            cursor.execute("PRAGMA recursive_triggers=ON")
            cursor.close()

        event.listen(engine, "before_cursor_execute", _send_held)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("write", False)
            # On the driver: SQLAlchemy's work for a statement weighs as much as SQLite's
            # BEGIN itself (`events.pipeline`).
            pipeline.run_driver_sql(conn, "BEGIN IMMEDIATE" if immediate else "BEGIN")

        if not memory:
            keeper = _KeptWriters()
            setattr(engine, _KEEPER, keeper)
            event.listen(engine, "engine_disposed", keeper.close_all)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # Sessions in UTC whatever the server's default: psycopg then hands back instants with
    # datetime.UTC itself, which UTCDateTime passes through (a zone of the server's own
    # naming cost a conversion per value, a fifth of reading a month of busy rows).
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("options", "-c TimeZone=UTC")
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine.pool, "checkout", _refuse_dropped)
    event.listen(engine.pool, "checkin", _out_of_autocommit)
    event.listen(engine, "before_cursor_execute", _send_held)
    return engine


def _out_of_autocommit(dbapi_connection: Any, _record: Any) -> None:
    """A connection whose transaction began by our own BEGIN, in autocommit mode
    (`events.pipeline.read_together`), goes back to the pool in psycopg's own transaction
    mode (its transaction ended before: the pool's reset rolls back what is left)."""
    if dbapi_connection is None or dbapi_connection.closed or not dbapi_connection.autocommit:
        return
    if dbapi_connection.pgconn.transaction_status == 0:  # IDLE
        dbapi_connection.autocommit = False  # a client-side flag: no round trip


def _send_held(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    """Writes held back for the commit's round trip run before anything else SQLAlchemy
    runs on the connection, so every read sees them (`events.pipeline`)."""
    if pipeline.holding(conn):
        pipeline.before_statement(conn, statement)


def _refuse_dropped(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled PostgreSQL connection that the server has dropped, before use.

    An idle connection has nothing to read: when its socket is readable, the server has
    closed it (a restart, `pg_terminate_backend` and idle timeouts send a FATAL message and
    close) or sent something unasked; either way the pool makes a new one. This costs a
    poll of the socket, where `pool_pre_ping` cost a round trip (a `SELECT 1`) on every
    checkout. A connection lost without a word (a cut network) fails on first use like a
    connection lost mid-request, which callers answer already (503, nothing written).
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection or sent unasked")


@contextmanager
def write_transaction(engine: Engine, held: bool = False) -> Iterator[Connection]:
    """A transaction meant to append: commits on success, rolls back on any exception.
    `held`: writes given to `events.pipeline.write` wait and go with the COMMIT (on
    PostgreSQL in one round trip).

    On PostgreSQL it first passes the rebuild gate (`REBUILD_GATE`, shared, before it
    touches any table): the swap of rebuilt inline tables takes the gate alone and so waits
    only for the writers already inside, never for one that holds a table it needs and waits
    for one the swap holds (`projections.shadowing`). A held transaction sends the gate as the
    first of its first round trip's reads, so it costs no round trip of its own."""
    keeper: _KeptWriters | None = getattr(engine, _KEEPER, None) if held else None
    if keeper is None:
        with engine.connect() as conn:
            yield from _transaction(conn.execution_options(write=True), held)
        return
    conn = keeper.take() or engine.connect().execution_options(write=True)
    try:
        yield from _transaction(conn, held)
    except BaseException:
        keeper.give_back(conn, committed=False)
        raise
    keeper.give_back(conn, committed=True)


def _transaction(conn: Connection, held: bool) -> Iterator[Connection]:
    with conn.begin():
        gated = conn.dialect.name == "postgresql"
        if not held:
            if gated:
                conn.exec_driver_sql(_PASS_REBUILD_GATE)
            yield conn
            return
        with pipeline.hold(conn):
            if gated:
                pipeline.read_soon(conn, _GATE_AHEAD, _passed)
            yield conn
            pipeline.finish(conn)


_KEEPER = "tilavaraus_kept_writers"  # the attribute of a SQLite file's engine that holds them


class _KeptWriters:
    """A SQLite file's connections of finished held write transactions (every booking
    command's: `write_transaction(held=True)`), kept checked out of the pool for the next
    ones. Taking a pooled connection and giving it back — SQLAlchemy's `Connection`, the
    pool's checkout, reset and checkin — cost 8–10 % of a booking's CPU there, more than
    any step of the booking itself (bench/results/2026-12-07-sqlite-cmd.md).

    At most `KEEP` are kept, so that the pool keeps the rest for everyone else. A connection
    is kept only between transactions (never one still in a transaction, closed or
    invalidated), handed out only in the process that kept it (a forked child starts with
    none), and closed when the engine is disposed (`engine_disposed`), as the pool's idle
    ones are."""

    KEEP = 2

    def __init__(self) -> None:
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self) -> Connection | None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's are not its own
                self._idle, self._pid = [], os.getpid()
            return self._idle.pop() if self._idle else None

    def give_back(self, conn: Connection, committed: bool) -> None:
        """Keep `conn` for the next transaction, or close it. A connection whose transaction
        committed is idle and valid; after an exception it may be neither."""
        if committed or not (conn.closed or conn.invalidated or conn.in_transaction()):
            with self._lock:
                if len(self._idle) < self.KEEP and self._pid == os.getpid():
                    self._idle.append(conn)
                    return
        conn.close()

    def close_all(self, _engine: Engine) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


# An advisory lock of two int4 keys: apart from the bigint-keyed premises and space locks.
REBUILD_GATE = (7411, 1)
_PASS_REBUILD_GATE = "SELECT pg_advisory_xact_lock_shared({}, {})".format(*REBUILD_GATE)
CLOSE_REBUILD_GATE = "SELECT pg_advisory_xact_lock({}, {})".format(*REBUILD_GATE)
_GATE_AHEAD = pipeline.Ahead(text(_PASS_REBUILD_GATE), {}, REBUILD_GATE)


def _passed(_rows: object) -> None:
    """The gate's answer says nothing: having it means the gate was passed."""


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn
