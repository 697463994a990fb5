"""The event store on both databases: appends, reads, optimistic concurrency, metadata, the
append-only guard in the database itself (DESIGN.md invariant 1), serialisation of every
event type and the upcaster for old stored shapes."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, cast, func, insert, literal, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from events.catalog import ALL_EVENTS, BookingPlaced, ClosureAdded, Event, PremisesRetired
from events.serialization import UnreadableEvent, serializer
from events.sql import UTCDateTime, make_engine, read_transaction, write_transaction
from events.store import (
    ConcurrencyError,
    Metadata,
    append,
    events_table,
    head_position,
    read_all,
    read_stream,
    stream_version,
)
from tests.conftest import Api, future_weekday, local

HELSINKI = ZoneInfo("Europe/Helsinki")
# A summer instant with microseconds: the offset and the precision must both survive.
WHEN = datetime(2027, 6, 14, 18, 30, 15, 123456, tzinfo=HELSINKI)


def _sample(annotation: Any, name: str, index: int) -> Any:
    if isinstance(annotation, typing.types.UnionType) or typing.get_origin(annotation) is (
        typing.Union
    ):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation) or annotation
    if origin is str:
        return f"{name}-ä-{index}"  # non-ASCII on purpose: JSON must keep it
    if origin is bool:
        return index % 2 == 0
    if origin is int:
        return 7 + index
    if origin is datetime:
        return WHEN + timedelta(hours=index)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return [_sample(item, name, index), _sample(item, name, index + 1)]
    if origin is dict:
        return {"fi": "Kokoushuone", "nested": {"n": index, "list": [1, "kaksi"]}}
    raise TypeError(f"teach _sample about {annotation!r}")


def sample_event(event_type: type[Event], optionals_none: bool = False) -> Event:
    """An instance of `event_type` with every field filled (or optional ones None)."""
    hints = typing.get_type_hints(event_type)
    values = {}
    for index, field in enumerate(dataclasses.fields(event_type)):
        annotation = hints[field.name]
        optional = type(None) in typing.get_args(annotation)
        values[field.name] = (
            None if optionals_none and optional else _sample(annotation, field.name, index)
        )
    return event_type(**values)


def retired(n: int) -> PremisesRetired:
    return PremisesRetired(premises_id=f"p{n}", reason=f"reason {n}")


def count_events(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


# --- append and read ----------------------------------------------------------------------


def test_append_and_read_stream_in_version_order(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        first = append(conn, "premises-a", [retired(1), retired(2)], 0, now=datetime.now(UTC))
        other = append(conn, "premises-b", [retired(3)], 0, now=datetime.now(UTC))
        more = append(conn, "premises-a", [retired(4)], 2, now=datetime.now(UTC))
    assert [r.version for r in first + more] == [1, 2, 3]
    assert other[0].version == 1
    with read_transaction(engine) as conn:
        stream = read_stream(conn, "premises-a")
        assert [r.version for r in stream] == [1, 2, 3]
        assert [r.to_event() for r in stream] == [retired(1), retired(2), retired(4)]
        assert [r.version for r in read_stream(conn, "premises-a", after_version=2)] == [3]
        assert read_stream(conn, "nobody") == []
        assert stream_version(conn, "premises-a") == 3
        assert stream_version(conn, "nobody") == 0
        # Positions are global and grow in append order across streams.
        positions = [r.position for r in first + other + more]
        assert positions == sorted(positions) and len(set(positions)) == 4
        assert head_position(conn) == positions[-1]


def test_read_all_pages_by_position_and_filters_types(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        for n in range(5):
            append(conn, f"premises-{n}", [retired(n)], 0, now=datetime.now(UTC))
        closure = ClosureAdded("p9", "c1", WHEN, WHEN + timedelta(hours=1), "remont")
        append(conn, "premises-9", [closure], 0, now=datetime.now(UTC))
    with read_transaction(engine) as conn:
        everything = read_all(conn)
        assert len(everything) == 6
        first_page = read_all(conn, after_position=0, limit=2)
        assert first_page == everything[:2]
        rest = read_all(conn, after_position=first_page[-1].position, limit=100)
        assert rest == everything[2:]
        assert read_all(conn, after_position=everything[-1].position) == []
        only_closures = read_all(conn, types=["ClosureAdded"])
        assert [r.to_event() for r in only_closures] == [closure]


def test_empty_append_writes_nothing(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        assert append(conn, "premises-a", [], 0, now=datetime.now(UTC)) == []
    assert count_events(engine) == 0


def test_stale_expected_version_raises_and_writes_nothing(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [retired(1)], 0, now=datetime.now(UTC))
    for stale in (0, 2, 5):  # behind, ahead, far ahead
        # Even a caller that swallows the error and commits must not have written anything.
        with write_transaction(engine) as conn:
            with pytest.raises(ConcurrencyError) as raised:
                append(conn, "premises-a", [retired(2), retired(3)], stale, now=datetime.now(UTC))
            assert raised.value.stream == "premises-a"
            assert raised.value.expected_version == stale
    assert count_events(engine) == 1
    with read_transaction(engine) as conn:
        assert [r.to_event() for r in read_stream(conn, "premises-a")] == [retired(1)]


def test_a_writer_that_read_the_stream_is_refused_by_the_unique_key_when_overtaken(
    engine: Engine,
) -> None:
    """`read_in_transaction` skips the version query; the database's key still refuses the
    writer that decided on version 1 after another one appended version 2."""
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [retired(1), retired(2)], 0, now=datetime.now(UTC))
    with pytest.raises(ConcurrencyError) as raised, write_transaction(engine) as conn:
        append(
            conn,
            "premises-a",
            [retired(3), retired(4)],
            1,
            read_in_transaction=True,
            now=datetime.now(UTC),
        )
    assert raised.value.expected_version == 1
    with read_transaction(engine) as conn:
        assert [r.to_event() for r in read_stream(conn, "premises-a")] == [retired(1), retired(2)]


def test_unique_stream_version_in_the_database(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        (recorded,) = append(conn, "premises-a", [retired(1)], 0, now=datetime.now(UTC))
    row = {
        "stream": "premises-a",
        "version": 1,
        "type": recorded.type,
        "schema_version": 1,
        "data": recorded.data,
        "metadata": {},
        "recorded_at": datetime.now(UTC),
    }
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        conn.execute(insert(events_table).values(**row))
    assert count_events(engine) == 1


def test_metadata_and_recorded_at_are_stored(engine: Engine) -> None:
    before = datetime.now(UTC)
    meta = Metadata(
        actor="user-1", correlation_id="req-42", causation_id="evt-7", idempotency_key="key-9"
    )
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [retired(1)], 0, meta, now=datetime.now(UTC))
        append(conn, "premises-b", [retired(2)], 0, now=datetime.now(UTC))
    after = datetime.now(UTC)
    with read_transaction(engine) as conn:
        with_meta, without = read_all(conn)
        raw = conn.execute(select(events_table.c.recorded_at)).scalars().first()
    assert with_meta.metadata == {
        "actor": "user-1",
        "correlation_id": "req-42",
        "causation_id": "evt-7",
        "idempotency_key": "key-9",
    }
    assert without.metadata == {}
    for recorded in (with_meta, without):
        assert recorded.recorded_at.tzinfo is UTC
        assert before - timedelta(seconds=1) <= recorded.recorded_at <= after
    assert raw is not None and raw.utcoffset() == timedelta(0)


def test_http_write_stores_actor_correlation_and_idempotency_key(api: Api) -> None:
    api.premises("room")
    me = api.get("/api/v1/users/me", role="booker").get_json()
    day = future_weekday(1)
    body = {
        "premises_id": "room",
        "start": local(day, 10).isoformat(),
        "end": local(day, 11).isoformat(),
        "title": "Kerhoilta",
        "attendees": 5,
    }
    headers = {"X-Request-Id": "corr-123", "Idempotency-Key": "idem-456"}
    response = api.post("/api/v1/bookings", body, role="booker", headers=headers)
    assert response.status_code == 201, response.get_json()
    with read_transaction(api.engine) as conn:
        (placed,) = read_all(conn, types=["BookingPlaced"])
    assert placed.metadata["actor"] == me["id"]
    assert placed.metadata["correlation_id"] == "corr-123"
    assert placed.metadata["idempotency_key"] == "idem-456"


# --- the database refuses to change the log (invariant 1) -----------------------------------


def _snapshot(engine: Engine) -> list[Any]:
    with read_transaction(engine) as conn:
        return [tuple(r) for r in conn.execute(select(events_table).order_by("position"))]


def test_raw_update_and_delete_are_refused(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [retired(1), retired(2)], 0, now=datetime.now(UTC))
    before = _snapshot(engine)
    statements = [
        "UPDATE events SET type = 'Forged'",
        "UPDATE events SET data = data WHERE position = 1",
        "DELETE FROM events",
        "DELETE FROM events WHERE position = 1",
    ]
    if engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE
        statements.append("TRUNCATE events")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), write_transaction(engine) as conn:
            conn.execute(text(statement))
        assert _snapshot(engine) == before, statement


def test_overwriting_inserts_are_refused(engine: Engine) -> None:
    """INSERT OR REPLACE (SQLite) deletes the row it collides with, an upsert updates it:
    both are a rewrite of history and must hit the triggers too."""
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [retired(1)], 0, now=datetime.now(UTC))
    before = _snapshot(engine)
    columns = "(position, stream, version, type, schema_version, data, metadata, recorded_at)"
    values = "(1, 'premises-a', 1, 'PremisesRetired', 1, '{\"forged\": 1}', '{}', '2026-01-01')"
    statements = [
        f"INSERT INTO events {columns} VALUES {values} ON CONFLICT (position) "
        "DO UPDATE SET data = excluded.data"
    ]
    if engine.dialect.name == "sqlite":
        statements += [
            f"INSERT OR REPLACE INTO events {columns} VALUES {values}",
            f"REPLACE INTO events {columns} VALUES {values}",
        ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), write_transaction(engine) as conn:
            conn.execute(text(statement))
        assert _snapshot(engine) == before, statement


# --- serialisation --------------------------------------------------------------------------


@pytest.mark.parametrize("optionals_none", [False, True], ids=["filled", "optionals-none"])
@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_every_event_type_round_trips(event_type: type[Event], optionals_none: bool) -> None:
    event = sample_event(event_type, optionals_none)
    name, schema_version, data = serializer.dump(event)
    assert (name, schema_version) == (event_type.__name__, event_type.schema_version)
    loaded = serializer.load(name, schema_version, data)
    assert loaded == event
    for field in dataclasses.fields(loaded):
        value = getattr(loaded, field.name)
        if isinstance(value, datetime):
            assert value.tzinfo is UTC, field.name  # the log speaks UTC


def test_every_event_type_round_trips_through_the_database(engine: Engine) -> None:
    originals = [sample_event(t) for t in ALL_EVENTS]
    with write_transaction(engine) as conn:
        append(conn, "everything", originals, 0, now=datetime.now(UTC))
    with read_transaction(engine) as conn:
        stored = read_stream(conn, "everything")
    assert [r.type for r in stored] == [t.__name__ for t in ALL_EVENTS]
    assert [r.to_event() for r in stored] == originals


def test_events_that_could_not_be_read_back_never_reach_the_log(engine: Engine) -> None:
    naive = ClosureAdded("p", "c", datetime(2027, 1, 1, 10), datetime(2027, 1, 1, 11), "x")
    with pytest.raises(UnreadableEvent, match="naive"), write_transaction(engine) as conn:
        append(conn, "premises-p", [naive], 0, now=datetime.now(UTC))
    missing = PremisesRetired(premises_id=None, reason="x")  # type: ignore[arg-type]
    with pytest.raises(UnreadableEvent), write_transaction(engine) as conn:
        append(conn, "premises-p", [missing], 0, now=datetime.now(UTC))
    assert count_events(engine) == 0


def test_stored_v1_booking_placed_reads_as_v2(engine: Engine) -> None:
    v1 = {
        "premises_id": "room",
        "booking_id": "b-1",
        "organisation_id": None,
        "booked_by": "u-1",
        "start": "2027-03-02T16:00:00+00:00",
        "end": "2027-03-02T18:00:00+00:00",
        "title": "Shakkikerho",
        "attendee_count": 11,
        "public": True,
        "notes": "",
        "status": "confirmed",
        "placed_at": "2027-02-01T09:00:00+00:00",
        "series_id": None,
    }
    with write_transaction(engine) as conn:
        conn.execute(
            insert(events_table).values(
                stream="premises-room",
                version=1,
                type="BookingPlaced",
                schema_version=1,
                data=v1,
                metadata={},
                recorded_at=datetime.now(UTC),
            )
        )
    with read_transaction(engine) as conn:
        (recorded,) = read_stream(conn, "premises-room")
    assert recorded.schema_version == 1  # the stored row is untouched
    event = recorded.to_event()
    assert isinstance(event, BookingPlaced)
    assert event.attendees == 11
    assert event.start == datetime(2027, 3, 2, 16, tzinfo=UTC)
    # Written again today it is a version 2 event with the new field name.
    name, version, data = serializer.dump(event)
    assert (name, version) == ("BookingPlaced", 2)
    assert data["attendees"] == 11 and "attendee_count" not in data


@pytest.mark.postgres
def test_sessions_speak_utc_whatever_the_servers_zone(postgres_url: str) -> None:
    """make_engine puts each PostgreSQL session in UTC, so instants come back with
    datetime.UTC itself (which UTCDateTime passes through) even when the database's own
    default zone is Helsinki's."""
    name = make_url(postgres_url).database
    setup = make_engine(postgres_url)
    with setup.connect() as conn:
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone = 'Europe/Helsinki'"))
        conn.commit()
    setup.dispose()
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
            summer = datetime(2027, 7, 1, 9, 30, tzinfo=ZoneInfo("Europe/Helsinki"))
            value = conn.execute(select(cast(literal(summer), UTCDateTime()))).scalar_one()
        assert value == summer and value.tzinfo is UTC
    finally:
        engine.dispose()
