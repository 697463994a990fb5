"""Appending to many streams at once: one INSERT for thousands of events (the expiry job).

The rules are `events.store.append`'s, per stream: the caller names the version it decided
on, the stream must still be there, the new events take the next versions, and
UNIQUE(stream, version) is the last guard. What differs is the cost: every stream's version is
checked with one query, the events' JSON is built by marshmallow once per shape instead of
once per event, and the rows go to the driver in one statement (PostgreSQL: `unnest` of
arrays; SQLite: one `executemany`) instead of through SQLAlchemy's per-row processing.

The append lock is taken first (`events.store.lock_for_append`), so commit order still equals
position order on PostgreSQL (DESIGN.md invariant 3), and the version check and the insert
cannot be overtaken by another appender.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from events.catalog import Event, JSONObject
from events.serialization import serializer
from events.store import (
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    events_table,
    head_position,
    lock_for_append,
)

VERSION_QUERY_CHUNK = 500  # streams per `IN (…)`: well under every driver's parameter limit


@dataclass(frozen=True)
class StreamAppend:
    """What to append to one stream, and the version the caller decided on."""

    stream: str
    events: Sequence[Event]
    expected_version: int


def append_many(
    conn: Connection, appends: Sequence[StreamAppend], metadata: Metadata | None = None
) -> list[list[RecordedEvent]]:
    """Append each stream's events at its `expected_version + 1, + 2, …`, all in one
    statement, or raise `ConcurrencyError` (for the first stale stream) and write nothing.

    Returns the recorded events per entry of `appends`, in the same order. Must run inside
    a transaction; the caller commits. Each stream may appear once.
    """
    streams = [a.stream for a in appends]
    if len(set(streams)) != len(streams):
        raise ValueError("append_many: a stream may appear only once")
    busy = [a for a in appends if a.events]
    if not busy:
        return [[] for _ in appends]
    lock_for_append(conn)
    current = stream_versions(conn, [a.stream for a in busy])
    for a in busy:
        if current.get(a.stream, 0) != a.expected_version:
            raise ConcurrencyError(a.stream, a.expected_version)

    dump = TemplateDumper()
    rows: list[_Row] = []
    for a in busy:
        for offset, event in enumerate(a.events, start=1):
            rows.append((a.stream, a.expected_version + offset, *dump(event)))
    now = datetime.now(UTC)
    meta = (metadata or Metadata()).as_json()
    try:
        positions = _insert(conn, rows, meta, now)
    except IntegrityError as error:  # only a writer that bypassed the append lock gets here
        raise ConcurrencyError(busy[0].stream, busy[0].expected_version) from error
    if len(positions) != len(rows):  # pragma: no cover - the lock makes this impossible
        raise RuntimeError(f"appended {len(rows)} events but found {len(positions)}")

    recorded: dict[str, list[RecordedEvent]] = {}
    for stream, version, name, schema_version, data, _ in rows:
        recorded.setdefault(stream, []).append(
            RecordedEvent(
                position=positions[(stream, version)],
                stream=stream,
                version=version,
                type=name,
                schema_version=schema_version,
                data=data,
                metadata=meta,
                recorded_at=now,
            )
        )
    return [recorded.get(a.stream, []) for a in appends]


def stream_versions(conn: Connection, streams: Sequence[str]) -> dict[str, int]:
    """Each stream's current version; a stream with no events is left out (version 0)."""
    t = events_table
    found: dict[str, int] = {}
    for i in range(0, len(streams), VERSION_QUERY_CHUNK):
        chunk = list(streams[i : i + VERSION_QUERY_CHUNK])
        query = select(t.c.stream, func.max(t.c.version)).where(t.c.stream.in_(chunk))
        found.update((s, int(v)) for s, v in conn.execute(query.group_by(t.c.stream)))
    return found


# stream, version, type, schema version, data, data as JSON text
_Row = tuple[str, int, str, int, JSONObject, str]


def _insert(
    conn: Connection,
    rows: list[_Row],
    meta: JSONObject,
    now: datetime,
) -> dict[tuple[str, int], int]:
    """Insert the rows; returns each (stream, version)'s position."""
    # The column type's processing for this dialect (on SQLite: UTC text in a fixed form).
    column_type = events_table.c.recorded_at.type.dialect_impl(conn.dialect)
    at = column_type.bind_processor(conn.dialect)
    recorded_at = at(now) if at else now
    if conn.dialect.name == "postgresql":
        # One statement for all rows: arrays cost one round trip, where executemany would
        # send one INSERT (and fire the row-level work) per event.
        returned = conn.exec_driver_sql(
            "INSERT INTO events (stream, version, type, schema_version, data, metadata,"
            " recorded_at)"
            " SELECT s, v, t, sv, d::jsonb, %(meta)s::jsonb, %(at)s"
            " FROM unnest(%(s)s::text[], %(v)s::int[], %(t)s::text[], %(sv)s::int2[],"
            " %(d)s::text[]) AS u(s, v, t, sv, d)"
            " RETURNING position, stream, version",
            {
                "s": [r[0] for r in rows],
                "v": [r[1] for r in rows],
                "t": [r[2] for r in rows],
                "sv": [r[3] for r in rows],
                "d": [r[5] for r in rows],
                "meta": json.dumps(meta),
                "at": recorded_at,
            },
        )
        return {(s, v): p for p, s, v in returned}
    # SQLite: one writer at a time (BEGIN IMMEDIATE), so the positions after the head read
    # here are exactly the rows inserted next.
    head = head_position(conn)
    meta_json = json.dumps(meta)  # JSON text as SQLAlchemy's JSON type writes it
    conn.exec_driver_sql(
        "INSERT INTO events (stream, version, type, schema_version, data, metadata,"
        " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(s, v, t, sv, text, meta_json, recorded_at) for s, v, t, sv, _, text in rows],
    )
    mine = conn.exec_driver_sql(
        "SELECT position, stream, version FROM events WHERE position > ?", (head,)
    )
    return {(s, v): p for p, s, v in mine}


class TemplateDumper:
    """`serializer.dump` for many events, through marshmallow once per shape, and their JSON.

    Events of one type whose fields differ only in plain strings (thousands of
    `PopupExpired` of one run: same instant, other ids) serialise to the same JSON but for
    those strings, which a string field passes through unchanged. So the first event of each
    shape is dumped and validated in full, and the others take its data and its JSON text
    with their own strings put in. Anything else (a value of another type, an unhashable
    field) goes the full way.
    """

    def __init__(self) -> None:
        self._shapes: dict[Hashable, _Shape] = {}

    def __call__(self, event: Event) -> tuple[str, int, JSONObject, str]:
        """(type name, schema version, data, the data as JSON text)."""
        fields = _fields_of(type(event))
        own = fields.strings(event)
        if not all(type(value) is str for value in own):
            return self._full(event)
        key = (type(event), *map(_same_json, fields.others(event)))
        try:
            shape = self._shapes.get(key)
        except TypeError:  # an unhashable field value: no shape to share
            return self._full(event)
        if shape is None:
            shape = _Shape.of(serializer.dump(event), fields.names)
            if shape is None:
                return self._full(event)
            self._shapes[key] = shape
        return shape.fill(own)

    @staticmethod
    def _full(event: Event) -> tuple[str, int, JSONObject, str]:
        name, schema_version, data = serializer.dump(event)
        return name, schema_version, data, json.dumps(data)


@dataclass(frozen=True)
class _Shape:
    name: str
    schema_version: int
    data: JSONObject
    names: tuple[str, ...]  # the string fields, in the order of the `{}` in `fill_in`
    fill_in: Callable[..., str]  # the JSON text's `str.format`, one `{}` per string field

    @classmethod
    def of(cls, dumped: tuple[str, int, JSONObject], names: tuple[str, ...]) -> _Shape | None:
        name, schema_version, data = dumped
        # Mark each string's place with a text no other field should hold, and cut the JSON there.
        marks = [f"\x00{i}\x00" for i in range(len(names))]
        text = json.dumps({**data, **dict(zip(names, marks, strict=True))})
        quoted = [json.dumps(mark) for mark in marks]
        if any(text.count(q) != 1 for q in quoted):  # a mark inside another field's value
            return None
        pieces = [text]
        for q in quoted:  # in field order, as json.dumps wrote them
            pieces[-1:] = pieces[-1].split(q)
        if len(pieces) != len(names) + 1:  # the marks came out in another order
            return None
        pattern = "{}".join(p.replace("{", "{{").replace("}", "}}") for p in pieces)
        return cls(name, schema_version, data, names, pattern.format)

    def fill(self, values: tuple[str, ...]) -> tuple[str, int, JSONObject, str]:
        data = self.data.copy()
        data.update(zip(self.names, values, strict=True))
        text = self.fill_in(*map(_json_string, values))
        return self.name, self.schema_version, data, text


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


def _same_json(value: Any) -> Hashable:
    """Equal only for values that serialise alike: `True == 1`, and one instant in two zones
    is equal but written with two offsets."""
    if type(value) is datetime:
        return (value, value.tzinfo)
    return (value, type(value))


@dataclass(frozen=True)
class _Fields:
    names: tuple[str, ...]  # declared `str`
    strings: Callable[[Event], tuple[str, ...]]
    others: Callable[[Event], tuple[Any, ...]]


_FIELDS: dict[type[Event], _Fields] = {}


def _fields_of(event_type: type[Event]) -> _Fields:
    found = _FIELDS.get(event_type)
    if found is None:
        hints = typing.get_type_hints(event_type)
        names = [f.name for f in dataclasses.fields(event_type)]
        strings = tuple(n for n in names if hints[n] is str)
        others = tuple(n for n in names if hints[n] is not str)
        found = _FIELDS[event_type] = _Fields(strings, _getter(strings), _getter(others))
    return found


def _getter(names: tuple[str, ...]) -> Callable[[Event], tuple[Any, ...]]:
    """A tuple of these attributes (operator.attrgetter returns a bare value for one)."""
    if len(names) >= 2:
        return attrgetter(*names)
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda event: (get(event),)
    return lambda event: ()
