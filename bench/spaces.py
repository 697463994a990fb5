"""What premises made of spaces cost (issue 15), ratios taken in one run.

(a) A booking of a one-space premises and of a three-space premises (a gym whose three
    thirds are premises too, so its decision reads what they hold) through the command
    layer, as bench.booking_commands times it: interleaved blocks on one database, target
    three-space ≤ 1.3 × one-space.
(b) The one-space figure against the commit before spaces: run this same file in a work
    tree of that commit with `--one-space-only` (it needs nothing spaces added), alternating
    old and new runs; target new ≤ 1.1 × old. `--label` names the run in the output.
(c) Availability of a month (GET /api/v1/premises/{id}/availability) of a half whose whole is
    booked, and the search (GET /api/v1/availability) over every premises, in-process:
    p95 within 5 ms and 20 ms.

    python -m bench.spaces [--quick] [--databases sqlite,postgresql] [--count N]

The figures, and how (b) was measured (ping-pong between two work trees), are in
bench/results/2026-12-07.md, bench/results/2026-12-07-spaces-ab.md and bench/README.md:
(a) 1.11× (SQLite) and 1.14× (PostgreSQL) CPU, within 1.3×; (c) CPU p95 within 5 ms and
20 ms; (b) 1.01–1.05× and 0.86–0.94× CPU for main with held writes, within 1.1× (1.24× and
1.12× for main before them).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from bench import common
from booking.domain.commands import BookingRequest, PlaceBooking
from booking.service import Outcome, PremisesRepository, execute, run_premises_command
from events.slot import Slot
from events.store import Metadata

ZONE = ZoneInfo("Europe/Helsinki")
PER_KIND = 4  # premises of each kind, bookings spread over them
HOURS = range(8, 22)
PARTS = ("a", "b", "c")


def slot_of(first_day: datetime, i: int) -> Slot:
    nth = i // PER_KIND
    day = first_day.date() + timedelta(days=nth // len(HOURS))
    start = datetime(day.year, day.month, day.day, HOURS[nth % len(HOURS)], tzinfo=ZONE)
    return Slot(start, start + timedelta(hours=1))


def booking(
    engine: Engine,
    repository: PremisesRepository,
    booker: common.Person,
    premises: list[str],
    first_day: datetime,
) -> Callable[[int], object]:
    actor = booker.actor

    def place(i: int) -> None:
        premises_id, slot = premises[i % PER_KIND], slot_of(first_day, i)
        request = BookingRequest(premises_id, slot, "Vuoro", 5, False, "", actor.organisation_id)
        command = PlaceBooking(actor, str(uuid.uuid4()), request, datetime.now(UTC))

        def handle(conn: Connection) -> Outcome:
            run_premises_command(
                conn, repository, premises_id, command, Metadata(actor.user_id), now=command.now
            )
            return Outcome(201, {})

        execute(engine, handle)

    return place


def run(kind: str, count: int, one_space_only: bool, label: str, json_path: str | None) -> None:
    with common.migrated_engine(kind) as engine:
        up = _set_up(engine)
        app, repository, staff, first_day = up.app, up.repository, up.staff, up.first_day
        rules = RULES
        ones = booking(engine, repository, up.booker, up.ones, first_day)
        operations = {"one-space premises": ones}
        wholes = [f"three-{n}" for n in range(PER_KIND)]
        if not one_space_only:
            for whole in wholes:
                spaces = [f"{whole}-{p}" for p in PARTS]
                profile = common.premises_profile(whole, rules=rules, spaces=spaces)
                common.register_premises(engine, repository, staff.actor, whole, profile)
                for part, space in zip(PARTS, spaces, strict=True):
                    profile = common.premises_profile(space, rules=rules, spaces=[space])
                    common.register_premises(
                        engine, repository, staff.actor, f"{whole}-{part}", profile
                    )
            later = first_day + timedelta(days=3650 // 2)
            operations["three-space premises"] = booking(
                engine, repository, up.booker, wholes, later
            )
        samples = common.interleave(operations, count)
        one = samples["one-space premises"]
        one_cpu = sum(one.cpu_seconds)
        rows = [[f"{label} {kind}", name, s.count, common.millis(s.p50), common.millis(s.p95),
                 common.millis(s.cpu_p(50)), common.per_second(s.rate),
                 common.ratio(s.total / one.total), common.ratio(sum(s.cpu_seconds) / one_cpu)]
                for name, s in samples.items()]  # fmt: skip
        common.print_table(
            f"(a, b) bookings through the command layer · {common.machine()}",
            ["run", "path", "n", "p50 ms", "p95 ms", "cpu p50", "per s", "× one", "cpu × one"],
            rows,
        )
        if json_path is not None:  # for bench.spaces_ab, which alternates commits
            figures = {name: {"count": s.count, "wall_p50": s.p50, "cpu_p50": s.cpu_p(50),
                              "wall_mean": s.total / s.count,
                              "cpu_mean": sum(s.cpu_seconds) / s.count}
                       for name, s in samples.items()}  # fmt: skip
            Path(json_path).write_text(json.dumps({"database": kind, "paths": figures}))
        if one_space_only:
            return
        client = app.test_client()
        # A month of a third whose whole is booked every day, and the search over all.
        month = first_day.date() + timedelta(days=3650 // 2)
        asks: dict[str, Callable[[int], object]] = {
            "availability, a month of a third": lambda i: client.get(
                f"/api/v1/premises/three-{i % PER_KIND}-a/availability"
                f"?from={month + timedelta(days=i % 60)}&to={month + timedelta(days=i % 60 + 30)}"
            ),
            "availability, a month of a one-space": lambda i: client.get(
                f"/api/v1/premises/one-{i % PER_KIND}/availability"
                f"?from={first_day.date() + timedelta(days=i % 60)}"
                f"&to={first_day.date() + timedelta(days=i % 60 + 30)}"
            ),
            "search, 2 h over every premises": lambda i: client.get(
                "/api/v1/availability",
                query_string={
                    "start": (first_day + timedelta(days=i % 20, hours=1)).isoformat(),
                    "end": (first_day + timedelta(days=i % 20, hours=3)).isoformat(),
                },
            ),
        }
        found = common.interleave(asks, max(50, count // 2))
        targets = {"search, 2 h over every premises": 0.020}
        common.print_table(
            "(c) reads, in-process test client",
            ["run", "read", "n", "p50 ms", "p95 ms", "cpu p95", "target p95"],
            [
                [f"{label} {kind}", name, s.count, common.millis(s.p50), common.millis(s.p95),
                 common.millis(s.cpu_p(95)), f"≤ {common.millis(targets.get(name, 0.005))}"]
                for name, s in found.items()
            ],
        )  # fmt: skip


@dataclass(frozen=True)
class _SetUp:
    app: Flask
    repository: PremisesRepository
    staff: common.Person
    booker: common.Person
    ones: list[str]
    first_day: datetime


RULES = {"min_notice_minutes": 0, "max_advance_days": 3650}


def _set_up(engine: Engine) -> _SetUp:
    """The set-up (a) and (b) share, alike in both trees: staff, a booker and PER_KIND
    one-space premises bookable from two days ahead."""
    app = common.bench_app(engine)
    repository = common.repository_of(app)
    staff = common.new_person(engine, "staff")
    booker = common.new_person(engine, "booker")
    ones = [f"one-{n}" for n in range(PER_KIND)]
    for premises_id in ones:
        profile = common.premises_profile(premises_id, rules=RULES)
        common.register_premises(engine, repository, staff.actor, premises_id, profile)
    first_day = datetime.now(UTC).astimezone(ZONE) + timedelta(days=2)
    return _SetUp(app, repository, staff, booker, ones, first_day)


def _one_space_bookings(engine: Engine) -> Callable[[int], object]:
    """(b)'s set-up, alike in both trees: PER_KIND one-space premises, and the i-th booking."""
    up = _set_up(engine)
    return booking(engine, up.repository, up.booker, up.ones, up.first_day)


def serve(kind: str, server: str) -> None:
    """(b) as a worker of bench.spaces_ab: one-space premises on a fresh database, then for
    each line `N` on stdin, N more bookings, answered by one line `@@ {"wall": […], "cpu":
    […]}` on stdout (an empty line or 0 ends it). The driver alternates two such workers,
    one of each commit, batch by batch."""
    with common.migrated_engine(kind, server) as engine:
        place = _one_space_bookings(engine)
        done = 0
        print("@@ ready", flush=True)
        for line in sys.stdin:
            count = int(line.strip() or 0)
            if count <= 0:
                break
            found = common.time_calls(place, range(done, done + count))
            done += count
            print("@@", json.dumps({"wall": found.seconds, "cpu": found.cpu_seconds}), flush=True)


def count_calls(kind: str, server: str, count: int) -> None:
    """(b)'s cross-check that no load disturbs: after 20 bookings, `count` more under cProfile
    and with every statement counted (SQLAlchemy's `before_cursor_execute`, and those sent
    on the driver by `events.pipeline` where that exists): one line `@@ {"calls": …,
    "statements": …, "functions": {name: calls}}`, per booking. Self-contained: it runs in
    the old tree too, whose bench/common.py may lack what this one has."""
    import cProfile
    import importlib
    import pstats

    from sqlalchemy import event

    with common.migrated_engine(kind, server) as engine:
        place = _one_space_bookings(engine)
        for i in range(20):
            place(i)
        sent = [0]

        def counted(*_: object) -> None:
            sent[0] += 1

        event.listen(engine, "before_cursor_execute", counted)
        try:  # held writes go on the driver, unseen by SQLAlchemy's events
            pipeline: Any = importlib.import_module("events.pipeline")
            pipeline.observer = counted
        except ImportError:  # the old tree has no held writes
            pass
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(20, 20 + count):
            place(i)
        profiler.disable()
        stats = pstats.Stats(profiler)
        table = stats.stats  # type: ignore[attr-defined]
        calls = sum(entry[1] for entry in table.values())
        ours = {
            f"{Path(file).name}:{name}": entry[1] / count
            for (file, _, name), entry in table.items()
            if "site-packages" not in file and "/lib/python" not in file and file != "~"
        }
        figures = {"calls": calls / count, "statements": sent[0] / count, "functions": ours}
        print("@@", json.dumps(figures), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--count", type=int, default=600, help="timed bookings per path")
    parser.add_argument("--one-space-only", action="store_true", help="(b): the old commit")
    parser.add_argument("--label", default="", help="names this run in the tables")
    parser.add_argument("--json", default=None, help="also write the bookings' figures here")
    parser.add_argument("--serve", action="store_true", help="(b): a worker of bench.spaces_ab")
    parser.add_argument("--count-calls", action="store_true", help="(b): calls and statements")
    args: argparse.Namespace = parser.parse_args(argv)
    if args.count_calls:
        count_calls(common.chosen_databases(args)[0], args.postgres, args.count)
        return
    if args.serve:
        serve(common.chosen_databases(args)[0], args.postgres)
        return
    count = 100 if args.quick else args.count
    for kind in common.chosen_databases(args):
        run(kind, count, args.one_space_only, args.label, args.json)


if __name__ == "__main__":
    main()
