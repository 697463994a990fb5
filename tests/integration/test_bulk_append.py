"""`events.bulk.append_many` on both databases: the rules of `events.store.append` per stream
(expected version, consecutive versions, nothing written on refusal), the same stored JSON
as the serializer's, and the append lock on PostgreSQL."""

from __future__ import annotations

import json
import threading
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError

from booking.outbox import Mail, enqueue, outbox
from events.bulk import (
    StreamAppend,
    append_many,
    prepare_many,
    stream_versions,
    write_many,
)
from events.catalog import ALL_EVENTS, Event, PopupExpired, PremisesRetired
from events.serialization import UnreadableEvent, serializer
from events.sql import (
    SQLITE_ROWS_PER_INSERT,
    ByDialect,
    make_engine,
    one_of,
    one_of_chunks,
    read_transaction,
    write_transaction,
)
from events.store import (
    ConcurrencyError,
    Metadata,
    RecordedEvent,
    append,
    events_table,
    lock_for_append,
    read_all,
    read_stream,
)
from tests.integration.test_store import count_events, sample_event

WHEN = datetime(2027, 10, 31, 1, 30, 15, 123456, tzinfo=UTC)


def expired(premises: str, n: int, at: datetime = WHEN) -> PopupExpired:
    return PopupExpired(premises_id=premises, request_id=f"req-ä-{premises}-{n}", expired_at=at)


def test_appends_to_many_streams_at_their_next_versions(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [PremisesRetired("a", "old")], 0, now=datetime.now(UTC))
    batches = [
        StreamAppend("premises-a", [expired("a", 1), expired("a", 2)], 1),
        StreamAppend("premises-empty", [], 0),
        StreamAppend("premises-b", [expired("b", 1)], 0),
    ]
    with write_transaction(engine) as conn:
        recorded = append_many(conn, batches, Metadata(actor="scheduler"), now=datetime.now(UTC))
    assert [[(r.stream, r.version) for r in rs] for rs in recorded] == [
        [("premises-a", 2), ("premises-a", 3)],
        [],
        [("premises-b", 1)],
    ]
    with read_transaction(engine) as conn:
        stored = read_all(conn)
        assert [r.to_event() for r in read_stream(conn, "premises-a", 1)] == list(batches[0].events)
        assert stream_versions(conn, ["premises-a", "premises-b", "premises-c"]) == {
            "premises-a": 3,
            "premises-b": 1,
        }
    # What the caller got back is what the log holds, position for position.
    assert [r for rs in recorded for r in rs] == stored[1:]
    assert {r.metadata["actor"] for r in stored[1:]} == {"scheduler"}


def test_recorded_at_is_stored_as_append_stores_it(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, "one", [expired("a", 1)], 0, now=datetime.now(UTC))
        append_many(conn, [StreamAppend("many", [expired("b", 1)], 0)], now=datetime.now(UTC))
    with read_transaction(engine) as conn:
        raw = dict(conn.exec_driver_sql("SELECT stream, recorded_at FROM events").all())
    # SQLite compares the stored text: both must have the same fixed form.
    assert {str(at)[10] for at in raw.values()} == {" "}
    assert {type(at) for at in raw.values()} == {type(raw["one"])}


def test_stored_json_is_the_serializers_for_every_event_type(engine: Engine) -> None:
    events: list[Event] = [sample_event(t) for t in ALL_EVENTS]
    events += [sample_event(t, optionals_none=True) for t in ALL_EVENTS]
    # Many of one shape (the template path) and one of another instant.
    events += [expired("x", n) for n in range(5)] + [expired("x", 9, WHEN + timedelta(hours=1))]
    # What a text array would have to escape (PostgreSQL's arrays go in binary).
    events += [PopupExpired(premises_id='"}\\,{', request_id="ä\n\t'NULL'", expired_at=WHEN)]
    with write_transaction(engine) as conn:
        append_many(conn, [StreamAppend("mixed", events, 0)], now=datetime.now(UTC))
    with read_transaction(engine) as conn:
        stored = read_stream(conn, "mixed")
    assert [(r.type, r.schema_version, r.data) for r in stored] == [
        serializer.dump(e) for e in events
    ]
    assert [r.to_event() for r in stored] == events


def test_prepared_events_carry_the_serializers_data_and_json() -> None:
    odd = PopupExpired(premises_id="a", request_id=7, expired_at=WHEN)  # type: ignore[arg-type]
    quoted = PopupExpired(premises_id='"}\\', request_id="\x00ä\n", expired_at=WHEN)
    helsinki = expired("a", 4, WHEN.astimezone(ZoneInfo("Europe/Helsinki")))  # == WHEN
    events = [expired("a", 1), expired("b", 2), odd, quoted, helsinki, expired("a", 3, WHEN)]
    prepared = prepare_many([StreamAppend("s", events, 0)], now=datetime.now(UTC))
    (recorded,) = prepared.recorded
    for event, r, written in zip(events, recorded, prepared.texts, strict=True):
        assert (r.type, r.schema_version, r.data) == serializer.dump(event)
        assert written == json.dumps(r.data)
    # Every value plain: serialised field by field over all the events (`dump_texts`), and
    # each recorded event built from its fields' values (`_recorded`) as its class builds it.
    plain = [expired("a", 1), helsinki, expired("b", 2)]
    now = datetime.now(UTC)
    prepared = prepare_many([StreamAppend("s", plain, 4)], Metadata(actor="x"), now=now)
    written_texts = zip(plain, *prepared.recorded, prepared.texts, strict=True)
    for n, (event, r, written) in enumerate(written_texts):
        name, version, data = serializer.dump(event)
        assert r == RecordedEvent(0, "s", 5 + n, name, version, data, {"actor": "x"}, now, event)
        assert list(vars(r)) == [f.name for f in fields(RecordedEvent)] and r.source is event
        assert list(r.data.items()) == list(data.items()) and written == json.dumps(data)
    naive = PopupExpired(premises_id="a", request_id="r", expired_at=WHEN.replace(tzinfo=None))
    with pytest.raises(UnreadableEvent):
        prepare_many([StreamAppend("s", [naive], 0)], now=datetime.now(UTC))


def test_a_stale_stream_refuses_the_whole_batch_and_writes_nothing(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, "premises-a", [PremisesRetired("a", "old")], 0, now=datetime.now(UTC))
    for stale in (0, 2):  # behind, ahead
        with write_transaction(engine) as conn:
            with pytest.raises(ConcurrencyError) as raised:
                append_many(
                    conn,
                    [
                        StreamAppend("premises-b", [expired("b", 1)], 0),
                        StreamAppend("premises-a", [expired("a", 1)], stale),
                    ],
                    now=datetime.now(UTC),
                )
            assert (raised.value.stream, raised.value.expected_version) == ("premises-a", stale)
    assert count_events(engine) == 1


def test_prepared_events_are_refused_when_the_stream_moved_before_the_write(
    engine: Engine,
) -> None:
    prepared = prepare_many(
        [StreamAppend("premises-a", [expired("a", 1)], 0)], now=datetime.now(UTC)
    )
    assert [(r.position, r.stream, r.version) for r in prepared.recorded[0]] == [
        (0, "premises-a", 1)
    ]
    with write_transaction(engine) as conn:  # another writer gets there between the two
        append(conn, "premises-a", [PremisesRetired("a", "old")], 0, now=datetime.now(UTC))
    with write_transaction(engine) as conn, pytest.raises(ConcurrencyError):
        write_many(conn, prepared)
    assert count_events(engine) == 1


def test_a_stream_named_twice_is_refused(engine: Engine) -> None:
    with write_transaction(engine) as conn, pytest.raises(ValueError):
        append_many(
            conn,
            [StreamAppend("s", [expired("s", 1)], 0), StreamAppend("s", [expired("s", 2)], 1)],
            now=datetime.now(UTC),
        )
    assert count_events(engine) == 0


@pytest.mark.postgres
def test_the_append_lock_is_held_until_commit(postgres_url: str) -> None:
    """Another appender cannot take the lock while a batch is uncommitted, so positions
    still commit in order (DESIGN.md invariant 3)."""
    engine = make_engine(postgres_url)  # a migrated database of its own
    try:
        refused: list[BaseException] = []
        appended = threading.Event()
        checked = threading.Event()

        def other_writer() -> None:
            appended.wait()
            try:
                with write_transaction(engine) as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    lock_for_append(conn)
            except OperationalError as error:
                refused.append(error)
            finally:
                checked.set()

        thread = threading.Thread(target=other_writer)
        thread.start()
        with write_transaction(engine) as conn:
            append_many(
                conn, [StreamAppend("premises-a", [expired("a", 1)], 0)], now=datetime.now(UTC)
            )
            appended.set()
            checked.wait()
        thread.join()
        assert len(refused) == 1 and "lock timeout" in str(refused[0])
        with write_transaction(engine) as conn:  # released at commit
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            lock_for_append(conn)
    finally:
        engine.dispose()


def test_one_of_matches_exactly_the_listed_values(engine: Engine) -> None:
    streams = ["a", "b'", 'c"}', "d,e", "f"]
    with write_transaction(engine) as conn:
        append_many(
            conn, [StreamAppend(s, [expired(s, 1)], 0) for s in streams], now=datetime.now(UTC)
        )
    t = events_table
    query = ByDialect(lambda dialect: select(t.c.stream).where(one_of(t.c.stream, "s", dialect)))
    with read_transaction(engine) as conn:
        wanted = ["b'", 'c"}', "d,e", "missing"]
        found = [
            s
            for chunk in one_of_chunks(wanted)
            for s in conn.execute(query[conn], {"s": chunk}).scalars()
        ]
        assert sorted(found) == sorted(["b'", 'c"}', "d,e"])
        assert conn.execute(query[conn], {"s": []}).all() == []


def test_more_events_than_one_insert_takes_keep_their_order_and_positions(
    engine: Engine,
) -> None:
    # On SQLite the rows go as INSERTs of runs of rows (`events.sql.in_runs`): the log holds
    # them in the order given, positions without a gap, across the runs' seams.
    many = SQLITE_ROWS_PER_INSERT + 7
    batches = [
        StreamAppend("premises-a", [expired("a", n) for n in range(many)], 0),
        StreamAppend("premises-b", [expired("b", n) for n in range(3)], 0),
    ]
    with write_transaction(engine, held=True) as conn:
        recorded = append_many(conn, batches, now=WHEN)
    with read_transaction(engine) as conn:
        stored = read_all(conn)
    assert [r for rs in recorded for r in rs] == stored
    assert [r.to_event() for r in stored] == [e for b in batches for e in b.events]
    assert [r.position for r in stored] == list(range(1, many + 4))


def test_unpositioned_records_are_the_prepared_ones_and_the_rows_the_same(
    engine: Engine,
) -> None:
    appends = [StreamAppend("premises-a", [expired("a", 1), expired("a", 2)], 0)]
    prepared = prepare_many(appends, Metadata(actor="scheduler"), now=WHEN)
    with write_transaction(engine) as conn:
        unpositioned = write_many(conn, prepared, positioned=False)
    assert unpositioned is prepared.recorded
    with read_transaction(engine) as conn:
        stored = read_all(conn)
    assert [replace(r, position=0) for r in stored] == unpositioned[0]


def test_many_mails_go_in_runs_and_a_known_dedupe_key_is_skipped(engine: Engine) -> None:
    def mail(n: int) -> Mail:
        return Mail(f"key-{n}", "someone", "fi", f"Aihe {n}", f"Viesti {n}: äö")

    count = SQLITE_ROWS_PER_INSERT * 2 + 3
    with write_transaction(engine) as conn:
        enqueue(conn, [mail(5)._replace(subject="first")], WHEN)
    with write_transaction(engine, held=True) as conn:
        enqueue(conn, [mail(n) for n in range(count)], WHEN)
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(outbox.c.dedupe_key, outbox.c.subject, outbox.c.body).order_by(outbox.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [("key-5", "first", "Viesti 5: äö")] + [
        (f"key-{n}", f"Aihe {n}", f"Viesti {n}: äö") for n in range(count) if n != 5
    ]
