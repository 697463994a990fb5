"""A rebuild of the inline projections replays the log in batches (`Projection.replay`):
new rows wait in memory and changes to them are made there, changes to rows of earlier
batches go to the database. Whatever the batch size, the result equals the live tables, on
both databases. Also the pieces the replay rests on: the fast event decoding and the
SQLite instant text."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.dialects import sqlite

from booking.clock import system_clock
from events.decoding import decode
from events.serialization import serializer
from events.sql import UTCDateTime, read_transaction, sqlite_instant, write_transaction
from events.store import read_all
from projections import batching, rebuilding, runner, shadowing
from projections.batching import insert_rows, upsert_replacing
from projections.feed_entries import calendars_table, entries_table
from projections.usage import projection as usage
from tests.conftest import HELSINKI, Api, future_weekday, local

HELSINKI_HOURS = {
    d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def inline_contents(api: Api) -> dict[str, Any]:
    with read_transaction(api.engine) as conn:
        return {p.name: rebuilding.contents(conn, p) for p in runner.INLINE}


def a_mixed_history(api: Api) -> None:
    """Bookings placed, approved, rejected and cancelled soon after or much later, on
    premises with and without a buffer; closures, pop-ups and premises updates between."""
    api.premises("plain")
    api.premises("buffered", rules={"buffer_minutes": 30})
    api.premises("approval", rules={"requires_approval": True})
    api.premises(
        "popups",
        rules={"popup_allowed": True, "popup_max_duration_minutes": 180, "buffer_minutes": 0},
    )
    day = future_weekday(2)
    ids: dict[str, list[str]] = {"plain": [], "buffered": [], "approval": []}
    for n in range(5):
        for premises in ids:
            # Out of time order, so a later booking's start comes before earlier ones.
            hour = 8 + ((n * 5) % 12)
            placed = api.book(premises, local(day, hour), local(day, hour + 1), public=n % 2 == 0)
            assert placed.status_code == 201, placed.get_json()
            ids[premises].append(placed.get_json()["id"])
        if n == 1:
            first = ids["approval"][0]
            assert api.post(f"/api/v1/bookings/{first}/approve", role="staff").status_code == 200
            cancelled = api.post(
                f"/api/v1/bookings/{ids['plain'][1]}/cancel", {"reason": "este"}, role="booker"
            )
            assert cancelled.status_code == 200, cancelled.get_json()
        if n == 2:
            closure = {
                "start": local(day + timedelta(days=1), 8).isoformat(),
                "end": local(day + timedelta(days=1), 12).isoformat(),
                "reason": "Remontti",
            }
            closed = api.post("/api/v1/premises/buffered/closures", closure, role="staff")
            assert closed.status_code in (200, 201), closed.get_json()
            renamed = api.patch(
                "/api/v1/premises/plain", {"name": {"fi": "Uusi nimi"}}, role="staff"
            )
            assert renamed.status_code == 200, renamed.get_json()
    for booking in ids["approval"][1:3]:
        assert api.post(f"/api/v1/bookings/{booking}/approve", role="staff").status_code == 200
    rejected = api.post(
        f"/api/v1/bookings/{ids['approval'][3]}/reject", {"reason": "varattu"}, role="staff"
    )
    assert rejected.status_code == 200, rejected.get_json()
    for premises in ("plain", "buffered", "approval"):
        cancelled = api.post(
            f"/api/v1/bookings/{ids[premises][0]}/cancel", {"reason": "r"}, role="booker"
        )
        assert cancelled.status_code == 200, cancelled.get_json()
    buffer = api.patch("/api/v1/premises/buffered", {"rules": {"buffer_minutes": 45}}, role="staff")
    assert buffer.status_code == 200, buffer.get_json()
    # Tomorrow from noon on: inside the pop-up window and the opening hours (08–22).
    start = local(datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=1), 12)
    requests = []
    for n in range(3):
        body = {
            "premises_id": "popups",
            "start": (start + timedelta(hours=2 * n)).isoformat(),
            "end": (start + timedelta(hours=2 * n + 1)).isoformat(),
            "title": "Kirpputori",
            "description": "Tervetuloa",
            "expected_attendees": 10,
        }
        asked = api.post("/api/v1/popup-requests", body, role="resident")
        assert asked.status_code == 201, asked.get_json()
        requests.append(asked.get_json()["id"])
    assert (
        api.post(f"/api/v1/popup-requests/{requests[0]}/approve", role="staff").status_code == 200
    )
    rejected = api.post(
        f"/api/v1/popup-requests/{requests[1]}/reject", {"reason": "ei"}, role="staff"
    )
    assert rejected.status_code == 200, rejected.get_json()


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 20_000])
def test_a_rebuild_of_the_inline_projections_equals_the_live_tables(
    api: Api, batch_size: int
) -> None:
    a_mixed_history(api)
    live = inline_contents(api)
    assert len(live["bookings"]["booking_list"]) == 16  # 15, and an approved pop-up's
    assert len(live["feed_entries"]["feed_entries"]) == 17  # and a closure
    assert len(live["popups"]["popup_requests"]) == 3
    rebuilding.rebuild(api.engine, runner.INLINE, batch_size=batch_size, clock=system_clock)
    rebuilt = inline_contents(api)
    for name, tables in live.items():
        for table, rows in tables.items():
            got = rebuilt[name][table]
            assert got == rows, (table, set(got) - set(rows), set(rows) - set(got))


def test_fast_decoding_gives_the_events_the_serializer_gives(api: Api) -> None:
    a_mixed_history(api)
    with read_transaction(api.engine) as conn:
        recorded = read_all(conn, 0, 10_000)
    assert len({r.type for r in recorded}) >= 10
    for r in recorded:
        expected = serializer.load(r.type, r.schema_version, r.data)
        assert decode(r.type, r.schema_version, r.data) == expected, r.type


def test_an_old_schema_version_goes_through_its_upcaster() -> None:
    data = {
        "premises_id": "p",
        "booking_id": "b",
        "organisation_id": None,
        "booked_by": "u",
        "start": "2026-03-29T00:30:00+00:00",
        "end": "2026-03-29T01:30:00+02:00",
        "title": "t",
        "attendee_count": 4,
        "public": False,
        "notes": "",
        "status": "confirmed",
        "placed_at": "2026-03-01T00:00:00Z",
        "series_id": None,
    }
    event = decode("BookingPlaced", 1, data)
    assert event.attendees == 4  # type: ignore[attr-defined]
    assert event.end == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # type: ignore[attr-defined]


def test_the_sqlite_instant_text_is_what_sqlalchemy_stores() -> None:
    # SQLAlchemy's own way: `UTCDateTime`'s conversion, then SQLite DATETIME's text.
    dialect = sqlite.dialect()
    stored = sqlite.DATETIME().bind_processor(dialect)
    assert stored is not None

    def process(value: datetime) -> str:
        return str(stored(UTCDateTime().process_bind_param(value, dialect)))

    for value in (
        datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC),
        datetime(2026, 10, 25, 3, 30, 0, 120, tzinfo=timezone(timedelta(hours=3))),
        datetime(5, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    ):
        assert sqlite_instant(value) == process(value)
    with pytest.raises(ValueError):
        sqlite_instant(datetime(2026, 1, 1))  # naive: refused, as UTCDateTime does


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a SQLite setting
def test_a_rebuild_restores_the_page_cache_of_its_connection(api: Api) -> None:
    a_mixed_history(api)
    with api.engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    rebuilding.rebuild(api.engine, runner.INLINE, clock=system_clock)
    with api.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before
        assert conn.execute(select(1)).scalar() == 1


@pytest.mark.parametrize("count", [3, 250])  # PostgreSQL: VALUES, then unnest of arrays
def test_many_row_writes_store_what_sqlalchemy_reads_back(api: Api, count: int) -> None:
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    entries = [
        {
            "ref_id": f"ref-{n}",
            "kind": "booking",
            "premises_id": "lib",
            "organisation_id": None if n % 2 else f"org-{n}",
            "booked_by": "user",
            "uid": f"uid-{n}",
            "sequence": n,
            "status": "confirmed",
            "start": at + timedelta(hours=n),
            "end": at + timedelta(hours=n, minutes=90),
            "title": "Kerho",
            "public": n % 3 == 0,
            "attendees": None if n % 5 == 0 else n,
            "created_at": at,
            "last_modified": at.astimezone(timezone(timedelta(hours=3))),
            "position": 10**12 + n,
        }
        for n in range(count)
    ]
    calendars = [
        {"scope": "premises", "key": f"p-{n}", "name": {"fi": f"Tila {n}"}, "address": None}
        | {"position": n, "changed_at": at}
        for n in range(count)
    ]
    later = at + timedelta(days=1)
    moved = [
        {"scope": "premises", "key": f"p-{n}", "position": n + 1, "changed_at": later}
        for n in range(count)
    ]
    with write_transaction(api.engine) as conn:
        conn.execute(delete(entries_table))
        conn.execute(delete(calendars_table))
        insert_rows(conn, entries_table, entries)
        upsert_replacing(conn, calendars_table, ("scope", "key"), calendars)
        upsert_replacing(conn, calendars_table, ("scope", "key"), moved)  # every key again
    with read_transaction(api.engine) as conn:
        stored = [dict(r) for r in conn.execute(select(entries_table)).mappings()]
        kept = [dict(r) for r in conn.execute(select(calendars_table)).mappings()]
    assert sorted(stored, key=lambda r: r["sequence"]) == entries
    expected = [c | {"position": c["position"] + 1, "changed_at": later} for c in calendars]
    assert sorted(kept, key=lambda r: r["position"]) == expected


def _indexes(api: Api) -> set[tuple[str, str]]:
    """(table, index definition) of every index of the tables a rebuild drops indexes of."""
    tables = ("booking_list", "feed_entries")
    with read_transaction(api.engine) as conn:
        if conn.dialect.name == "sqlite":
            query = "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index'"
        else:
            query = "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        return {(t, str(sql)) for t, sql in conn.exec_driver_sql(query) if t in tables}


def test_a_rebuild_builds_the_indexes_it_dropped_again(api: Api) -> None:
    a_mixed_history(api)
    before = _indexes(api)
    assert len(before) >= 6  # three secondary indexes on bookings, two on entries, keys
    rebuilding.rebuild(api.engine, runner.ALL, batch_size=5, clock=system_clock)
    assert _indexes(api) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # DDL only on SQLite
def test_a_failed_rebuild_leaves_the_indexes_and_rows(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_mixed_history(api)
    before, rows = _indexes(api), inline_contents(api)

    def broken(*args: Any) -> None:
        raise RuntimeError("a projection bug")

    monkeypatch.setattr(runner.Usage, "flush", broken)
    with pytest.raises(RuntimeError):
        rebuilding.rebuild(api.engine, runner.ALL, clock=system_clock)
    assert _indexes(api) == before
    assert inline_contents(api) == rows


def test_an_upsert_of_many_rows_in_parts_writes_them_all(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "_UNNEST_ROWS", 7)  # PostgreSQL: 250 rows in 36 statements
    at = datetime(2026, 3, 29, tzinfo=UTC)
    rows = [
        {"scope": "premises", "key": f"p-{n}", "name": None, "address": f"Katu {n}"}
        | {"position": n, "changed_at": at}
        for n in range(250)
    ]
    with write_transaction(api.engine) as conn:
        conn.execute(delete(calendars_table))
        upsert_replacing(conn, calendars_table, ("scope", "key"), rows)
        upsert_replacing(conn, calendars_table, ("scope", "key"), rows[:100])  # again: replaced
    with read_transaction(api.engine) as conn:
        stored = [dict(r) for r in conn.execute(select(calendars_table)).mappings()]
    assert sorted(stored, key=lambda r: r["position"]) == rows


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_usage_tables_written_mid_rebuild_are_analyzed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage writes what it holds whenever it holds HELD_ROWS rows, then reads rows back by
    key from its fresh tables. The server planned those reads while the tables were empty;
    without statistics it kept scanning them (minutes per million events), so the tables
    are analyzed after each such write: after the swap they have statistics (reltuples is
    -1 for a table never analyzed)."""
    a_mixed_history(api)
    monkeypatch.setattr(usage, "HELD_ROWS", 1)
    # One pass: usage holds its rows (`hold`).
    rebuilding.rebuild(api.engine, runner.ALL, clock=system_clock)
    with read_transaction(api.engine) as conn:
        found = dict(
            conn.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class"
                    " WHERE relname IN ('usage_bookings', 'usage_cells') AND relkind = 'r'"
                )
            ).all()
        )
    assert set(found) == {"usage_bookings", "usage_cells"}
    assert all(tuples >= 0 for tuples in found.values()), found


# --- a rebuild of the inline projections while bookings go on ------------------------------


def _schema(api: Api) -> set[tuple[str, str]]:
    """Every index and constraint of the inline projections' tables, by name and definition."""
    tables = [t.name for p in runner.INLINE for t in p.tables]
    with read_transaction(api.engine) as conn:
        if conn.dialect.name == "sqlite":
            marks = ", ".join("?" for _ in tables)
            rows = conn.exec_driver_sql(
                "SELECT name, coalesce(sql, tbl_name) FROM sqlite_master "
                f"WHERE type = 'index' AND tbl_name IN ({marks})",
                tuple(tables),
            ).all()
        else:
            rows = conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid::regclass::text = ANY(%(t)s) UNION ALL "
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = ANY(%(t)s)",
                {"t": tables},
            ).all()
    return {(str(name), str(sql)) for name, sql in rows}


def test_bookings_go_on_during_a_rebuild_and_the_swapped_in_tables_equal_the_log(
    api: Api,
) -> None:
    """Three clients book, clash and cancel on two premises that share a hall's floor
    while the inline projections are rebuilt in small batches. Every request is answered
    (201, 409 or 200, never a 5xx) during the replay too; the swapped-in tables, with the
    bookings made after the swap, equal a rebuild from scratch; the exclusion constraint
    and the indexes are there as before; no two active bookings on one space overlap."""
    from tests.integration.test_concurrency import overlapping_pairs

    a_mixed_history(api)
    api.premises("hall", spaces=["hall-a", "hall-b"], rules={"buffer_minutes": 15})
    api.premises("hall-a", spaces=["hall-a"])
    token = api.token("booker")
    schema = _schema(api)
    assert any("no_overlap" in name for name, _ in schema) == (
        api.engine.dialect.name == "postgresql"
    )
    day = future_weekday(3, weeks_ahead=3)
    rebuilding_now = threading.Event()
    stop = threading.Event()
    answers: list[tuple[int, bool]] = []  # (status, while the rebuild ran)

    def book(n: int) -> None:
        client = api.app.test_client()
        rng = random.Random(n)
        headers = {"Authorization": f"Bearer {token}"}
        after_stop = 0
        while after_stop < 3:
            if stop.is_set():
                after_stop += 1
            start = local(day + timedelta(days=rng.randrange(20)), rng.randrange(8, 20))
            body = {
                "premises_id": rng.choice(("hall", "hall-a")),
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=rng.choice((60, 90)))).isoformat(),
                "title": "Kerho",
                "attendees": 3,
            }
            during = rebuilding_now.is_set()
            placed = client.post("/api/v1/bookings", json=body, headers=headers)
            answers.append((placed.status_code, during))
            if placed.status_code == 201 and rng.random() < 0.3:
                booking = placed.get_json()["id"]
                cancelled = client.post(
                    f"/api/v1/bookings/{booking}/cancel", json={"reason": "r"}, headers=headers
                )
                answers.append((cancelled.status_code, during))

    def slowly(count: int) -> None:
        time.sleep(0.01)  # batches of two: the rebuild lasts long enough to meet the clients

    swaps: list[float] = []
    threads = [threading.Thread(target=book, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        rebuilding_now.set()
        shadowing.rebuild_inline(
            api.engine, runner.INLINE, batch_size=2, progress=slowly, on_swap=swaps.append
        )
        rebuilding_now.clear()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert len(swaps) == 1
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 201, 409}, statuses
    assert sum(1 for status, during in answers if during and status == 201) >= 3, answers
    live = inline_contents(api)
    assert len(live["bookings"]["booking_list"]) > 16  # the clients' bookings are there
    rebuilding.rebuild(api.engine, runner.INLINE, clock=system_clock)  # from scratch, quietly
    rebuilt = inline_contents(api)
    for name, tables in live.items():
        for table, rows in tables.items():
            got = rebuilt[name][table]
            assert got == rows, (table, set(got) - set(rows), set(rows) - set(got))
    assert _schema(api) == schema
    assert overlapping_pairs(api.engine) == []


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_swap_that_meets_a_held_table_tries_again(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction holding a live table makes a swap attempt run out of its lock timeout
    (a booking behind the swap waits at most that long); the swap rolls back, catches up and
    tries again until the table is free."""
    a_mixed_history(api)
    live = inline_contents(api)
    with api.engine.connect() as holder:
        holder.begin()
        holder.exec_driver_sql("LOCK TABLE booking_list IN ACCESS SHARE MODE")
        refused = threading.Event()

        class Refusals(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "swap attempt 2 " in record.getMessage():
                    refused.set()

        def release() -> None:
            refused.wait(30)
            holder.rollback()

        releaser = threading.Thread(target=release)
        releaser.start()
        handler = Refusals()
        logging.getLogger("projections.shadowing").addHandler(handler)
        try:
            with caplog.at_level(logging.INFO, logger="projections.shadowing"):
                shadowing.rebuild_inline(api.engine, runner.INLINE, swap_lock_timeout_ms=50)
        finally:
            logging.getLogger("projections.shadowing").removeHandler(handler)
            refused.set()
            releaser.join()
    assert "swap attempt 1 " in caplog.text
    assert "swap attempt 2 " in caplog.text
    assert inline_contents(api) == live
    with read_transaction(api.engine) as conn:
        schemas = conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars().all()
    assert shadowing.SHADOW_SCHEMA not in schemas


def test_a_parallel_rebuild_of_every_projection_equals_the_live_tables(api: Api) -> None:
    """The asynchronous projections in a process of their own, beside the inline ones."""
    a_mixed_history(api)
    runner.catch_up(api.engine, clock=system_clock)

    def everything() -> dict[str, Any]:
        with read_transaction(api.engine) as conn:
            return {p.name: rebuilding.contents(conn, p) for p in runner.ALL}

    live = everything()
    assert live["usage"] and any(live["registry"].values())
    count = rebuilding.rebuild(api.engine, runner.ALL, clock=system_clock, parallel=True)
    assert count > 0
    assert everything() == live


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's one writer
def test_a_writer_waiting_during_an_asynchronous_rebuild_gets_in_between_its_batches(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch of an asynchronous rebuild holds SQLite's one writer's lock. Back to back,
    they left no gap a waiting writer's busy handler (sleeping between its tries) could
    find: a booking waited for the whole replay. The writer here starts waiting in the
    second of many slow batches and must be in before the replay's last batch."""
    a_mixed_history(api)
    held_longer = usage.Usage.apply_batch

    def slow_batch(self: Any, conn: Any, batch: Any) -> None:
        held_longer(self, conn, batch)
        time.sleep(0.03)  # inside the batch's write transaction

    monkeypatch.setattr(usage.Usage, "apply_batch", slow_batch)
    batches: list[int] = []
    waiting, written = threading.Event(), threading.Event()
    in_at: list[int] = []

    def progress(count: int) -> None:
        batches.append(count)
        if len(batches) == 1:
            waiting.set()

    def writer() -> None:
        waiting.wait(30)
        with write_transaction(api.engine) as conn:
            conn.exec_driver_sql("CREATE TABLE probe (n INTEGER)")
        in_at.append(len(batches))
        written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        rebuilding.rebuild_asynchronous(
            api.engine,
            runner.by_name(["usage"]),
            batch_size=2,
            progress=progress,
            clock=system_clock,
        )
    finally:
        thread.join(60)
    assert written.is_set()
    assert len(batches) > 8, batches  # many batches: the writer had many chances
    assert in_at[0] < len(batches) - 1, (in_at, len(batches))
