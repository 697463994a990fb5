"""Bookings over HTTP while every projection is rebuilt from a large log.

`python -m bench.rebuild_live [--database postgresql|sqlite] [--events N] [--seconds S]
[--clients C] [--mix …]`

The log (`bench.rebuild.generate`, default 1,000,000 events) is generated once into a
template database, `tilavaraus_bench_rebuild_<N>` (SQLite: a file of that name in the
temporary folder, `--template-dir`), with every projection built; later runs reuse it
(`--fresh-template` makes it again). Each run copies it (`CREATE DATABASE … TEMPLATE`, or
the file), starts the production setup on the copy (`booking serve`, gunicorn, and
`booking projector`, as `bench.load` does), registers 20 rooms and loads the server with
`bench.load`'s traffic (by default bookings and cancellations only: the writes the old
rebuild stopped) in three phases:

1. the load alone for S seconds (before),
2. the load while `booking projections rebuild` runs in a process of its own — every
   projection, inline ones into shadow tables swapped in at the end
   (`projections.shadowing`), asynchronous ones into fresh tables,
3. the load alone for S seconds again (after).

Reported per phase: requests, bookings' p50 and p99 latency, the slowest request, non-2xx
answers and connection errors; the rebuild's duration and the time its swap held the
live tables (what a booking can wait at most, beside its lock timeout). Target: bookings
keep succeeding during the rebuild at p99 ≤ 250 ms. The load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import common
from bench.load import (
    HELSINKI,
    SECRET_KEY,
    Processes,
    Tally,
    Target,
    _free_port,
    _mix,
    _register_premises,
    _wait_until_serving,
    people,
    run_round,
)
from events.sql import make_engine

WRITES = (("booking", 85), ("cancel", 15))
TARGET_P99 = 0.250


def _admin(server: str) -> Any:
    return create_engine(server, isolation_level="AUTOCOMMIT")


def _url(server: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


def template(server: str, events: int, fresh: bool) -> str:
    """The template database's name: the generated log with every projection built."""
    name = f"tilavaraus_bench_rebuild_{events}"
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if found and not fresh:
                return name
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        engine = make_engine(_url(server, name))
        try:
            _build(engine, events)
        finally:
            engine.dispose()
    finally:
        admin.dispose()
    return name


def _build(engine: Any, events: int) -> None:
    """The generated log and every projection built from it."""
    from bench.rebuild import load_log
    from booking.clock import system_clock
    from booking.migrate import upgrade
    from projections import rebuilding, runner

    upgrade(engine)
    began = time.perf_counter()
    written = load_log(engine, events)
    print(f"template: wrote {written:,} events in {time.perf_counter() - began:.0f} s")
    began = time.perf_counter()
    rebuilding.rebuild(engine, runner.ALL, clock=system_clock)
    print(f"template: projections built in {time.perf_counter() - began:.0f} s", flush=True)


@contextmanager
def copy_of_sqlite_template(folder: Path, events: int, fresh: bool) -> Iterator[str]:
    """The URL of a copy, in `folder`, of the SQLite template file (made if missing)."""
    from booking.migrate import upgrade

    template_file = folder / f"tilavaraus_bench_rebuild_{events}.sqlite"
    if fresh or not template_file.exists():
        making = template_file.with_suffix(".making")
        for leftover in (making, Path(f"{making}-wal"), Path(f"{making}-shm")):
            leftover.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{making}")
        try:
            _build(engine, events)
        finally:
            engine.dispose()  # the last connection closed: the WAL checkpointed and gone
        making.rename(template_file)
    with tempfile.TemporaryDirectory(dir=folder) as run:
        copy = Path(run) / "tilavaraus.sqlite"
        began = time.perf_counter()
        shutil.copyfile(template_file, copy)
        print(f"copied the template in {time.perf_counter() - began:.0f} s", flush=True)
        url = f"sqlite:///{copy}"
        engine = make_engine(url)
        try:
            upgrade(engine)  # a template kept from an older schema
        finally:
            engine.dispose()
        yield url


def child_rebuild(url: str, inline_only: bool) -> None:
    """The rebuild as its own process: every projection (or the inline ones); prints one
    JSON line, and logs the rebuild's steps (INFO) on stderr."""
    import logging

    from booking.clock import system_clock
    from projections import rebuilding, runner, shadowing

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    engine = make_engine(url)
    swaps: list[float] = []
    began = time.perf_counter()
    inline = shadowing.rebuild_inline(engine, runner.INLINE, on_swap=swaps.append)
    inline_done = time.perf_counter()
    later = 0
    if not inline_only:
        later = rebuilding.rebuild_asynchronous(engine, runner.ASYNC, clock=system_clock)
    print(
        json.dumps(
            {
                "events": inline,
                "async_events": later,
                "inline_seconds": inline_done - began,
                "seconds": time.perf_counter() - began,
                "swap_seconds": swaps[0],
            }
        ),
        flush=True,
    )
    engine.dispose()


@contextmanager
def copy_of_template(server: str, events: int, fresh: bool = False) -> Iterator[str]:
    """The URL of a copy of the template database (`template`), dropped afterwards."""
    name = template(server, events, fresh)
    run = f"tilavaraus_bench_live_{os.getpid()}"
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            began = time.perf_counter()
            conn.execute(text(f'CREATE DATABASE "{run}" TEMPLATE "{name}"'))
            print(f"copied the template in {time.perf_counter() - began:.0f} s", flush=True)
        try:
            # A template kept from an older schema is brought up to this code's (a no-op
            # when it is current).
            from booking.migrate import upgrade

            engine = make_engine(_url(server, run))
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            yield _url(server, run)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)'))
    finally:
        admin.dispose()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.database == "sqlite":
        with (
            copy_of_sqlite_template(args.template_dir, args.events, args.fresh_template) as url,
            tempfile.TemporaryDirectory() as folder,
        ):
            return _measure_on(args, url, Path(folder))
    with (
        copy_of_template(args.postgres, args.events, args.fresh_template) as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        return _measure_on(args, url, Path(folder))


def _measure_on(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    booker, staff = people(url)
    env = {
        **os.environ,
        "BOOKING_DATABASE_URL": url,
        "BOOKING_INSTANCE_PATH": str(folder),
        "BOOKING_SECRET_KEY": SECRET_KEY,
        "BOOKING_RUN_SCHEDULER": "0",
    }
    processes = Processes(folder, env)
    try:
        port = _free_port()
        workers = ["--workers", str(args.workers), "--threads", str(args.threads)]
        app = processes.start(
            "serve", "-m", "booking.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            *workers,
        )  # fmt: skip
        _wait_until_serving(port, app, folder / "serve.log")
        processes.start("projector", "-m", "booking.cli", "projector")
        _register_premises(port, staff)
        first = datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=14)
        target = Target("app", port, booker, True, first, args.mix)
        run_round(target, args.clients, 3.0, Tally(), seed=99)  # warm-up, not counted
        phases = {"before": Tally(), "during the rebuild": Tally(), "after": Tally()}
        run_round(target, args.clients, args.seconds, phases["before"], seed=1)
        _tell("before the rebuild", phases["before"])
        rebuild = subprocess.Popen(
            [sys.executable, "-m", "bench.rebuild_live", "--child-rebuild", url]
            + (["--inline-only"] if args.inline_only else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=(folder / "rebuild.log").open("ab"),
        )
        during = phases["during the rebuild"]
        seed = 100
        began = time.perf_counter()
        while rebuild.poll() is None:
            # Short rounds, back to back, until the rebuild ends; each one told as it ends.
            part = Tally()
            run_round(target, args.clients, 5.0, part, seed)
            seed += 1
            during.merge(part.seconds, part.statuses)
            during.errors.update(part.errors)
            during.elapsed += part.elapsed
            _tell(f"{time.perf_counter() - began:6.0f} s into the rebuild", part)
        output = rebuild.stdout.read().decode() if rebuild.stdout else ""
        if rebuild.returncode != 0:
            raise SystemExit(f"the rebuild failed:\n{(folder / 'rebuild.log').read_text()}")
        result = json.loads(output.strip().splitlines()[-1])
        for line in (folder / "rebuild.log").read_text().splitlines():
            if line.startswith("projections.shadowing"):
                print(line, flush=True)
        run_round(target, args.clients, args.seconds, phases["after"], seed=2)
        engine = make_engine(url)
        try:
            overlaps = _overlapping_rooms(engine)
        finally:
            engine.dispose()
    finally:
        processes.close()
    return {"phases": phases, "rebuild": result, "overlaps": overlaps}


ROOM_OVERLAPS = """
SELECT count(*) FROM {table} a JOIN {table} b
  ON a.premises_id = b.premises_id AND a.{key} < b.{key}
 AND a.start < b."end" AND b.start < a."end"
 WHERE a.premises_id LIKE 'room-%' AND {active}
"""


def _overlapping_rooms(engine: Any) -> dict[str, int]:
    """`bench.load.overlapping` on the rooms this run booked only: over the generated log's
    million rows the self-join runs for many minutes."""
    active = (
        "a.status NOT IN ('cancelled', 'rejected') AND b.status NOT IN ('cancelled', 'rejected')"
    )
    busy = "a.kind <> 'closure' AND b.kind <> 'closure'"
    with engine.connect() as conn:
        return {
            "booking_list": conn.execute(
                text(ROOM_OVERLAPS.format(table="booking_list", key="id", active=active))
            ).scalar_one(),
            "availability_busy": conn.execute(
                text(ROOM_OVERLAPS.format(table="availability_busy", key="ref_id", active=busy))
            ).scalar_one(),
        }


def _tell(when: str, tally: Tally) -> None:
    bookings = tally.seconds.get("booking", [])
    if not bookings:
        print(f"{when}: no booking answered", flush=True)
        return
    failed = sum(n for status, n in tally.statuses.items() if status >= 300)
    print(
        f"{when}: {len(bookings)} bookings, p50 "
        f"{common.millis(common.percentile(bookings, 50))}, p99 "
        f"{common.millis(common.percentile(bookings, 99))} ms, slowest "
        f"{common.millis(max(tally.all_seconds))} ms, non-2xx {failed}, errors "
        f"{sum(tally.errors.values())}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def report(args: argparse.Namespace, found: dict[str, Any]) -> bool:
    phases: dict[str, Tally] = found["phases"]
    result = found["rebuild"]
    print(common.machine())
    rows = []
    for phase, tally in phases.items():
        bookings = tally.seconds.get("booking", [])
        every = tally.all_seconds
        failed = sum(n for status, n in tally.statuses.items() if status >= 300)
        rows.append(
            [
                phase,
                tally.count,
                f"{tally.count / tally.elapsed:.0f}" if tally.elapsed else "-",
                len(bookings),
                common.millis(common.percentile(bookings, 50)) if bookings else "-",
                common.millis(common.percentile(bookings, 99)) if bookings else "-",
                common.millis(max(every)) if every else "-",
                failed,
                sum(tally.errors.values()),
            ]
        )
    common.print_table(
        f"Bookings over HTTP beside a rebuild of {result['events']:,} events "
        f"({args.database}) — "
        f"{args.clients} clients, mix " + ", ".join(f"{k} {w}" for k, w in args.mix),
        ["phase", "requests", "req/s", "bookings", "p50", "p99", "slowest", "non-2xx", "errors"],
        rows,
    )
    print(
        f"rebuild: inline projections {result['inline_seconds']:.1f} s (shadow tables), "
        + (
            "the asynchronous ones not rebuilt (--inline-only)"
            if args.inline_only
            else f"every projection {result['seconds']:.1f} s"
        )
        + "; the swap held the live tables "
        + f"{result['swap_seconds'] * 1000:.0f} ms; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    during = phases["during the rebuild"]
    bookings = during.seconds.get("booking", [])
    p99 = common.percentile(bookings, 99) if bookings else float("inf")
    failed = sum(n for status, n in during.statuses.items() if status >= 300)
    checks = {
        f"bookings during the rebuild: {len(bookings)}": len(bookings) > 0,
        f"bookings' p99 during the rebuild {p99 * 1000:.0f} ms (≤ 250 ms)": p99 <= TARGET_P99,
        f"non-2xx during the rebuild: {failed}, errors {sum(during.errors.values())}": not failed
        and not during.errors,
        f"overlapping active bookings: {found['overlaps']}": not any(found["overlaps"].values()),
    }
    for text_, ok in checks.items():
        print(f"  {'ok  ' if ok else 'MISS'} {text_}")
    return all(checks.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="log size")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--postgres", default=common.POSTGRES_SERVER, help="server URL")
    parser.add_argument(
        "--template-dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="SQLite: where the template file is kept, and each run's copy made",
    )
    parser.add_argument("--fresh-template", action="store_true", help="generate the log again")
    parser.add_argument("--seconds", type=float, default=15.0, help="load before and after")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--mix", type=_mix, default=WRITES, help="kind=weight,… (bench.load)")
    parser.add_argument(
        "--inline-only", action="store_true", help="rebuild the inline projections only"
    )
    parser.add_argument("--child-rebuild", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_rebuild:
        child_rebuild(args.child_rebuild, args.inline_only)
        return
    if args.database == "postgresql" and (problem := common.postgres_problem(args.postgres)):
        print(f"PostgreSQL skipped: {problem}", file=sys.stderr)
        return
    if not report(args, measure(args)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
