"""The event store: one append-only table, streams with versions, a global position.

- `append` checks the stream's expected version (optimistic concurrency) and writes the
  events with consecutive stream versions.
- `read_stream` returns one stream in order; `read_all` returns the whole log after a
  position, for projections and integrators; `read_raw` is `read_all` at a replay's speed.

Nothing here reads the clock: whoever appends hands in the time of recording (`now`).

On PostgreSQL sequence values commit out of order: a reader that has seen position 7 may
later find a position 6 that committed after it. `append` therefore takes an EXCLUSIVE lock
on the table (readers are not blocked) so that commit order equals position order and
`WHERE position > last_seen` never skips an event (DESIGN.md invariant 3). SQLite has one
writer at a time, which gives the same guarantee.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import TextClause

from events import pipeline
from events.catalog import Event, JSONObject
from events.decoding import event_of
from events.serialization import serializer
from events.sql import JSONDocument, UTCDateTime

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("stream", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("data", JSONDocument, nullable=False),
    Column("metadata", JSONDocument, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("stream", "version", name="uq_events_stream_version"),
)


class ConcurrencyError(Exception):
    """The stream moved on since it was read: reload, decide again and retry."""

    def __init__(self, stream: str, expected_version: int) -> None:
        super().__init__(f"stream {stream!r} is no longer at version {expected_version}")
        self.stream = stream
        self.expected_version = expected_version


@dataclass(frozen=True)
class Metadata:
    """Who and why: stored with every event, never personal data beyond ids."""

    actor: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    idempotency_key: str | None = None

    def as_json(self) -> JSONObject:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    stream: str
    version: int
    type: str
    schema_version: int
    data: JSONObject
    metadata: JSONObject
    recorded_at: datetime
    # The event itself when this process just appended it: no need to load it back.
    source: Event | None = field(default=None, compare=False, repr=False)

    def to_event(self) -> Event:
        """The event (`events.decoding`: the one this process appended, or decoded)."""
        return event_of(self)


_APPEND_LOCK = "LOCK TABLE events IN EXCLUSIVE MODE"


def lock_for_append(conn: Connection) -> None:
    """Take the append lock now (it is held until the transaction ends; taking it again is
    free). A writer that takes it before reading the state it decides on cannot be
    overtaken by another writer, so it never meets a `ConcurrencyError`."""
    if conn.dialect.name == "postgresql":
        # Commit order must equal position order, or catch-up readers skip late commits.
        # EXCLUSIVE blocks other appenders until we commit but lets readers through.
        conn.exec_driver_sql(_APPEND_LOCK)


def prepare(
    stream: str,
    new_events: Sequence[Event],
    expected_version: int,
    metadata: Metadata | None = None,
    *,
    now: datetime,
) -> list[RecordedEvent]:
    """The events as they will be recorded at `expected_version + 1, …`, serialised and
    recorded at `now`, but with no position yet (0): `write` gives them one."""
    meta = (metadata or Metadata()).as_json()
    prepared = []
    for offset, event in enumerate(new_events, start=1):
        name, schema_version, data = serializer.dump(event)
        prepared.append(
            RecordedEvent(
                0, stream, expected_version + offset, name, schema_version, data, meta, now, event
            )
        )
    return prepared


def write(
    conn: Connection,
    prepared: Sequence[RecordedEvent],
    *,
    read_in_transaction: bool = False,
    held: bool = False,
) -> list[RecordedEvent]:
    """Append prepared events (one stream, consecutive versions) or raise `ConcurrencyError`;
    the same rules as `append`, which is `write(conn, prepare(...))`. `held` (with
    `read_in_transaction`, on a connection that holds its writes): the INSERT waits for the
    commit's round trip and the events get their positions then (`_write_held`)."""
    if not prepared:
        return []
    stream, expected_version = prepared[0].stream, prepared[0].version - 1
    if held and read_in_transaction and pipeline.holding(conn):
        return _write_held(conn, prepared)
    lock_for_append(conn)
    if not read_in_transaction and stream_version(conn, stream) != expected_version:
        raise ConcurrencyError(stream, expected_version)
    rows = [_row_of(r) for r in prepared]
    try:
        positions = (
            conn.execute(
                insert(events_table).returning(
                    events_table.c.position, sort_by_parameter_order=True
                ),
                rows,
            )
            .scalars()
            .all()
        )
    except IntegrityError as error:  # a racing writer took the version first
        raise ConcurrencyError(stream, expected_version) from error
    return [replace(r, position=p) for p, r in zip(positions, prepared, strict=True)]


_INSERT_ONE = insert(events_table).returning(events_table.c.position)


def _row_of(r: RecordedEvent) -> dict[str, Any]:
    """The events table's row of a prepared event (its position comes from the INSERT)."""
    return {
        "stream": r.stream,
        "version": r.version,
        "type": r.type,
        "schema_version": r.schema_version,
        "data": r.data,
        "metadata": r.metadata,
        "recorded_at": r.recorded_at,
    }


def _write_held(conn: Connection, prepared: Sequence[RecordedEvent]) -> list[RecordedEvent]:
    """`write` when the connection holds its writes (`events.pipeline`): the append lock
    and one INSERT … RETURNING per event wait for the commit's round trip; the events are
    returned at once with position 0, which becomes theirs once the INSERTs have run (the
    inline projections that need it read it in SQL: `position_of`). A racing writer's
    version shows as an IntegrityError at the commit, which the service retries."""
    if conn.dialect.name == "postgresql":
        pipeline.write_sql(conn, _APPEND_LOCK)
    found: list[list[Any]] = []
    for r in prepared:
        rows: list[Any] = []
        found.append(rows)
        pipeline.write(conn, _INSERT_ONE, _row_of(r), rows)

    def positioned() -> None:
        for r, rows in zip(prepared, found, strict=True):
            # Frozen for everyone else: the position is set once, when it exists.
            object.__setattr__(r, "position", int(rows[0][0]))

    pipeline.then(conn, positioned)
    return list(prepared)


# The position of an event by its stream and version, for a statement that runs after the
# event's INSERT in the same transaction (a held write does not know the position yet).
position_of = (
    select(events_table.c.position)
    .where(
        events_table.c.stream == bindparam("event_stream"),
        events_table.c.version == bindparam("event_version"),
    )
    .scalar_subquery()
)


def append(
    conn: Connection,
    stream: str,
    new_events: Sequence[Event],
    expected_version: int,
    metadata: Metadata | None = None,
    *,
    now: datetime,
    read_in_transaction: bool = False,
) -> list[RecordedEvent]:
    """Append events at `expected_version + 1, + 2, …`, recorded at `now`, or raise
    `ConcurrencyError`.

    Must run inside a transaction; the caller commits. `expected_version` 0 means the
    stream must not exist yet. `read_in_transaction` says the caller read the stream up to
    `expected_version` in this transaction: the stream cannot be behind that, and if another
    writer moved it on since, the unique `(stream, version)` key refuses the first row — so
    the version check costs no extra query.
    """
    return write(
        conn,
        prepare(stream, new_events, expected_version, metadata, now=now),
        read_in_transaction=read_in_transaction,
    )


def _recorded(row: Any) -> RecordedEvent:
    return RecordedEvent(
        position=row.position,
        stream=row.stream,
        version=row.version,
        type=row.type,
        schema_version=row.schema_version,
        data=row.data,
        metadata=row.metadata,
        recorded_at=row.recorded_at,
    )


READ_STREAM = (
    select(events_table)
    .where(
        events_table.c.stream == bindparam("stream"),
        events_table.c.version > bindparam("after"),
    )
    .order_by(events_table.c.version)
)


def _past_first(column: Any) -> Any:
    """`column`, or NULL on the row at version `after + 1`."""
    later = events_table.c.version > bindparam("after") + literal_column("1", Integer)
    return case((later, column)).label(column.name)


# A stream's tail from the version a kept state last took in (`after + 1`) on: that row is
# read only to check that it is the very event the state took in (version, position, time of
# recording: `booking.service.PremisesRepository`), so its data and metadata come as NULL,
# not to be decoded for nothing. The rows after it are whole, as `READ_STREAM` reads them.
READ_TAIL = (
    select(*(_past_first(c) if c.name in ("data", "metadata") else c for c in events_table.columns))
    .where(
        events_table.c.stream == bindparam("stream"),
        events_table.c.version > bindparam("after"),
    )
    .order_by(events_table.c.version)
)


def read_stream(conn: Connection, stream: str, after_version: int = 0) -> list[RecordedEvent]:
    rows = conn.execute(READ_STREAM, {"stream": stream, "after": after_version})
    return [_recorded(row) for row in rows]


def read_all(
    conn: Connection,
    after_position: int = 0,
    limit: int = 1000,
    types: Iterable[str] | None = None,
) -> list[RecordedEvent]:
    query = select(events_table).where(events_table.c.position > after_position)
    if types is not None:
        query = query.where(events_table.c.type.in_(list(types)))
    rows = conn.execute(query.order_by(events_table.c.position).limit(limit))
    return [_recorded(row) for row in rows]


_RAW = text(
    "SELECT position, stream, version, type, schema_version, data, recorded_at FROM events "
    "WHERE position > :after AND type IN :types ORDER BY position LIMIT :limit"
).bindparams(bindparam("types", expanding=True))


def read_raw(
    conn: Connection,
    after: int,
    limit: int,
    types: list[str],
    *,
    until: int | None = None,
    unless: str = "",
) -> list[RecordedEvent]:
    """`read_all` of these types without the column types' per-value processing and without
    metadata (left empty), for replays that never read it: on a rebuild that processing
    costs as much as the projections' own work. Same rows, same order. `until`: no position
    after it; `unless`: a condition (SQL over `events`) of rows left out."""
    statement = _RAW if until is None and not unless else _raw_within(until is not None, unless)
    params: dict[str, Any] = {"after": after, "types": types, "limit": limit}
    if until is not None:
        params["until"] = until
    rows = conn.execute(statement, params).all()
    if conn.dialect.name != "sqlite":  # psycopg hands out dicts and aware datetimes
        return [RecordedEvent(p, s, v, t, sv, d, {}, r) for p, s, v, t, sv, d, r in rows]
    loads, parse = json.loads, datetime.fromisoformat
    return [
        RecordedEvent(p, s, v, t, sv, loads(d), {}, parse(r).replace(tzinfo=UTC))
        for p, s, v, t, sv, d, r in rows
    ]


@lru_cache(maxsize=16)
def _raw_within(until: bool, unless: str) -> TextClause:
    """`_RAW` with an upper bound and rows left out (`read_raw`)."""
    where = " AND position <= :until" if until else ""
    where += f" AND NOT ({unless})" if unless else ""
    return text(
        "SELECT position, stream, version, type, schema_version, data, recorded_at FROM events "
        f"WHERE position > :after AND type IN :types{where} ORDER BY position LIMIT :limit"
    ).bindparams(bindparam("types", expanding=True))


def head_position(conn: Connection) -> int:
    return int(
        conn.execute(select(func.coalesce(func.max(events_table.c.position), 0))).scalar_one()
    )


def stream_version(conn: Connection, stream: str) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.max(events_table.c.version), 0)).where(
                events_table.c.stream == stream
            )
        ).scalar_one()
    )
