"""Asynchronous projections that take the log a batch at a time, on the events' raw JSON.

The runner hands such a projection a list of recorded events and one transaction; the
projection reads what it needs for the whole batch at once, works in memory and writes its
changes with a few many-row statements. Decoding through marshmallow and one statement per
event would cost more than the whole rest of a rebuild.

Every batch projection defines its tables with a function of a name suffix, so that a
rebuild can fill a fresh copy of them (`fresh("__rebuild")`) while the live copy keeps
serving, and swap them in by renaming (see `projections.rebuilding.rebuild_swapping`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

from sqlalchemy import Boolean, Column, MetaData, Table, select
from sqlalchemy.engine import Connection, Dialect

from events import pipeline
from events.catalog import ALL_EVENTS, Event, JSONObject
from events.serialization import serializer
from events.sql import UTCDateTime, chunks, in_runs, sqlite_instant
from events.store import RecordedEvent
from projections.base import Projection, metadata

CURRENT_SCHEMA = {t.__name__: t.schema_version for t in ALL_EVENTS}

# SQLite: the longest pause after a rebuild's write transaction, for the writers that waited.
# SQLite's busy handler sleeps between its tries, up to 100 ms once it has waited a while:
# a writer waiting on back-to-back transactions misses every gap shorter than its sleep and
# waited for the whole replay (11 s at 100,000 events; at 1,000,000 under load the inline
# swap beside it gave up after the 30 s busy timeout: `database is locked`).
BATCH_PAUSE_SECONDS = 0.1


@contextmanager
def paced(conn: Connection) -> Iterator[None]:
    """A rebuild's write transaction on `conn`. On SQLite, where it holds the one writer's
    lock, it then pauses as long as it held it (at most `BATCH_PAUSE_SECONDS`), so that
    bookings (and the inline projections' swap) waiting for the lock get it in between."""
    started = time.monotonic()
    with conn.begin():
        yield
    if conn.dialect.name == "sqlite":
        time.sleep(min(time.monotonic() - started, BATCH_PAUSE_SECONDS))


def data_of(recorded: RecordedEvent) -> JSONObject:
    """The event's JSON in its current shape: old versions go through their upcasters."""
    if recorded.schema_version >= CURRENT_SCHEMA.get(recorded.type, 0):
        return recorded.data
    return serializer.dump(recorded.to_event())[2]


def instant(text: str) -> datetime:
    """An instant from the log's RFC 3339 text, in UTC (C-speed, unlike marshmallow)."""
    return datetime.fromisoformat(text).astimezone(UTC)


class BatchProjection(Projection):
    """A projection fed in batches of raw events; subclasses set `event_types`, `define`
    and implement `apply_batch`."""

    event_types: ClassVar[frozenset[str]]
    _live: ClassVar[tuple[Table, ...] | None] = None

    @staticmethod
    def define(metadata: MetaData, suffix: str) -> tuple[Table, ...]:
        """The projection's tables in `metadata`, each named `<table><suffix>`."""
        raise NotImplementedError

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        cls = type(self)
        # `tables` is a class attribute of every other projection; a batch projection's
        # copy (`fresh`) has tables of its own, so here it is set per instance.
        if suffix:
            self.tables = cls.define(MetaData(), suffix)  # type: ignore[misc]
        else:
            if cls._live is None:  # the live tables belong to the migrations' metadata
                cls._live = cls.define(metadata, "")
            self.tables = cls._live  # type: ignore[misc]

    def fresh(self, suffix: str) -> BatchProjection:
        """The same projection writing into a copy of its tables named `<table><suffix>`."""
        return type(self)(suffix)

    @property
    def checkpoint_name(self) -> str:
        return self.name + self.suffix

    @classmethod
    def handled_types(cls) -> frozenset[str]:
        return cls.event_types

    def apply(self, conn: Connection, event: Event, recorded: RecordedEvent) -> None:
        self.apply_batch(conn, [recorded])

    def apply_batch(self, conn: Connection, batch: Sequence[RecordedEvent]) -> None:
        raise NotImplementedError

    def hold(self) -> None:
        """From now on the projection may keep what it reads and changes in memory from one
        `apply_batch` to the next and write it later, at the latest at `flush`. Only for a
        rebuild into fresh tables that nobody else writes, filled from the start of the log
        (`projections.rebuilding.rebuild_asynchronous`); by default it writes each batch at
        once."""

    def spill(self, conn: Connection) -> None:
        """Between two batches of a held rebuild (no transaction open on `conn`): write what
        `hold` kept if it grew too large to keep, in transactions of its own as short as it
        can make them, and go on holding."""

    def flush(self, conn: Connection) -> None:
        """Write what `hold` kept, and stop holding: in transactions of its own on `conn`
        (none is open), as short as it can make them."""


def upsert_rows(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    names: list[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    fresh: bool = False,
) -> None:
    """Insert rows given as tuples of `names`, already in the driver's types, or add their
    measures to the rows already there (same primary key): the columns not in `keys` are
    summed on conflict, except those named in `table.info["keep"]`, which keep their first
    value. `fresh`: the table holds none of these keys (see `upsert_replacing`)."""
    if not rows:
        return
    if fresh:
        _insert_many(conn, table, names, "", rows)
        return
    keep = set(table.info.get("keep", ()))
    added = [n for n in names if n not in keys and n not in keep]
    action = ", ".join(f'"{n}" = "{table.name}"."{n}" + excluded."{n}"' for n in added)
    _insert_many(conn, table, names, _on_conflict(keys, f"DO UPDATE SET {action}"), rows)


def upsert_replacing(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    fresh: bool = False,
) -> None:
    """Insert rows, or overwrite the non-key columns of the rows already there. `fresh`:
    the caller knows that the table holds none of these keys (a held rebuild's first write
    into its empty tables): a plain INSERT, by COPY on PostgreSQL, where the upsert's arrays
    cost the client more than the server's whole insert (psycopg dumps them in Python)."""
    if not rows:
        return
    names = list(rows[0])
    if fresh:
        _insert_many(conn, table, names, "", _driver_values(conn, table, names, rows))
        return
    action = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in keys)
    _upsert(conn, table, keys, names, f"DO UPDATE SET {action}", rows)


def insert_new(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert the rows whose `keys` are not there yet; the others are skipped."""
    if not rows:
        return
    _upsert(conn, table, keys, list(rows[0]), "DO NOTHING", rows)


def insert_new_values(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    names: list[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """`insert_new` for rows given as tuples of `names`, already in the driver's types
    (`driver_value`)."""
    if not rows:
        return
    tail = _on_conflict(keys, "DO NOTHING")
    if conn.dialect.name != "postgresql" and len(rows) > 1:
        # Many rows (an expiry run's 10,000 mails) as INSERTs of runs of rows (`in_runs`);
        # each a write the service may hold for the commit.
        columns = ", ".join(f'"{n}"' for n in names)
        for sql, values in in_runs(
            f'INSERT INTO "{table.name}" ({columns}) ', len(names), rows, tail
        ):
            pipeline.write_sql(conn, sql, [values])
        return
    _insert_many(conn, table, names, tail, rows)


def driver_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """`value` as the driver takes it for `column` (its type's bind processing)."""
    process = _processor(column, conn.dialect)
    return process(value) if process is not None and value is not None else value


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """One plain INSERT of many rows, every column of the table (a value a row lacks is
    NULL: column defaults are not applied), straight to the driver like `_upsert`."""
    if not rows:
        return
    names = [column.name for column in table.columns]
    _insert_many(conn, table, names, "", _driver_values(conn, table, names, rows))


def rows_by_key(
    conn: Connection, table: Table, key: str, ids: Iterable[Any]
) -> dict[Any, dict[str, Any]]:
    """The rows of `table` whose column `key` is one of `ids`, as dicts by that key."""
    found: dict[Any, dict[str, Any]] = {}
    ordered = sorted(set(ids))
    for chunk in chunks(ordered):
        for row in conn.execute(select(table).where(table.c[key].in_(chunk))).mappings():
            found[row[key]] = dict(row)
    return found


def _upsert(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    names: list[str],
    action: str,
    rows: Sequence[dict[str, Any]],
) -> None:
    """One INSERT … ON CONFLICT for many rows, straight to the driver: SQLAlchemy's
    per-parameter processing of thousands of wide rows costs more than the database."""
    values = _driver_values(conn, table, names, rows)
    _insert_many(conn, table, names, _on_conflict(keys, action), values)


def _driver_values(
    conn: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """The rows as tuples of `names`, each value through its column type's bind processor
    (column by column: a rebuild passes thousands of rows at a time)."""
    processors = [
        (i, p) for i, n in enumerate(names) if (p := _processor(table.c[n], conn.dialect))
    ]
    values = _tuples(rows, names)
    if not processors:
        return values
    columns: list[Iterable[Any]] = list(zip(*values, strict=True))
    for i, process in processors:
        column = columns[i]
        if process is postgres_instant and _in_utc(column):
            continue  # already what the processor would make of each
        if None in column:
            columns[i] = [None if v is None else process(v) for v in column]
        else:
            columns[i] = map(process, column)
    return list(zip(*columns, strict=True))


def _tuples(rows: Sequence[dict[str, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    """The rows as tuples of `names`; a name a row lacks is None. When every row has every
    name (what projections make), one `itemgetter` in C does it, several times faster."""
    if len(names) > 1:
        try:
            return list(map(itemgetter(*names), rows))
        except KeyError:
            pass
    return [tuple(map(row.get, names)) for row in rows]


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite":
        if isinstance(column.type, UTCDateTime):
            return sqlite_instant
        if isinstance(column.type, Boolean):
            return None  # sqlite3 stores a bool as the 0 or 1 that the processor makes
    elif isinstance(column.type, UTCDateTime):
        return postgres_instant
    return column.type._cached_bind_processor(dialect)


def postgres_instant(value: datetime) -> datetime:
    """What `UTCDateTime` sends PostgreSQL: the instant, aware, in UTC."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given where an instant is required")
    return value.astimezone(UTC)


_TZINFO = attrgetter("tzinfo")


def _in_utc(column: Iterable[Any]) -> bool:
    """Whether every instant of a column (None aside) is aware and in UTC, as the log's
    decoding makes them: checked in C, where calling `postgres_instant` on each of the
    millions a rebuild writes cost it 5 % of its time."""
    return set(map(_TZINFO, filter(None, column))) <= {UTC}


def _on_conflict(keys: Sequence[str], action: str) -> str:
    conflict = ", ".join(f'"{k}"' for k in keys)
    return f"ON CONFLICT ({conflict}) {action}"


_UNNEST_FROM = 20  # rows: fewer (a command's own writes) go as plain VALUES
_UNNEST_ROWS = 50_000  # rows per INSERT … unnest statement


@lru_cache(maxsize=256)
def _values_sql(table: str, names: tuple[str, ...], tail: str, postgresql: bool) -> str:
    """`INSERT INTO table (names) VALUES (…) tail` in the driver's parameter style, written
    once per statement: every booking's mail is one (`booking.outbox.enqueue`)."""
    columns = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("%s" if postgresql else "?" for _ in names)
    return f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) {tail}'


def _insert_many(
    conn: Connection,
    table: Table,
    names: Sequence[str],
    tail: str,
    values: Sequence[tuple[Any, ...]],
) -> None:
    """`INSERT INTO table (names) … tail` for many rows of driver values. SQLite's driver
    runs one prepared statement per row in C. On PostgreSQL that would be an execution per
    row, so each column goes as one array and `unnest` makes the rows: one statement, one
    plan (a key may then appear only once per call: ON CONFLICT DO UPDATE may not meet a
    row twice); many rows without a tail go by COPY."""
    postgresql = conn.dialect.name == "postgresql"
    if not postgresql or len(values) < _UNNEST_FROM:
        # A command's few rows: a write the service may hold for the commit's round trip.
        pipeline.write_sql(conn, _values_sql(table.name, tuple(names), tail, postgresql), values)
        return
    columns = ", ".join(f'"{n}"' for n in names)
    head = f'INSERT INTO "{table.name}" ({columns}) '
    if not tail:
        # A plain INSERT of many rows (a rebuild's new rows): COPY, in this transaction.
        # The server then spends half the time of INSERT … unnest (50,000 booking_list rows:
        # 1.4 s against 2.8 s), the same rows, triggers and constraints.
        # psycopg's own cursor (COPY is not SQLAlchemy's); a checked-out connection always
        # has its driver connection, which SQLAlchemy types as optional.
        pipeline.send_held(conn)  # COPY goes past SQLAlchemy: what is held goes first
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in values:
                copy.write_row(row)
        return
    types = [table.c[n].type.compile(dialect=conn.dialect) for n in names]
    # In parts: a held rebuild may write a million wide rows at once.
    for at in range(0, len(values), _UNNEST_ROWS):
        part = values[at : at + _UNNEST_ROWS]
        columns_of = list(zip(*part, strict=True))
        # A column with one value in every row goes once, not as an array of it (an expiry
        # run's 10,000 mails share their times, attempts and mostly their language: psycopg
        # dumps an array item by item in Python).
        same = [column.count(column[0]) == len(column) for column in columns_of]
        same[0] = False  # unnest needs an array, and the rows their number
        arrays = [i for i, one in enumerate(same) if not one]
        unnest = ", ".join(f"%b::{types[i]}[]" for i in arrays)
        named = ", ".join(f"c{i}" for i in arrays)
        chosen = ", ".join(f"%b::{types[i]}" if one else f"c{i}" for i, one in enumerate(same))
        # WHERE true: without it, ON CONFLICT could be read as a join's ON.
        sql = f"{head}SELECT {chosen} FROM unnest({unnest}) AS u({named}) WHERE true {tail}"
        params = [c[0] if one else list(c) for c, one in zip(columns_of, same, strict=True)]
        # The parameters in the order of their placeholders: the constants, then the arrays.
        ordered = [p for p, one in zip(params, same, strict=True) if one]
        ordered += [params[i] for i in arrays]
        conn.exec_driver_sql(sql, tuple(ordered))
