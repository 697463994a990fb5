"""Concurrency, for real: many threads and processes against one database.

- Invariant 3: on PostgreSQL a catch-up reader polling `read_all(after=last_seen)` never skips
  an event, because appends take a table lock and so commit in position order. A control
  experiment shows that plain sequence inserts do lose events.
- Invariant 2: racing bookings of one slot give exactly one 201 and 409 for everyone else;
  racing overlapping slots never leave two active bookings overlapping (buffer included); the
  inline projections equal a rebuild from the log afterwards.
- Invariant 4: one Idempotency-Key sent by several threads at once gives one booking and the
  same response for all.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from booking.app import create_app
from booking.clock import system_clock
from events.catalog import PremisesRetired
from events.sql import make_engine, read_transaction, write_transaction
from events.store import append, events_table, read_all
from projections import rebuilding, runner
from projections.availability import busy_table
from projections.bookings import bookings_table
from tests.conftest import Api, future_weekday, local

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def make_app(engine: Engine, instance: Path) -> Flask:
    return create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": str(engine.url),
            "SECRET_KEY": "tests",
            "BOOKING_TIMEZONE": "Europe/Helsinki",
            "BOOKING_INSTANCE_PATH": str(instance),
            "BOOKING_RUN_SCHEDULER": False,
            "TESTING": True,
        }
    )


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; results in thread order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as error:  # kept, so the test reports it rather than hangs
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def booking_body(premises_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "premises_id": premises_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "title": "Kerhoilta",
        "attendees": 5,
    }


def post_booking(
    app: Flask, token: str, body: dict[str, Any], **headers: str
) -> tuple[int, str, Any]:
    response = app.test_client().post(
        "/api/v1/bookings", json=body, headers={"Authorization": f"Bearer {token}", **headers}
    )
    return response.status_code, response.mimetype, response.get_json()


def projected_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with read_transaction(engine) as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(select(table)))
            for table in (busy_table, bookings_table)
        }


def assert_projections_equal_rebuild(engine: Engine) -> None:
    live = projected_rows(engine)
    rebuilding.rebuild(engine, runner.INLINE, clock=system_clock)
    assert projected_rows(engine) == live


OVERLAPS_SQL = {
    # Pairs of active bookings of one premises closer than its buffer: must be none.
    "postgresql": """
        SELECT a.id, b.id FROM booking_list a
        JOIN booking_list b ON a.premises_id = b.premises_id AND a.id < b.id
        JOIN availability_buffers f ON f.premises_id = a.premises_id
        WHERE a.status IN ('confirmed', 'pending_approval')
          AND b.status IN ('confirmed', 'pending_approval')
          AND a.start < b."end" + make_interval(mins => f.buffer_minutes)
          AND b.start < a."end" + make_interval(mins => f.buffer_minutes)
    """,
    # Whole minutes on SQLite, so that a gap of exactly the buffer is not a float accident.
    "sqlite": """
        SELECT a.id, b.id FROM booking_list a
        JOIN booking_list b ON a.premises_id = b.premises_id AND a.id < b.id
        JOIN availability_buffers f ON f.premises_id = a.premises_id
        WHERE a.status IN ('confirmed', 'pending_approval')
          AND b.status IN ('confirmed', 'pending_approval')
          AND round((julianday(b."end") - julianday(a.start)) * 1440) + f.buffer_minutes > 0
          AND round((julianday(a."end") - julianday(b.start)) * 1440) + f.buffer_minutes > 0
    """,
}


def overlapping_pairs(engine: Engine) -> list[Any]:
    with read_transaction(engine) as conn:
        return list(conn.execute(text(OVERLAPS_SQL[engine.dialect.name])).all())


# --- invariant 3: a catch-up reader never skips a committed event (PostgreSQL) -------------
# A sequence hands out positions when rows are inserted, not when they commit: a transaction
# holding position 6 may commit after one holding 7, and a reader that already moved past 7
# never asks for 6 again. The append lock makes insert-to-commit one at a time, so positions
# become visible in order. SQLite has a single writer, which gives the same order for free.


def _raw_insert(conn: Any, stream: str) -> int:
    """An event row straight through the sequence, without the store's append lock."""
    return int(
        conn.execute(
            text(
                "INSERT INTO events (stream, version, type, schema_version, data, metadata, "
                "recorded_at) VALUES (:s, 1, 'PremisesRetired', 1, "
                """'{"premises_id": "p", "reason": "r"}', '{}', now()) RETURNING position"""
            ),
            {"s": stream},
        ).scalar_one()
    )


def _positions(engine: Engine, after: int = 0) -> list[int]:
    with read_transaction(engine) as conn:
        return [r.position for r in read_all(conn, after)]


@pytest.mark.postgres
def test_control_plain_sequence_inserts_do_lose_events(postgres_url: str) -> None:
    """Why the lock exists: the earlier sequence value commits last, behind the reader."""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as slow, engine.connect() as fast:
            slow_tx = slow.begin()
            early = _raw_insert(slow, "slow")
            with fast.begin():
                late = _raw_insert(fast, "fast")
            assert early < late
            seen = _positions(engine)
            assert seen == [late]  # the reader moves its checkpoint past `early` …
            slow_tx.commit()
        assert _positions(engine, after=seen[-1]) == []  # … and never sees it
        assert _positions(engine) == [early, late]  # although it is in the log
    finally:
        engine.dispose()


def _wait_for_lock_waiter(engine: Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE events%'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the second appender never waited for the append lock")


@pytest.mark.postgres
def test_second_append_waits_for_the_first_to_commit(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as first:
            first_tx = first.begin()
            (one,) = append(
                first, "premises-a", [PremisesRetired("a", "first")], 0, now=datetime.now(UTC)
            )
            second: list[Any] = []

            def append_second() -> None:
                with write_transaction(engine) as conn:
                    second.extend(
                        append(
                            conn,
                            "premises-b",
                            [PremisesRetired("b", "2nd")],
                            0,
                            now=datetime.now(UTC),
                        )
                    )

            thread = threading.Thread(target=append_second)
            thread.start()
            _wait_for_lock_waiter(engine)
            # Readers are not blocked by the lock, and see nothing uncommitted.
            assert _positions(engine) == []
            assert thread.is_alive() and second == []
            first_tx.commit()
        thread.join(timeout=10)
        (two,) = second
        # The second took its position after the first committed: position order is commit
        # order, so a reader that saw `two` had already been able to see `one`.
        assert one.position < two.position
        assert _positions(engine) == [one.position, two.position]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_polling_reader_collects_every_event_exactly_once(postgres_url: str) -> None:
    engine = make_engine(postgres_url, pool_size=12)
    writers, appends_each = 8, 25
    done = threading.Event()
    collected: list[int] = []

    def write(n: int) -> int:
        rng = random.Random(n)
        for version in range(appends_each):
            with write_transaction(engine) as conn:
                append(
                    conn,
                    f"premises-{n}",
                    [PremisesRetired(str(n), str(version))],
                    version,
                    now=datetime.now(UTC),
                )
                time.sleep(rng.uniform(0, 0.003))  # commit late, while others queue
        return n

    def read() -> None:
        last_seen = 0
        while True:
            finished = done.is_set()  # read once more after the writers are done
            with read_transaction(engine) as conn:
                batch = read_all(conn, after_position=last_seen, limit=7)
            collected.extend(r.position for r in batch)
            if batch:
                last_seen = batch[-1].position
            elif finished:
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        results = in_threads(writers, write)
        assert results == list(range(writers))
    finally:
        done.set()
        reader.join(timeout=30)
    with read_transaction(engine) as conn:
        everything = conn.execute(select(events_table.c.position).order_by("position"))
        committed = list(everything.scalars())
    engine.dispose()
    assert len(committed) == writers * appends_each
    assert collected == committed  # every event, once, in order: nothing skipped


# --- invariant 2: one slot, many bookers ----------------------------------------------------


def test_threads_racing_for_one_slot_one_wins(api: Api) -> None:
    api.premises("room")
    token = api.token("booker")
    day = future_weekday(2)
    body = booking_body("room", local(day, 10), local(day, 12))
    before = projected_rows(api.engine)
    results = in_threads(50, lambda i: post_booking(api.app, token, body))
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {201: 1, 409: 49}, results
    assert all(kind == "application/problem+json" for status, kind, _ in results if status == 409)
    winner = next(body for status, _, body in results if status == 201)
    rows = projected_rows(api.engine)
    assert len(rows["booking_list"]) == len(before["booking_list"]) + 1
    assert [r[1] for r in rows["availability_busy"]] == [winner["id"]]
    assert_projections_equal_rebuild(api.engine)


def test_threads_racing_cancellations_and_bookings_never_overlap(api: Api) -> None:
    """Cancellations with their writes held for the commit (issue 18) racing each other and
    the bookings of the time they free: each booking is cancelled once (200, the others 409,
    every answer what reading the booking gives), a booking of freed time wins only where
    nothing active is left (buffer included), and the projections equal a rebuild."""
    api.premises("room", rules={"buffer_minutes": 15})
    token = api.token("booker")
    headers = {"Authorization": f"Bearer {token}"}
    day = future_weekday(2)
    hours = range(8, 14)
    ids = []
    for hour in hours:
        start = local(day, hour)
        status, _, body = post_booking(
            api.app, token, booking_body("room", start, start + timedelta(minutes=45))
        )
        assert status == 201, body
        ids.append(body["id"])

    def work(i: int) -> tuple[str, int, Any]:
        n = (i // 2) % len(ids)
        client = api.app.test_client()
        if i % 2 == 0:
            answer = client.post(
                f"/api/v1/bookings/{ids[n]}/cancel", json={"reason": "Ei tarvita"}, headers=headers
            )
            return ids[n], answer.status_code, answer.get_json()
        start = local(day, hours[n]) + timedelta(minutes=15)
        status, _, body = post_booking(
            api.app, token, booking_body("room", start, start + timedelta(minutes=30))
        )
        return "booking", status, body

    results = in_threads(6 * len(ids), work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    for booking_id in ids:
        mine = [(status, body) for who, status, body in results if who == booking_id]
        assert Counter(status for status, _ in mine) == {200: 1, 409: 2}, mine
        ((_, answer),) = [(s, b) for s, b in mine if s == 200]
        read = api.app.test_client().get(f"/api/v1/bookings/{booking_id}", headers=headers)
        assert answer == read.get_json()
        assert (answer["status"], answer["version"]) == ("cancelled", 2)
    placed = Counter(status for who, status, _ in results if who == "booking")
    assert set(placed) <= {201, 409} and placed[201] <= len(ids), placed
    assert overlapping_pairs(api.engine) == []
    with read_transaction(api.engine) as conn:
        assert len(read_all(conn, types=["BookingCancelled"])) == len(ids)
    assert_projections_equal_rebuild(api.engine)


def _process_racer(
    url: str,
    instance: str,
    token: str,
    rounds: list[list[dict[str, Any]]],
    ready: Any,
    go: list[Any],
    results: Any,
) -> None:
    """One process of a race: its own engine, app and premises cache; one thread per body,
    round after round when the parent says go."""
    engine = make_engine(url, pool_size=max(len(r) for r in rounds), max_overflow=0)
    app = make_app(engine, Path(instance))
    ready.put(True)
    for number, bodies in enumerate(rounds):
        go[number].wait(timeout=60)
        found = in_threads(
            len(bodies), lambda i, bodies=bodies: post_booking(app, token, bodies[i])[:2]
        )
        results.put([f if isinstance(f, tuple) else ("error", repr(f)) for f in found])
    engine.dispose()


@pytest.mark.postgres
def test_processes_racing_for_one_premises(postgres_url: str, tmp_path: Path) -> None:
    """Round 1: 50 attempts at one slot from 5 processes — one wins. Round 2: 60 bookings of
    different slots of the same premises at once — all win, none gives up with 503."""
    engine = make_engine(postgres_url)
    app = make_app(engine, tmp_path)
    api = Api(app, app.test_client())
    api.premises("hall", opening_hours={d: [["00:00", "24:00"]] for d in WEEKDAYS})
    contested = booking_body("hall", local(future_weekday(3), 17), local(future_weekday(3), 19))
    first_free = local(future_weekday(4), 0)
    processes, racers, distinct = 5, 10, 12
    # Fork, not spawn: a spawned child re-imports everything (seconds each on a busy CI box).
    # Each child makes its own engine; the parent's pool is emptied first so that no
    # connection is shared across the fork.
    engine.dispose()
    context = multiprocessing.get_context("fork")
    ready, results = context.Queue(), context.Queue()
    go = [context.Event(), context.Event()]
    workers = []
    for p in range(processes):
        mine = [first_free + timedelta(minutes=30 * (p * distinct + i)) for i in range(distinct)]
        rounds = [
            [contested] * racers,
            [booking_body("hall", start, start + timedelta(minutes=30)) for start in mine],
        ]
        args = (postgres_url, str(tmp_path), api.token("booker"), rounds, ready, go, results)
        workers.append(context.Process(target=_process_racer, args=args))
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        found = []
        for event in go:
            event.set()
            found.append([item for _ in workers for item in results.get(timeout=60)])
    finally:
        for worker in workers:
            worker.join(timeout=30)
    contest, spread = (Counter(status for status, _ in r) for r in found)
    assert contest == {201: 1, 409: processes * racers - 1}, found[0]
    assert spread == {201: processes * distinct}, found[1]
    with read_transaction(engine) as conn:
        placed = read_all(conn, types=["BookingPlaced"])
    assert len(placed) == 1 + processes * distinct
    assert overlapping_pairs(engine) == []
    assert_projections_equal_rebuild(engine)
    engine.dispose()


# --- invariant 2: overlapping slots with buffers --------------------------------------------


def test_racing_overlapping_slots_never_overlap(api: Api) -> None:
    api.premises("gym", rules={"buffer_minutes": 15})
    token = api.token("booker")
    day = future_weekday(4)
    rng = random.Random(2026)
    bodies = []
    for _ in range(40):
        start = local(day, 8) + timedelta(minutes=15 * rng.randrange(0, 40))
        length = timedelta(minutes=rng.choice((30, 45, 60, 90)))
        bodies.append(booking_body("gym", start, start + length))
    results = in_threads(len(bodies), lambda i: post_booking(api.app, token, bodies[i]))
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, results
    assert statuses[201] >= 2  # the day has room for several: a real race, not a queue
    assert overlapping_pairs(api.engine) == []
    # The winners really are the bookings in the log, no more and no fewer.
    with read_transaction(api.engine) as conn:
        placed = {r.data["booking_id"] for r in read_all(conn, types=["BookingPlaced"])}
    assert placed == {body["id"] for status, _, body in results if status == 201}
    assert_projections_equal_rebuild(api.engine)

    # The check is only worth something if it finds an overlap that is there: forge a row
    # that starts inside a winner's buffer.
    with write_transaction(api.engine) as conn:
        row = conn.execute(select(bookings_table).order_by(bookings_table.c.start)).first()
        assert row is not None
        start = row.end + timedelta(minutes=10)
        forged = {
            **row._mapping,
            "id": "zz-forged",
            "start": start,
            "end": start + timedelta(minutes=30),
        }
        conn.execute(bookings_table.insert().values(**forged))
    pairs = overlapping_pairs(api.engine)
    assert (row.id, "zz-forged") in pairs
    assert all("zz-forged" in pair for pair in pairs)


@pytest.mark.postgres
def test_exclusion_constraint_refuses_an_overlapping_busy_row(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with read_transaction(engine) as conn:
            kind = conn.execute(
                text("SELECT contype FROM pg_constraint WHERE conname = :n"),
                {"n": "availability_busy_no_overlap"},
            ).scalar()
        assert kind == "x"  # an exclusion constraint
        start = datetime(2027, 3, 2, 10, tzinfo=UTC)
        row = {
            "premises_id": "hall",
            "space_id": "hall-floor",
            "space_key": 9001,  # the constraint compares keys: one per space id
            "kind": "booking",
            "start": start,
            "end": start + timedelta(hours=1),
            "blocked_until": start + timedelta(hours=1, minutes=15),
            "title": None,
            "public": False,
        }
        with write_transaction(engine) as conn:
            conn.execute(busy_table.insert().values(ref_id="first", **row))
            # Meeting at the end of the buffer is allowed: ranges are half-open.
            later = start + timedelta(hours=1, minutes=15)
            conn.execute(
                busy_table.insert().values(
                    **{
                        **row,
                        "ref_id": "adjacent",
                        "start": later,
                        "end": later + timedelta(hours=1),
                        "blocked_until": later + timedelta(hours=1),
                    }
                )
            )
        refused = pytest.raises(IntegrityError, match="availability_busy_no_overlap")
        with refused, write_transaction(engine) as conn:
            overlap = start + timedelta(hours=1, minutes=5)  # inside the first's buffer
            conn.execute(
                busy_table.insert().values(
                    **{
                        **row,
                        "ref_id": "second",
                        "start": overlap,
                        "end": overlap + timedelta(minutes=5),
                        "blocked_until": overlap + timedelta(minutes=5),
                    }
                )
            )
        # Another premises sharing the space may not (a hall's half and the whole)…
        sharing = pytest.raises(IntegrityError, match="availability_busy_no_overlap")
        with sharing, write_transaction(engine) as conn:
            conn.execute(busy_table.insert().values(**{**row, "premises_id": "x", "ref_id": "x"}))
        # …but any premises may use the same time on another space.
        with write_transaction(engine) as conn:
            other = {**row, "premises_id": "x", "ref_id": "x", "space_id": "x-floor"}
            other["space_key"] = 9002
            conn.execute(busy_table.insert().values(**other))
    finally:
        engine.dispose()


# --- invariant 4: one Idempotency-Key, many senders -----------------------------------------


def test_same_idempotency_key_at_once_gives_one_booking(api: Api) -> None:
    api.premises("room")
    token = api.token("booker")
    day = future_weekday(5)
    body = booking_body("room", local(day, 14), local(day, 15))

    def send(i: int) -> tuple[int, Any, dict[str, str]]:
        response = api.app.test_client().post(
            "/api/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key-1"},
        )
        kept = {k: v for k, v in response.headers.items() if k in ("ETag", "Location")}
        return response.status_code, response.get_json(), kept

    results = in_threads(10, send)
    assert all(result == results[0] for result in results), results
    assert results[0][0] == 201
    with read_transaction(api.engine) as conn:
        placed = read_all(conn, types=["BookingPlaced"])
        rows = conn.execute(select(bookings_table.c.id)).scalars().all()
    assert [r.data["booking_id"] for r in placed] == [results[0][1]["id"]]
    assert rows == [results[0][1]["id"]]
