"""What every benchmark needs: arguments, timing and percentiles, a plain-text table, throwaway
SQLite files and PostgreSQL databases (migrated), the Flask app, people and premises, and the
demo year of bookings.

Benchmarks compare a path with its baseline in the same run, on the same database and engine;
`interleave` runs them in alternating rounds so that noise from a shared machine falls on both.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import math
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from booking import accounts
from booking.app import create_app
from booking.domain.commands import Actor, RegisterPremises
from booking.migrate import upgrade
from booking.service import Outcome, PremisesRepository, execute, run_premises_command
from events.sql import make_engine, write_transaction
from events.store import Metadata

POSTGRES_SERVER = (
    os.environ.get("BENCH_POSTGRES")
    or os.environ.get("TILAVARAUS_TEST_POSTGRES")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("sqlite", "postgresql")

# --- arguments ----------------------------------------------------------------------------


def parser(description: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: `--quick`, `--databases`, `--postgres`."""
    found = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    found.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    found.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    found.add_argument("--postgres", default=POSTGRES_SERVER, help="server URL (any database)")
    return found


def chosen_databases(args: argparse.Namespace) -> list[str]:
    """The databases asked for, less PostgreSQL when no server answers (said on stderr)."""
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in DATABASES]
    if unknown:
        raise SystemExit(f"unknown database: {', '.join(unknown)} (use {', '.join(DATABASES)})")
    if "postgresql" in wanted and (problem := postgres_problem(args.postgres)):
        print(f"PostgreSQL skipped: {problem}", file=sys.stderr)
        wanted.remove("postgresql")
    return wanted


# --- timing -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Samples:
    """Durations in seconds of one operation, repeated: wall-clock time, and this process's
    CPU time, which a busy shared machine does not inflate (it leaves out the database
    server's work on PostgreSQL, and waits for the disk)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    # The database server's CPU seconds for the calls, in all (`interleave`'s `servers`, or
    # what `Timed` calls said); None when not measured.
    server_seconds: float | None = None

    @property
    def count(self) -> int:
        return len(self.seconds)

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def rate(self) -> float:
        """Operations per second, back to back."""
        return self.count / self.total if self.total else math.inf

    @property
    def cpu_rate(self) -> float:
        total = sum(self.cpu_seconds)
        return self.count / total if total else math.inf

    @property
    def server_per_call(self) -> float | None:
        """The database server's CPU seconds per call, when measured."""
        if self.server_seconds is None or not self.count:
            return None
        return self.server_seconds / self.count

    def add_server(self, seconds: float | None) -> None:
        if seconds is not None:
            self.server_seconds = (self.server_seconds or 0.0) + seconds

    def p(self, q: float) -> float:
        return percentile(self.seconds, q)

    @property
    def p50(self) -> float:
        return self.p(50)

    @property
    def p95(self) -> float:
        return self.p(95)

    def cpu_p(self, q: float) -> float:
        return percentile(self.cpu_seconds, q)


@dataclass(frozen=True)
class Timed:
    """What an operation that times itself returns: the wall-clock and CPU seconds of the
    part of its call that is measured (a floor's replay leaves out the statements of the
    other paths it replays to keep its database alike)."""

    seconds: float
    cpu_seconds: float
    server_seconds: float | None = None  # the database server's, when measured


def time_calls(operation: Callable[[int], object], indices: range) -> Samples:
    """Run `operation(i)` for each index; each call's wall-clock and CPU seconds (or the
    `Timed` it returns)."""
    found = Samples("")
    wall, cpu = time.perf_counter, time.process_time
    for i in indices:
        began, began_cpu = wall(), cpu()
        result = operation(i)
        if isinstance(result, Timed):
            found.seconds.append(result.seconds)
            found.cpu_seconds.append(result.cpu_seconds)
            found.add_server(result.server_seconds)
        else:
            found.seconds.append(wall() - began)
            found.cpu_seconds.append(cpu() - began_cpu)
    return found


def interleave(
    operations: dict[str, Callable[[int], object]],
    count: int,
    rounds: int = 5,
    warmup: int = 10,
    servers: dict[str, ServerCPU] | None = None,
) -> dict[str, Samples]:
    """Time `count` calls of every operation, in `rounds` alternating blocks.

    Each operation gets indices 0..warmup-1 untimed first, then warmup..warmup+count-1 timed,
    so an index can name a distinct slot or stream. Alternating blocks put a busy spell of a
    shared machine on all operations alike, which keeps the ratios honest. `servers`, by
    operation: the database server's CPU over each of its blocks (`ServerCPU`).
    """
    for operation in operations.values():
        time_calls(operation, range(warmup))
    samples = {name: Samples(name) for name in operations}
    bounds = [warmup + count * r // rounds for r in range(rounds + 1)]
    for low, high in itertools.pairwise(bounds):
        for name, operation in operations.items():
            server = (servers or {}).get(name)
            began = server.begin() if server else None
            block = time_calls(operation, range(low, high))
            if server and began is not None:
                samples[name].add_server(server.since(began))
            samples[name].seconds.extend(block.seconds)
            samples[name].cpu_seconds.extend(block.cpu_seconds)
            samples[name].add_server(block.server_seconds)
    return samples


def backend_cpu(pid: int) -> float | None:
    """CPU seconds a process on this machine has run (a PostgreSQL backend: Linux
    /proc/PID/schedstat, in nanoseconds, not sampled by ticks), or None when unknown."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class ServerCPU:
    """The CPU of a PostgreSQL database's backends over a stretch of calls, when the server
    runs on this machine: the backends found before the stretch (their CPU then and after),
    and any found after it that were not there before (all of theirs: started during it).
    Finding them costs a query, made outside the stretch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _pids(self) -> set[int]:
        with self.engine.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            return set(conn.execute(query).scalars())

    def begin(self) -> dict[int, float] | None:
        if self.engine.dialect.name != "postgresql":
            return None
        found = {pid: backend_cpu(pid) for pid in self._pids()}  # (read after the query)
        known = {pid: cpu for pid, cpu in found.items() if cpu is not None}
        return known or None  # (none readable: the server is elsewhere)

    def since(self, began: dict[int, float]) -> float:
        used = 0.0
        for pid, before in began.items():
            now = backend_cpu(pid)
            if now is not None:
                used += now - before
        for pid in self._pids() - set(began):
            used += backend_cpu(pid) or 0.0
        return used


OUR_CODE = r"/(booking|events|projections)/"


def profile_calls(
    title: str, operation: Callable[[int], object], indices: range, limit: int = 30
) -> None:
    """Run `operation(i)` under cProfile and print where the time goes: our own functions
    by cumulative time, then the costliest functions anywhere by their own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for i in indices:
        operation(i)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"--- profile: {title}, {len(indices)} calls", file=out)
    stats.sort_stats("cumulative").print_stats(OUR_CODE, limit)
    stats.sort_stats("tottime").print_stats(limit // 2)
    print(out.getvalue(), flush=True)


# --- output -------------------------------------------------------------------------------


def per_second(rate: float) -> str:
    return f"{rate:,.0f}"


def millis(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:2] in ("≤ ", "≥ ") or cell[:1] in ("-", "+")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: the first column and text left-aligned, figures right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        parts = [
            cell.rjust(width) if i and _numeric(cell) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(cells[0]), rule, *(line(row) for row in cells[1:])]
    return "\n".join([title, *body])


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(table(title, header, rows), end="\n\n", flush=True)


def machine() -> str:
    """One line naming when and where the figures were taken."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.node()} · "
        f"{os.cpu_count()} CPUs · load {load} · Python {platform.python_version()}"
    )


# --- throwaway databases ------------------------------------------------------------------


def _admin(server: str) -> Engine:
    return create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def postgres_problem(server: str = POSTGRES_SERVER) -> str | None:
    """Why the PostgreSQL server cannot be used, or None when it answers."""
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect means: no server to use
        return f"{server} did not answer: {type(error).__name__}: {error}".splitlines()[0]
    finally:
        admin.dispose()
    return None


@contextmanager
def temporary_sqlite() -> Iterator[str]:
    """The URL of a SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tilavaraus-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.sqlite'}"


@contextmanager
def temporary_postgres(server: str = POSTGRES_SERVER) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on `server`, dropped afterwards."""
    name = f"tilavaraus_bench_{uuid.uuid4().hex[:12]}"
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def temporary_database(kind: str, server: str = POSTGRES_SERVER) -> Iterator[str]:
    if kind == "sqlite":
        with temporary_sqlite() as url:
            yield url
    elif kind == "postgresql":
        with temporary_postgres(server) as url:
            yield url
    else:
        raise ValueError(f"unknown database {kind!r}")


@contextmanager
def migrated_engine(kind: str, server: str = POSTGRES_SERVER) -> Iterator[Engine]:
    """An engine (events.sql.make_engine, as the app makes it) on a fresh, migrated database."""
    with temporary_database(kind, server) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


# --- the app, people, premises ------------------------------------------------------------


def bench_app(engine: Engine) -> Flask:
    """The real app on `engine`, without the scheduler; use `app.test_client()`."""
    return create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "SECRET_KEY": "bench",
            "BOOKING_TIMEZONE": "Europe/Helsinki",
            "BOOKING_INSTANCE_PATH": tempfile.gettempdir(),
            "BOOKING_RUN_SCHEDULER": False,
        }
    )


def repository_of(app: Flask) -> PremisesRepository:
    """The app's premises cache, so commands run outside HTTP share it with the views."""
    found: PremisesRepository = app.extensions["tilavaraus"].premises
    return found


@dataclass(frozen=True)
class Person:
    actor: Actor
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_person(engine: Engine, role: str, organisation_id: str | None = None) -> Person:
    """A user with an API token; a booker gets a new organisation unless one is given."""
    with write_transaction(engine) as conn:
        if role == "booker" and organisation_id is None:
            name = f"Bench association {uuid.uuid4().hex[:6]}"
            organisation_id = accounts.create_organisation(conn, name, "association", None, None)
        created = accounts.create_user(
            conn,
            email=f"{role}-{uuid.uuid4().hex[:10]}@bench.invalid",
            name=f"Bench {role}",
            role=role,
            organisation_id=organisation_id,
        )
    return Person(Actor(created.user_id, role, organisation_id), created.token)


EVERY_DAY = {d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def premises_profile(name: str, **overrides: Any) -> dict[str, Any]:
    """A complete catalogue entry (what POST /premises stores after its defaults)."""
    profile: dict[str, Any] = {
        "name": {"fi": name, "en": name},
        "description": {"fi": "Vertailutila", "en": "A benchmark room"},
        "address": "Raatihuoneenkatu 6, 50100 Mikkeli",
        "district": "keskusta",
        "capacity": 20,
        "free_of_charge": True,
        "hourly_price_cents": None,
        "free_use_conditions": {},
        "accessibility": ["step_free_access"],
        "equipment": ["projector"],
        "timezone": "Europe/Helsinki",
        "opening_hours": EVERY_DAY,
        "rules": {"min_notice_minutes": 0, "max_advance_days": 3650},
    }
    profile.update(overrides)
    return profile


def register_premises(
    engine: Engine,
    repository: PremisesRepository,
    staff: Actor,
    premises_id: str,
    profile: dict[str, Any],
) -> None:
    """Register premises through the command layer, as POST /api/v1/premises does."""

    def handle(conn: Any) -> Outcome:
        command = RegisterPremises(staff, premises_id, profile)
        run_premises_command(
            conn, repository, premises_id, command, Metadata(staff.user_id), now=datetime.now(UTC)
        )
        return Outcome(201, {})

    execute(engine, handle)


# --- the demo year ------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLoad:
    seconds: float
    summary: str  # booking.demo's, with the demo accounts


def load_demo(
    engine: Engine, repository: PremisesRepository, booking_count: int, seed: int = 2026
) -> DemoLoad:
    """The Mikkeli demo year, through the booking commands (`booking.demo.load`)."""
    from booking.demo import load

    began = time.perf_counter()
    summary = load(engine, repository, booking_count=booking_count, seed=seed, if_empty=False)
    return DemoLoad(time.perf_counter() - began, summary)
