"""Appending to many streams at once: one INSERT for thousands of events (the expiry job).

The rules are `events.store.append`'s, per stream: the caller names the version it decided
on, the stream must still be there, the new events take the next versions, and
UNIQUE(stream, version) is the last guard. What differs is the cost: every stream's version is
checked with one query, the events' JSON is built by marshmallow once per shape instead of
once per event, and the rows go to the driver in one statement (PostgreSQL: `unnest` of
arrays; SQLite: one `executemany`) instead of through SQLAlchemy's per-row processing.

`prepare_many` serialises without writing (stream versions known, positions not yet), so a
caller can write what needs no position before `write_many` takes the append lock
(`events.store.lock_for_append`): commit order still equals position order on PostgreSQL
(DESIGN.md invariant 3), and the version check and the insert cannot be overtaken by another
appender. `append_many` is the two in one.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from events.catalog import Event, JSONObject
from events.serialization import serializer
from events.sql import chunks
from events.store import (
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    events_table,
    head_position,
    lock_for_append,
)

T = TypeVar("T")


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


def prepare_many(appends: Sequence[StreamAppend], metadata: Metadata | None = None) -> Prepared:
    """Serialise every stream's events at its `expected_version + 1, + 2, …` (nothing is
    written: inline projections and mails that need no position may use these first)."""
    streams = [a.stream for a in appends]
    if len(set(streams)) != len(streams):
        raise ValueError("append_many: a stream may appear only once")
    dump = TemplateDumper()
    now = datetime.now(UTC)
    meta = (metadata or Metadata()).as_json()
    recorded: list[list[RecordedEvent]] = []
    texts: list[str] = []
    for a in appends:
        mine = []
        for version, event in enumerate(a.events, start=a.expected_version + 1):
            name, schema_version, data, text = dump(event)
            mine.append(
                RecordedEvent(0, a.stream, version, name, schema_version, data, meta, now, event)
            )
            texts.append(text)
        recorded.append(mine)
    expected = [(a.stream, a.expected_version) for a in appends if a.events]
    return Prepared(recorded, expected, texts)


def write_many(conn: Connection, prepared: Prepared) -> list[list[RecordedEvent]]:
    """Append prepared events, all in one statement, or raise `ConcurrencyError` (for the
    first stale stream) and write nothing. Returns them with their positions.

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
    return [[_at(r, positions[(r.stream, r.version)]) for r in mine] for mine in prepared.recorded]


def append_many(
    conn: Connection, appends: Sequence[StreamAppend], metadata: Metadata | None = None
) -> list[list[RecordedEvent]]:
    """Append each stream's events at its `expected_version + 1, + 2, …`, all in one
    statement, or raise `ConcurrencyError` (for the first stale stream) and write nothing.

    Returns the recorded events per entry of `appends`, in the same order. Must run inside
    a transaction; the caller commits. Each stream may appear once.
    """
    return write_many(conn, prepare_many(appends, metadata))


# `_at` names every field of a recorded event: checked here, so a field added to
# `RecordedEvent` cannot be dropped silently.
_RECORDED = (
    "position",
    "stream",
    "version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
    "source",
)
if tuple(f.name for f in dataclasses.fields(RecordedEvent)) != _RECORDED:  # pragma: no cover
    raise RuntimeError("events.bulk._at: update it to RecordedEvent's fields")


def _at(r: RecordedEvent, position: int) -> RecordedEvent:
    """`r` at `position` (what `dataclasses.replace` does, at a third of the cost)."""
    return RecordedEvent(
        position,
        r.stream,
        r.version,
        r.type,
        r.schema_version,
        r.data,
        r.metadata,
        r.recorded_at,
        r.source,
    )


def stream_versions(conn: Connection, streams: Sequence[str]) -> dict[str, int]:
    """Each stream's current version; a stream with no events is left out (version 0)."""
    t = events_table
    found: dict[str, int] = {}
    for chunk in chunks(streams):
        query = select(t.c.stream, func.max(t.c.version)).where(t.c.stream.in_(chunk))
        found.update((s, int(v)) for s, v in conn.execute(query.group_by(t.c.stream)))
    return found


def _insert(
    conn: Connection, rows: list[RecordedEvent], texts: list[str]
) -> dict[tuple[str, int], int]:
    """Insert the rows; returns each (stream, version)'s position."""
    # The column type's processing for this dialect (on SQLite: UTC text in a fixed form).
    column_type = events_table.c.recorded_at.type.dialect_impl(conn.dialect)
    at = column_type.bind_processor(conn.dialect)
    now, meta = rows[0].recorded_at, rows[0].metadata  # one of each for a prepared batch
    recorded_at = at(now) if at else now
    if conn.dialect.name == "postgresql":
        # One statement for all rows: arrays cost one round trip, where executemany would
        # send one INSERT (and fire the row-level work) per event. The arrays go in binary
        # (`%b`): as text, psycopg escapes every quote of every event's JSON with a regex.
        returned = conn.exec_driver_sql(
            "INSERT INTO events (stream, version, type, schema_version, data, metadata,"
            " recorded_at)"
            " SELECT s, v, t, sv, d::jsonb, %(meta)s::jsonb, %(at)s"
            " FROM unnest(%(s)b::text[], %(v)b::int[], %(t)b::text[], %(sv)b::int2[],"
            " %(d)b::text[]) AS u(s, v, t, sv, d)"
            " RETURNING position, stream, version",
            {
                "s": [r.stream for r in rows],
                "v": [r.version for r in rows],
                "t": [r.type for r in rows],
                "sv": [r.schema_version for r in rows],
                "d": texts,
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
        [
            (r.stream, r.version, r.type, r.schema_version, text, meta_json, recorded_at)
            for r, text in zip(rows, texts, strict=True)
        ],
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
