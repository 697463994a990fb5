"""Rebuilding every projection from a generated log, beside two ways of merely reading it.

`python -m bench.rebuild [--quick] [--events N] [--parts] [--databases sqlite,postgresql]`

The log (default 1,000,000 events: 200 organisations, 300 users, 80 premises and five years
of bookings with approvals, rejections and cancellations, in the shapes the commands write)
is inserted straight into the events table. Then, on the same database:

- baseline 1: a plain SQLAlchemy SELECT of all rows with their JSON decoded: the physical
  limit of reading this log (target: rebuild ≥ 0.3 of it);
- baseline 2: the eventsourcing library's notification log (`select_notifications`) over a
  copy of the same events in its own table, JSON-decoded (target: rebuild faster);
- the rebuild of every projection (`projections.runner.rebuild(ALL)`): one pass over the
  log in one transaction, the inline projections replayed in place and the asynchronous
  ones into fresh tables swapped in at the end; with `--parts` also the inline ones alone
  and each asynchronous one alone (its batch-by-batch rebuild beside a live runner).

The baselines run before and after the rebuilds and their means are compared. Rates are
given by wall-clock time and by this process's CPU time.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select, text

from bench import common
from events import catalog as c
from events.serialization import serializer
from events.sql import read_transaction, write_transaction
from events.store import events_table
from projections import runner

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


def timed(operation: Any, *args: Any) -> tuple[Timing, Any]:
    began, began_cpu = time.perf_counter(), time.process_time()
    result = operation(*args)
    return Timing(time.perf_counter() - began, time.process_time() - began_cpu), result


def mean(timings: list[Timing]) -> Timing:
    return Timing(
        sum(t.wall for t in timings) / len(timings), sum(t.cpu for t in timings) / len(timings)
    )


def run(kind: str, total: int, server: str, parts: bool = False) -> None:
    with common.migrated_engine(kind, server) as engine:
        seconds, written = timed(load_log, engine, total)
        print(f"{kind}: wrote {written:,} events in {seconds.wall:.0f} s", flush=True)
        recorder = copy_to_eventsourcing(engine)
        # The baselines run before and after the rebuilds, and their means are compared:
        # a busy spell of the shared machine then weighs on both sides.
        plain: list[Timing] = []
        es: list[Timing] = []
        measured: dict[str, Timing] = {}

        def baselines() -> None:
            took, count = timed(read_plain, engine)
            assert count == written
            plain.append(took)
            took, count = timed(read_eventsourcing, recorder)
            assert count == written
            es.append(took)

        baselines()
        measured["ALL projections, one pass (runner.rebuild(ALL))"], _ = timed(
            runner.rebuild, engine, runner.ALL
        )
        if parts:
            measured["inline projections only (one transaction)"], _ = timed(
                runner.rebuild, engine, runner.INLINE
            )
            for projection in runner.ASYNC:
                measured[f"{projection.name} only (fresh tables, swapped in)"], _ = timed(
                    runner.rebuild, engine, [projection]
                )
        baselines()
        plain_t, es_t = mean(plain), mean(es)
        rows: list[list[object]] = [
            row("baseline: plain SELECT + JSON decode", written, plain_t, plain_t, es_t),
            row("baseline: eventsourcing notification log", written, es_t, plain_t, es_t),
        ]
        rows += [
            row(f"rebuild {name}", written, took, plain_t, es_t) for name, took in measured.items()
        ]
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


def row(name: str, events: int, took: Timing, plain: Timing, es: Timing) -> list[object]:
    """Rates and ratios by wall-clock time, then by this process's CPU time (which leaves
    out the database server's own work on PostgreSQL)."""
    return [
        name,
        f"{took.wall:.1f}",
        common.per_second(events / took.wall),
        common.ratio(plain.wall / took.wall),
        common.ratio(es.wall / took.wall),
        f"{took.cpu:.1f}",
        common.ratio(plain.cpu / took.cpu),
        common.ratio(es.cpu / took.cpu),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="log size (default 1,000,000)")
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also rebuild the inline projections alone and each asynchronous one alone",
    )
    args = parser.parse_args(argv)
    total = args.events or (20_000 if args.quick else 1_000_000)
    for kind in common.chosen_databases(args):
        run(kind, total, args.postgres, args.parts)


if __name__ == "__main__":
    main()
