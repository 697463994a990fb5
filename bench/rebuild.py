"""Rebuilding every projection from a generated log, beside two ways of merely reading it.

`python -m bench.rebuild [--quick] [--events N] [--parts] [--floor | --floor-only]
[--databases sqlite,postgresql]`

The log (default 1,000,000 events: 200 organisations, 300 users, 80 premises and five years
of bookings with approvals, rejections and cancellations, in the shapes the commands write)
is inserted straight into the events table. Then, on the same database:

- baseline 1: a plain SQLAlchemy SELECT of all rows with their JSON decoded: the physical
  limit of reading this log (target: rebuild ≥ 0.3 of it);
- baseline 2: the eventsourcing library's notification log (`select_notifications`) over a
  copy of the same events in its own table, JSON-decoded (target: rebuild faster);
- the rebuild of every projection (`projections.rebuilding.rebuild(ALL)`): one pass over the
  log in one transaction, the inline projections replayed in place and the asynchronous
  ones into fresh tables swapped in at the end; with `--parts` also the inline ones alone
  and each asynchronous one alone (its batch-by-batch rebuild beside a live runner);
- with `--floor`, a set-based SQL floor for the two read models every booking needs at
  once, `booking_list` and `availability_busy`: INSERT … SELECT straight from `events` into
  fresh copies of the tables, the approvals, rejections and cancellations applied set-based,
  the same indexes built afterwards, no Python per row (checked against COUNT queries);
  `--floor-only` times it beside the baselines without the rebuild.

The baselines run before and after the rebuilds and their means are compared. Rates are
given by wall-clock time and by this process's CPU time.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Engine, Index, MetaData, Table, func, insert, select, text
from sqlalchemy.engine import Connection

from bench import common
from booking.clock import system_clock
from events import catalog as c
from events.serialization import serializer
from events.sql import make_engine, read_transaction, write_transaction
from events.store import events_table
from projections import rebuilding, runner
from projections.availability import busy_table
from projections.bookings import bookings_table
from projections.set_replay import SQL

HELSINKI = ZoneInfo("Europe/Helsinki")
FIRST_DAY = date(2022, 1, 3)
SLOTS = (8, 10, 12, 14, 16, 18)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def generate(rng: random.Random, total: int) -> Iterator[tuple[str, c.Event]]:
    """(stream, event) for a plausible history of `total` events, consistent per premises."""
    orgs = []
    for n in range(200):
        org = str(uuid.UUID(int=rng.getrandbits(128)))
        kind = rng.choice(("association", "association", "association", "company", "other"))
        orgs.append(org)
        yield f"organisation-{org}", c.OrganisationRegistered(org, f"Yhdistys {n}", kind, None)
    users = []
    for n in range(300):
        user = str(uuid.UUID(int=rng.getrandbits(128)))
        org = orgs[n % len(orgs)]
        users.append((user, org))
        yield f"user-{user}", c.UserRegistered(user, "booker", org, "fi")
    premises = []
    for n in range(80):
        pid = f"tila-{n:02d}"
        approval = n % 10 == 0
        premises.append((pid, approval))
        yield (
            f"premises-{pid}",
            c.PremisesRegistered(
                premises_id=pid,
                name={"fi": f"Tila {n}", "en": f"Room {n}"},
                description={"fi": "Kokoustila"},
                address=f"Katu {n}, 50100 Mikkeli",
                district=("keskusta", "tuppurala", "urpola", "rantakylä")[n % 4],
                capacity=rng.choice((8, 12, 20, 40, 120)),
                free_of_charge=n % 3 != 0,
                hourly_price_cents=None if n % 3 else 1500,
                free_use_conditions={"fi": "Yhdistyksille maksuton"},
                accessibility=["step_free_access"],
                equipment=["projector"],
                timezone="Europe/Helsinki",
                opening_hours={d: [["08:00", "20:00"]] for d in WEEKDAYS},
                rules={"requires_approval": approval, "min_notice_minutes": 0},
            ),
        )
    count = 200 + 300 + 80
    day = FIRST_DAY
    while True:
        for pid, approval in premises:
            for hour in SLOTS:
                if rng.random() > 0.8:
                    continue
                start = datetime.combine(day, clock(hour), tzinfo=HELSINKI).astimezone(UTC)
                end = start + timedelta(hours=rng.choice((1, 1.5, 2)))
                placed_at = start - timedelta(hours=rng.uniform(1, 1500))
                user, org = rng.choice(users)
                booking = str(uuid.UUID(int=rng.getrandbits(128)))
                stream = f"premises-{pid}"
                yield (
                    stream,
                    c.BookingPlaced(
                        premises_id=pid,
                        booking_id=booking,
                        organisation_id=org,
                        booked_by=user,
                        start=start,
                        end=end,
                        title="Kerhoilta",
                        attendees=rng.randint(1, 8),
                        public=False,
                        notes="",
                        status="pending_approval" if approval else "confirmed",
                        placed_at=placed_at,
                        series_id=None,
                    ),
                )
                count += 1
                decided = placed_at + timedelta(hours=1)
                if approval and rng.random() < 0.1:
                    yield stream, c.BookingRejected(pid, booking, "staff", "varattu", decided)
                    count += 1
                elif approval:
                    yield stream, c.BookingApproved(pid, booking, "staff", decided)
                    count += 1
                if rng.random() < 0.12:
                    late = rng.random() < 0.25
                    at = start - timedelta(hours=2 if late else 72)
                    yield stream, c.BookingCancelled(pid, booking, user, "este", late, at)
                    count += 1
                if count >= total:
                    return
        day += timedelta(days=1)


def load_log(engine: Engine, total: int, seed: int = 2026) -> int:
    """Insert a generated log of `total` events; returns how many were written."""
    versions: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    written = 0
    recorded_at = datetime(2026, 11, 1, tzinfo=UTC)
    with write_transaction(engine) as conn:
        for stream, event in generate(random.Random(seed), total):
            versions[stream] = versions.get(stream, 0) + 1
            name, schema_version, data = serializer.dump(event)
            rows.append(
                {
                    "stream": stream,
                    "version": versions[stream],
                    "type": name,
                    "schema_version": schema_version,
                    "data": data,
                    "metadata": {},
                    "recorded_at": recorded_at,
                }
            )
            if len(rows) == 10_000:
                conn.execute(insert(events_table), rows)
                written += len(rows)
                rows = []
        if rows:
            conn.execute(insert(events_table), rows)
            written += len(rows)
    return written


def read_plain(engine: Engine) -> int:
    """Baseline 1: every row through a plain SQLAlchemy SELECT, JSON decoded by its type."""
    count = 0
    with read_transaction(engine) as conn:
        result = conn.execution_options(yield_per=10_000).execute(
            select(events_table).order_by(events_table.c.position)
        )
        for row in result:
            count += len(row.data) > 0
    return count


def copy_to_eventsourcing(engine: Engine) -> Any:
    """The same events in the eventsourcing library's table, in the same order; its recorder."""
    datastore: Any
    recorder: Any
    if engine.dialect.name == "sqlite":
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        datastore = SQLiteDatastore(engine.url.database or "", originator_id_type="text")
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        copy = (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "SELECT stream, version, type, CAST(data AS BLOB) FROM events ORDER BY position"
        )
    else:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        url = engine.url
        datastore = PostgresDatastore(
            url.database or "",
            url.host or "127.0.0.1",
            url.port or 5432,
            url.username or "postgres",
            url.password or "",
            originator_id_type="text",
        )
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        copy = (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "SELECT stream, version, type, convert_to(data::text, 'UTF8') FROM events "
            "ORDER BY position"
        )
    with write_transaction(engine) as conn:
        conn.execute(text(copy))
    return recorder


def read_eventsourcing(recorder: Any) -> int:
    """Baseline 2: the library's notification log, page by page, each state JSON-decoded."""
    count, start = 0, 1
    while page := recorder.select_notifications(start, 10_000):
        for notification in page:
            count += len(json.loads(notification.state)) > 0
        start = page[-1].id + 1
    return count


@dataclass
class Timing:
    """Wall-clock and this process's CPU seconds of one run."""

    wall: float
    cpu: float


# What the CLI's `projections rebuild` runs, at the wall clock's time.
rebuild_parallel = partial(rebuilding.rebuild, clock=system_clock, parallel=True)
rebuild_all = partial(rebuilding.rebuild, clock=system_clock)


def timed(operation: Any, *args: Any) -> tuple[Timing, Any]:
    began, began_cpu = time.perf_counter(), time.process_time()
    result = operation(*args)
    return Timing(time.perf_counter() - began, time.process_time() - began_cpu), result


def mean(timings: list[Timing]) -> Timing:
    return Timing(
        sum(t.wall for t in timings) / len(timings), sum(t.cpu for t in timings) / len(timings)
    )


# --- the set-based SQL floor (--floor) ------------------------------------------------------
#
# What the two read models every booking needs at once cost when the database alone makes
# them from the log: INSERT … SELECT straight from `events` into fresh copies of the tables,
# then the changes applied set-based, the indexes built last. No Python per row.


class FloorSQL(SQL):
    """`projections.set_replay.SQL`'s expressions over `events.data`, and the floor's own
    instants: on SQLite the text UTCDateTime stores, made from the log's ISO text in UTC (a
    space for the T, cut before the offset, or the offset made the fraction where a whole
    second has none), with no Python function on the connection."""

    def by_key(self, columns: int) -> str:
        """How an INSERT … SELECT orders its rows: on SQLite, whose primary key index is
        made with the table, by the key's first `columns` columns (sorted, then appended,
        it is built faster than in the log's order: 0.71 against 1.17 s for 140,000
        rows); PostgreSQL builds the key afterwards."""
        return f" ORDER BY {', '.join(str(n + 1) for n in range(columns))}" if self.sqlite else ""

    def instant_at(self, key: str) -> str:
        if self.sqlite:
            iso = self.text(key)
            return f"replace(replace(substr({iso}, 1, 26), 'T', ' '), '+00:00', '.000000')"
        return f"{self.text(key)}::timestamptz"


def one_of_types(*names: str) -> str:
    return f"type IN ({', '.join(repr(name) for name in names)})"


PLACED = one_of_types("BookingPlaced")
CHANGED = one_of_types("BookingApproved", "BookingRejected", "BookingCancelled")
POPUP_DECIDED = ("PopupApproved", "PopupRejected", "PopupWithdrawn", "PopupExpired")


def floor_copy(source: Table, target: MetaData, dialect: str) -> Table:
    """`source`'s columns as `floor_<name>`, without its indexes (built after the insert).
    SQLite keeps the primary key in CREATE TABLE (it cannot add one later); PostgreSQL
    adds it afterwards, an index built by sorting."""
    keyed = dialect == "sqlite"
    return Table(
        f"floor_{source.name}",
        target,
        *(
            Column(c.name, c.type, primary_key=keyed and c.primary_key, nullable=c.nullable)
            for c in source.columns
        ),
    )


def floor_indexes(conn: Connection, source: Table, table: Table) -> None:
    """`source`'s indexes built on the filled `table` (on PostgreSQL first its key)."""
    if conn.dialect.name == "postgresql":
        keys = ", ".join(f'"{c.name}"' for c in source.primary_key.columns)
        conn.execute(text(f"ALTER TABLE {table.name} ADD PRIMARY KEY ({keys})"))
    for index in source.indexes:
        Index(
            f"floor_{index.name}",
            *(table.c[c.name] for c in index.columns),
            unique=bool(index.unique),
            **index.dialect_kwargs,
        ).create(conn)


def floor_exclusion(conn: Connection, table: Table) -> None:
    """Availability's exclusion constraint on PostgreSQL as the migrations made it on the
    live table (a GiST index; built on the filled table, as fast as filling a table that
    has it)."""
    definition = conn.execute(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'availability_busy_no_overlap'"
        )
    ).scalar_one()
    conn.execute(
        text(f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_no_overlap {definition}")
    )


def floor_booking_list(conn: Connection, table: Table) -> None:
    """One row per BookingPlaced; then each booking's last change (a window over the change
    events) sets its status, reason, late and updated_at, and their count its version."""
    q, t = FloorSQL(conn.dialect.name), table.name
    conn.execute(
        text(
            f"INSERT INTO {t} (id, premises_id, organisation_id, booked_by, series_id, status, "
            'start, "end", title, attendees, public, notes, created_at, updated_at, version, '
            f"late, reason) SELECT {q.text('booking_id')}, {q.text('premises_id')}, "
            f"{q.text('organisation_id')}, {q.text('booked_by')}, {q.text('series_id')}, "
            f"{q.text('status')}, {q.instant_at('start')}, {q.instant_at('end')}, "
            f"{q.text('title')}, {q.number('attendees')}, {q.boolean('public')}, "
            f"{q.text('notes')}, {q.instant_at('placed_at')}, {q.instant_at('placed_at')}, 1, "
            f"NULL, NULL FROM events WHERE {PLACED}{q.by_key(1)}"
        )
    )
    conn.execute(
        text(
            f"UPDATE {t} SET status = c.status, reason = c.reason, late = c.late, "
            "updated_at = c.at, version = 1 + c.changes FROM (SELECT * FROM ("
            f"SELECT {q.text('booking_id')} AS booking_id, CASE type "
            "WHEN 'BookingApproved' THEN 'confirmed' WHEN 'BookingRejected' THEN 'rejected' "
            f"ELSE 'cancelled' END AS status, {q.text('reason')} AS reason, "
            f"{q.boolean('late')} AS late, CASE type "
            f"WHEN 'BookingApproved' THEN {q.instant_at('approved_at')} "
            f"WHEN 'BookingRejected' THEN {q.instant_at('rejected_at')} "
            f"ELSE {q.instant_at('cancelled_at')} END AS at, "
            f"row_number() OVER (PARTITION BY {q.text('booking_id')} ORDER BY position DESC) "
            f"AS nth, count(*) OVER (PARTITION BY {q.text('booking_id')}) AS changes "
            f"FROM events WHERE {CHANGED}) AS ranked WHERE nth = 1) AS c "
            f"WHERE {t}.id = c.booking_id"
        )
    )


def floor_availability_busy(conn: Connection, table: Table) -> None:
    """One row per BookingPlaced and PopupRequested, on the one space of its premises
    (named after it and numbered in their order: no premises of the log has spaces or a
    buffer, so a row is blocked until its end); approvals make a pending booking's hold a
    booking; a rejected or cancelled booking's row, and a decided request's hold, are
    deleted."""
    q, t = FloorSQL(conn.dialect.name), table.name
    public = f"coalesce({q.boolean('public')}, false)"
    conn.execute(
        text(
            f'INSERT INTO {t} (premises_id, ref_id, space_id, space_key, kind, start, "end", '
            f"blocked_until, title, public) SELECT {q.text('premises_id')}, "
            f"coalesce({q.text('booking_id')}, {q.text('request_id')}), {q.text('premises_id')}, "
            f"dense_rank() OVER (ORDER BY {q.text('premises_id')}), "
            f"CASE WHEN {q.text('status')} = 'confirmed' THEN 'booking' ELSE 'hold' END, "
            f"{q.instant_at('start')}, {q.instant_at('end')}, {q.instant_at('end')}, "
            f"CASE WHEN {public} THEN {q.text('title')} END, {public} "
            f"FROM events WHERE {one_of_types('BookingPlaced', 'PopupRequested')}{q.by_key(2)}"
        )
    )
    conn.execute(
        text(
            f"UPDATE {t} SET kind = 'booking' WHERE kind = 'hold' AND (premises_id, ref_id) IN "
            f"(SELECT {q.text('premises_id')}, {q.text('booking_id')} FROM events "
            "WHERE type = 'BookingApproved')"
        )
    )
    conn.execute(
        text(
            f"DELETE FROM {t} WHERE (premises_id, ref_id) IN (SELECT {q.text('premises_id')}, "
            f"CASE WHEN type LIKE 'Popup%' THEN {q.text('request_id')} "
            f"ELSE {q.text('booking_id')} END FROM events "
            f"WHERE {one_of_types('BookingRejected', 'BookingCancelled', *POPUP_DECIDED)})"
        )
    )


FLOOR = (
    ("booking_list", bookings_table, floor_booking_list),
    ("availability_busy", busy_table, floor_availability_busy),
)


@dataclass
class FloorTable:
    """One table's floor: this process's times for the whole transaction, the server
    backend's CPU seconds (PostgreSQL, where its /proc entry is readable; None otherwise)
    and the wall seconds of each step."""

    took: Timing
    server_cpu: float | None
    steps: dict[str, float]


def floor(engine: Engine) -> dict[str, FloorTable]:
    """Each table's set-based build in its own transaction (its rows and changes, indexes,
    commit), into fresh empty copies; checked against separate COUNT queries afterwards."""
    tables = MetaData()
    copies = {name: floor_copy(source, tables, engine.dialect.name) for name, source, _ in FLOOR}
    tables.create_all(engine)
    measured: dict[str, FloorTable] = {}
    for name, source, build in FLOOR:
        table = copies[name]
        steps: dict[str, float] = {}
        with write_transaction(engine) as conn:
            server = ServerCPU(conn)
            began, began_cpu = time.perf_counter(), time.process_time()
            todo = [
                ("rows and changes", partial(build, conn, table)),
                ("indexes", partial(floor_indexes, conn, source, table)),
            ]
            if conn.dialect.name == "postgresql" and source is busy_table:
                todo.append(("exclusion constraint", partial(floor_exclusion, conn, table)))
            for step, operation in todo:
                at = time.perf_counter()
                operation()
                steps[step] = time.perf_counter() - at
            server_cpu = server.seconds()
            at = time.perf_counter()
        steps["commit"] = time.perf_counter() - at
        took = Timing(time.perf_counter() - began, time.process_time() - began_cpu)
        measured[name] = FloorTable(took, server_cpu, steps)
    check_floor(engine, copies["booking_list"], copies["availability_busy"])
    return measured


class ServerCPU:
    """The CPU seconds a PostgreSQL connection's backend process has used since this was
    made (None on SQLite, or where the server's processes are not visible here)."""

    def __init__(self, conn: Connection) -> None:
        self.stat: str | None = None
        if conn.dialect.name == "postgresql":
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            self.stat = f"/proc/{pid}/stat"
        self.began = self._used()

    def _used(self) -> float | None:
        try:
            with open(self.stat or "") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def seconds(self) -> float | None:
        now = self._used()
        return None if now is None or self.began is None else now - self.began


def check_floor(engine: Engine, bookings: Table, busy: Table) -> None:
    """Row counts of the floor's tables against COUNT queries over the log: a row per
    BookingPlaced; as many ended (cancelled or rejected) rows as bookings with such an
    event; availability holds the rest (and the open pop-up requests)."""
    with read_transaction(engine) as conn:
        q = FloorSQL(engine.dialect.name)
        placed = conn.execute(text(f"SELECT count(*) FROM events WHERE {PLACED}")).scalar_one()
        ended = conn.execute(
            text(
                f"SELECT count(DISTINCT {q.text('booking_id')}) FROM events "
                "WHERE type IN ('BookingRejected', 'BookingCancelled')"
            )
        ).scalar_one()
        requests = conn.execute(
            text(
                f"SELECT count(*) FROM events WHERE type = 'PopupRequested' AND "
                f"{q.text('request_id')} NOT IN (SELECT {q.text('request_id')} FROM events "
                f"WHERE {one_of_types(*POPUP_DECIDED)})"
            )
        ).scalar_one()
        listed = conn.execute(select(func.count()).select_from(bookings)).scalar_one()
        listed_ended = conn.execute(
            select(func.count())
            .select_from(bookings)
            .where(bookings.c.status.in_(("cancelled", "rejected")))
        ).scalar_one()
        busy_rows = conn.execute(select(func.count()).select_from(busy)).scalar_one()
    found = (listed, listed_ended, busy_rows)
    expected = (placed, ended, placed - ended + requests)
    if found != expected or not placed:
        raise AssertionError(
            f"floor tables hold (rows, ended, busy rows) = {found}, the log says {expected}"
        )


@contextmanager
def logged(kind: str, total: int, server: str, reuse: bool) -> Iterator[tuple[Engine, int]]:
    """An engine on a database holding the generated log, and the count of its events:
    written now, or (`reuse`, PostgreSQL) copied from `bench.rebuild_live`'s template,
    which is generated once and kept."""
    if not (reuse and kind == "postgresql"):
        with common.migrated_engine(kind, server) as engine:
            seconds, written = timed(load_log, engine, total)
            print(f"{kind}: wrote {written:,} events in {seconds.wall:.0f} s", flush=True)
            yield engine, written
        return
    from bench.rebuild_live import copy_of_template

    with copy_of_template(server, total) as url:
        engine = make_engine(url)
        try:
            with read_transaction(engine) as conn:
                written = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
            yield engine, written
        finally:
            engine.dispose()


def run(
    kind: str,
    total: int,
    server: str,
    parts: bool = False,
    with_floor: str = "",
    reuse: bool = False,
) -> None:
    """`with_floor`: "" (no floor), "floor" (beside the rebuild) or "only" (no rebuild)."""
    with logged(kind, total, server, reuse) as (engine, written):
        try:
            recorder = copy_to_eventsourcing(engine)
        except ImportError:  # the library is the `bench` extra; the target is the plain read
            print("eventsourcing is not installed: its baseline is left out", flush=True)
            recorder = None
        # The baselines run before and after the rebuilds, and their means are compared:
        # a busy spell of the shared machine then weighs on both sides.
        plain: list[Timing] = []
        es: list[Timing] = []
        measured: dict[str, Timing] = {}

        def baselines() -> None:
            took, count = timed(read_plain, engine)
            assert count == written
            plain.append(took)
            if recorder is None:
                es.append(took)  # the columns "× eventsourcing" then repeat the plain read's
                return
            took, count = timed(read_eventsourcing, recorder)
            assert count == written
            es.append(took)

        baselines()
        if with_floor != "only":
            measured["rebuild ALL (shadow inline ∥ asynchronous in a process)"], _ = timed(
                rebuild_parallel, engine, runner.ALL
            )
        if parts:
            measured["rebuild inline projections only (shadow tables)"], _ = timed(
                rebuild_all, engine, runner.INLINE
            )
            for projection in runner.ASYNC:
                measured[f"rebuild {projection.name} only (fresh tables, swapped in)"], _ = timed(
                    rebuild_all, engine, [projection]
                )
        if with_floor:
            floors = floor(engine)
            for name, built in floors.items():
                measured[f"floor: {name} set-based SQL"] = built.took
            both = [built.took for built in floors.values()]
            measured["floor: both"] = Timing(sum(t.wall for t in both), sum(t.cpu for t in both))
        baselines()
        plain_t, es_t = mean(plain), mean(es)
        rows: list[list[object]] = [
            row("baseline: plain SELECT + JSON decode", written, plain_t, plain_t, es_t)
        ]
        if recorder is not None:
            rows.append(
                row("baseline: eventsourcing notification log", written, es_t, plain_t, es_t)
            )
        rows += [row(name, written, took, plain_t, es_t) for name, took in measured.items()]
        common.print_table(
            f"Rebuild from a log of {written:,} events — {kind} — {common.machine()}",
            [
                "what",
                "seconds",
                "events/s",
                "× plain read",
                "× eventsourcing",
                "cpu s",
                "cpu × plain",
                "cpu × eventsourcing",
            ],
            rows,
        )
        if with_floor:
            print_floor_steps(kind, floors)


def print_floor_steps(kind: str, floors: dict[str, FloorTable]) -> None:
    """Where each floor table's wall time went and, on PostgreSQL, the server's CPU."""
    for name, built in floors.items():
        steps = ", ".join(f"{step} {seconds:.1f}" for step, seconds in built.steps.items())
        print(f"floor {name}, wall s: {steps}")
    if kind == "postgresql":
        spent = ", ".join(
            f"{name} {'?' if b.server_cpu is None else f'{b.server_cpu:.1f}'}"
            for name, b in floors.items()
        )
        print(
            "the server does the floor's work; its backend's CPU s "
            f"(parallel index-build workers not counted): {spent}"
        )
    print(flush=True)


def row(name: str, events: int, took: Timing, plain: Timing, es: Timing) -> list[object]:
    """Rates and ratios by wall-clock time, then by this process's CPU time (which leaves
    out the database server's own work on PostgreSQL: where it is under a twentieth of the
    wall time, the work was the server's and the CPU ratios say nothing: "-")."""
    own = took.cpu >= took.wall / 20
    return [
        name,
        f"{took.wall:.1f}",
        common.per_second(events / took.wall),
        common.ratio(plain.wall / took.wall),
        common.ratio(es.wall / took.wall),
        f"{took.cpu:.1f}",
        common.ratio(plain.cpu / took.cpu) if own else "-",
        common.ratio(es.cpu / took.cpu) if own else "-",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="log size (default 1,000,000)")
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also rebuild the inline projections alone and each asynchronous one alone",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the set-based SQL floor: booking_list and availability_busy made "
        "from the log by INSERT … SELECT and set-based changes, into fresh tables",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: copy the log from bench.rebuild_live's template database (made "
        "once, kept) instead of generating it",
    )
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="the floor beside the baselines, without the rebuild of every projection",
    )
    args = parser.parse_args(argv)
    total = args.events or (20_000 if args.quick else 1_000_000)
    # The swap's lock time of the inline projections' shadow tables, as it happens.
    logging.basicConfig(format="%(name)s: %(message)s")
    # With --parts, also each index and constraint built after the replay.
    level = logging.DEBUG if args.parts else logging.INFO
    logging.getLogger("projections.shadowing").setLevel(level)
    logging.getLogger("projections.set_replay").setLevel(level)
    with_floor = "only" if args.floor_only else "floor" if args.floor else ""
    for kind in common.chosen_databases(args):
        run(kind, total, args.postgres, args.parts, with_floor, args.reuse)


if __name__ == "__main__":
    main()
