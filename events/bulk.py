"""Appending to many streams at once: one INSERT for thousands of events (the expiry job).

The rules are `events.store.append`'s, per stream: the caller names the version it decided
on, the stream must still be there, the new events take the next versions, and
UNIQUE(stream, version) is the last guard. What differs is the cost: every stream's version is
checked with one query, and the rows go to the driver in one statement (PostgreSQL: `unnest` of
arrays; SQLite: one `executemany`) instead of through SQLAlchemy's per-row processing.

`prepare_many` serialises without writing (stream versions known, positions not yet), so a
caller can write what needs no position before `write_many` takes the append lock
(`events.store.lock_for_append`): commit order still equals position order on PostgreSQL
(DESIGN.md invariant 3), and the version check and the insert cannot be overtaken by another
appender. `append_many` is the two in one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from events.catalog import Event, JSONObject
from events.serialization import serializer
from events.sql import chunks, in_runs
from events.store import (
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    events_table,
    head_position,
    lock_for_append,
)


@dataclass(frozen=True)
class StreamAppend:
    """What to append to one stream, and the version the caller decided on."""

    stream: str
    events: Sequence[Event]
    expected_version: int


@dataclass(frozen=True)
class Prepared:
    """Events of many streams serialised for `write_many`, each at its future stream
    version, without a position yet (0)."""

    recorded: list[list[RecordedEvent]]  # per entry of the appends, in their order
    expected: list[tuple[str, int]]  # (stream, expected version) of each non-empty entry
    texts: list[str]  # each event's data as JSON text, in the order of `recorded`


def prepare_many(
    appends: Sequence[StreamAppend], metadata: Metadata | None = None, *, now: datetime
) -> Prepared:
    """Serialise every stream's events at its `expected_version + 1, + 2, …`, recorded at
    `now` (nothing is written: inline projections and mails that need no position may use
    these first)."""
    streams = [a.stream for a in appends]
    if len(set(streams)) != len(streams):
        raise ValueError("append_many: a stream may appear only once")
    meta = (metadata or Metadata()).as_json()
    datas, texts = _dumped([e for a in appends for e in a.events])
    data_of = iter(datas)
    recorded = [
        [
            _recorded(
                {
                    "position": 0,
                    "stream": a.stream,
                    "version": version,
                    "type": type(e).__name__,
                    "schema_version": e.schema_version,
                    "data": next(data_of),
                    "metadata": meta,
                    "recorded_at": now,
                    "source": e,
                }
            )
            for version, e in enumerate(a.events, start=a.expected_version + 1)
        ]
        for a in appends
    ]
    expected = [(a.stream, a.expected_version) for a in appends if a.events]
    return Prepared(recorded, expected, texts)


def _dumped(events: list[Event]) -> tuple[list[JSONObject], list[str]]:
    """Each event's data and JSON text, in order: the events of each type serialised
    together (`serializer.dump_texts`)."""
    by_type: dict[type[Event], list[int]] = {}
    for i, event in enumerate(events):
        by_type.setdefault(type(event), []).append(i)
    if len(by_type) == 1:
        return serializer.dump_texts(events)
    datas: list[JSONObject] = [{}] * len(events)
    texts = [""] * len(events)
    for indices in by_type.values():
        some_datas, some_texts = serializer.dump_texts([events[i] for i in indices])
        for i, data, text in zip(indices, some_datas, some_texts, strict=True):
            datas[i], texts[i] = data, text
    return datas, texts


def write_many(
    conn: Connection, prepared: Prepared, *, positioned: bool = True
) -> list[list[RecordedEvent]]:
    """Append prepared events, all in one statement, or raise `ConcurrencyError` (for the
    first stale stream) and write nothing. Returns them with their positions; unless
    `positioned` is False: then as prepared, at position 0, for a caller that reads none of
    their positions (copying 10,000 records to their positions cost ~8 ms).

    Must run inside a transaction; the caller commits.
    """
    if not prepared.expected:
        return prepared.recorded
    lock_for_append(conn)
    current = stream_versions(conn, [stream for stream, _ in prepared.expected])
    for stream, expected_version in prepared.expected:
        if current.get(stream, 0) != expected_version:
            raise ConcurrencyError(stream, expected_version)
    flat = [r for mine in prepared.recorded for r in mine]
    try:
        positions = _insert(conn, flat, prepared.texts)
    except IntegrityError as error:  # only a writer that bypassed the append lock gets here
        raise ConcurrencyError(*prepared.expected[0]) from error
    if len(positions) != len(flat):  # pragma: no cover - the lock makes this impossible
        raise RuntimeError(f"appended {len(flat)} events but found {len(positions)}")
    if not positioned:
        return prepared.recorded
    position_of = iter(positions)
    return [[_at(r, next(position_of)) for r in mine] for mine in prepared.recorded]


def append_many(
    conn: Connection,
    appends: Sequence[StreamAppend],
    metadata: Metadata | None = None,
    *,
    now: datetime,
) -> list[list[RecordedEvent]]:
    """Append each stream's events at its `expected_version + 1, + 2, …`, recorded at
    `now`, all in one statement, or raise `ConcurrencyError` (for the first stale stream)
    and write nothing.

    Returns the recorded events per entry of `appends`, in the same order. Must run inside
    a transaction; the caller commits. Each stream may appear once.
    """
    return write_many(conn, prepare_many(appends, metadata, now=now))


# `_recorded` and `_at` fill a recorded event's instance dict, field by field: the class must
# keep one (no `__slots__`), and `_recorded` must be given every field.
if "__slots__" in vars(RecordedEvent):  # pragma: no cover
    raise RuntimeError("events.bulk._at: RecordedEvent has slots now; copy its fields")


def _recorded(values: dict[str, Any]) -> RecordedEvent:
    """The recorded event of these values of all its fields (in their order): 0.6 µs where
    the frozen dataclass's `__init__`, setting each through `object.__setattr__`, took
    1.5 µs — 10,000 times per expiry run."""
    found: RecordedEvent = object.__new__(RecordedEvent)
    found.__dict__.update(values)
    return found


def _at(r: RecordedEvent, position: int) -> RecordedEvent:
    """`r` at `position` (what `dataclasses.replace` does): the fields copied as one dict,
    0.8 µs where the frozen dataclass's `__init__`, setting each through
    `object.__setattr__`, took 1.4 µs — 10,000 times per expiry run."""
    found: RecordedEvent = object.__new__(RecordedEvent)
    fields = found.__dict__
    fields.update(r.__dict__)
    fields["position"] = position
    return found


def stream_versions(conn: Connection, streams: Sequence[str]) -> dict[str, int]:
    """Each stream's current version; a stream with no events is left out (version 0)."""
    t = events_table
    found: dict[str, int] = {}
    for chunk in chunks(streams):
        query = select(t.c.stream, func.max(t.c.version)).where(t.c.stream.in_(chunk))
        found.update((s, int(v)) for s, v in conn.execute(query.group_by(t.c.stream)))
    return found


_INSERT_EVENTS = (
    "INSERT INTO events (stream, version, type, schema_version, data, metadata, recorded_at) "
)


def _insert(conn: Connection, rows: list[RecordedEvent], texts: list[str]) -> list[int]:
    """Insert the rows; returns their positions, in the order of `rows`."""
    # The column type's processing for this dialect (on SQLite: UTC text in a fixed form).
    column_type = events_table.c.recorded_at.type.dialect_impl(conn.dialect)
    at = column_type.bind_processor(conn.dialect)
    now, meta = rows[0].recorded_at, rows[0].metadata  # one of each for a prepared batch
    recorded_at = at(now) if at else now
    if conn.dialect.name == "postgresql":
        # One statement for all rows: arrays cost one round trip, where executemany would
        # send one INSERT (and fire the row-level work) per event. The arrays go in binary
        # (`%b`): as text, psycopg escapes every quote of every event's JSON with a regex.
        params: dict[str, Any] = {
            "s": [r.stream for r in rows],
            "v": [r.version for r in rows],
            "d": texts,
            "meta": json.dumps(meta),
            "at": recorded_at,
        }
        kinds = {(r.type, r.schema_version) for r in rows}
        if len(kinds) == 1:
            # Events of one type (an expiry run's 10,000): its name and version go once, not
            # as two arrays that psycopg would dump item by item.
            ((params["t"], params["sv"]),) = kinds
            source = (
                "SELECT s, v, %(t)s, %(sv)s::int2, d::jsonb, %(meta)s::jsonb, %(at)s"
                " FROM unnest(%(s)b::text[], %(v)b::int[], %(d)b::text[]) AS u(s, v, d)"
            )
        else:
            params["t"], params["sv"] = [r.type for r in rows], [r.schema_version for r in rows]
            source = (
                "SELECT s, v, t, sv, d::jsonb, %(meta)s::jsonb, %(at)s"
                " FROM unnest(%(s)b::text[], %(v)b::int[], %(t)b::text[], %(sv)b::int2[],"
                " %(d)b::text[]) AS u(s, v, t, sv, d)"
            )
        returned = conn.exec_driver_sql(
            "INSERT INTO events (stream, version, type, schema_version, data, metadata,"
            f" recorded_at) {source} RETURNING position, stream, version",
            params,
        )
        found = {(s, v): p for p, s, v in returned}
        return [found[(r.stream, r.version)] for r in rows if (r.stream, r.version) in found]
    # SQLite: one writer at a time (BEGIN IMMEDIATE), so the rows after the head read here
    # are exactly the rows inserted next, each given a rowid above every one before it:
    # positions head' + 1 … in the order of `rows` when they are as many, without a gap.
    head = head_position(conn)
    meta_json = json.dumps(meta)  # JSON text as SQLAlchemy's JSON type writes it
    values = [
        (r.stream, r.version, r.type, r.schema_version, text, meta_json, recorded_at)
        for r, text in zip(rows, texts, strict=True)
    ]
    # In runs of rows (`in_runs`), in order: the positions follow the rows.
    for sql, run in in_runs(_INSERT_EVENTS, 7, values):
        conn.exec_driver_sql(sql, run)
    count, first, last = conn.exec_driver_sql(
        "SELECT count(*), min(position), max(position) FROM events WHERE position > ?", (head,)
    ).one()
    if count != len(rows) or last - first + 1 != count:  # pragma: no cover - one writer
        return []
    return list(range(first, last + 1))
