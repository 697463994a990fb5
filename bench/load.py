"""Load test of the production setup beside a minimal Flask app, on the same PostgreSQL.

The system under test is what README.md's "Production" section describes: `booking serve`
(gunicorn, several gthread workers) on PostgreSQL, one `booking projector` and one
`booking scheduler`, each a process of its own. The baseline is a minimal Flask app served by
the same gunicorn settings on the same database, doing one SELECT or one INSERT per request.
Both get the same mixed traffic from the same client, in alternating rounds (so a busy spell
of a shared machine falls on both):

    80 % reads   50 % one premises' availability for a week, 30 % a premises' iCalendar feed
    15 % bookings   on distinct slots of 20 premises (so every one should be 201)
     5 % cancellations   of a booking the same client made earlier (a booking if none yet)

The client is Python: threads, each with one keep-alive connection, in a closed loop — no
extra tool to install, and it can follow the ids that bookings return. It runs on the same
two cores as the servers, alike for both systems, so the ratio between them is the figure.
Everything listens on 127.0.0.1 only; each round is bounded by time and by a request count.

Reported: requests, throughput, p50 and p99 latency and 5xx per system and per kind of
request; the CPU time per request of every process during each system's rounds (the
servers, projector, scheduler, this client, and the PostgreSQL backends of the run's
database), which a busy shared machine disturbs far less than throughput (the rounds begin
once the projector has started and caught up, so its start-up falls in none); then the checks:
no 5xx, no overlapping bookings (SQL on the booking list and the availability table), every
projection caught up within 5 s after the load stops. Targets (issue 18): the app's
throughput ≥ 0.7 × the baseline's, at an app p99 ≤ 100 ms.

    python -m bench.load [--quick] [--seconds S] [--rounds R] [--clients C] [--workers W]
                         [--threads T] [--mix availability=50,feed=30,booking=15,cancel=5]

`--mix booking=100` (or any weights) loads one kind alone: to see what it costs.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, request
from sqlalchemy import Engine, text

from bench.common import (
    POSTGRES_SERVER,
    Person,
    machine,
    millis,
    new_person,
    percentile,
    postgres_problem,
    print_table,
    temporary_postgres,
)
from booking.app import create_app
from booking.migrate import upgrade
from events.sql import make_engine, read_transaction
from projections import runner

HELSINKI = ZoneInfo("Europe/Helsinki")
PREMISES = 20
SLOTS_PER_DAY = 14  # one-hour bookings from 08:00 to 22:00
MIX = (("availability", 50), ("feed", 30), ("booking", 15), ("cancel", 5))
MAX_REQUESTS_PER_ROUND = 200_000
THROUGHPUT_TARGET = 0.7  # × the baseline's (issue 18; it was 0.5)
STARTUP_SECONDS = 120.0  # how long the projector may take to start and catch up
SECRET_KEY = "bench-load"  # BOOKING_SECRET_KEY of the servers
CATCH_UP_LIMIT = 5.0  # seconds: the projections must reflect the head by then

# --- the baseline: one statement per request ---------------------------------------------

BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_load_bookings (
    id BIGSERIAL PRIMARY KEY,
    premises_id VARCHAR(100) NOT NULL,
    start TIMESTAMPTZ NOT NULL,
    "end" TIMESTAMPTZ NOT NULL,
    title VARCHAR(300) NOT NULL,
    attendees INTEGER NOT NULL,
    cancelled_by BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_bench_load_premises_start ON bench_load_bookings (premises_id, start)
"""


def baseline_app() -> Flask:
    """What gunicorn serves as the baseline (`bench.load:baseline_app()`)."""
    app = Flask("baseline")
    engine = make_engine(os.environ["BENCH_LOAD_DATABASE_URL"])

    def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            found = conn.execute(text(sql), params).mappings().all()
        return [{k: str(v) for k, v in row.items()} for row in found]

    @app.get("/availability/<premises_id>")
    def availability(premises_id: str) -> Any:
        first = date.fromisoformat(request.args["from"])
        last = date.fromisoformat(request.args["to"]) + timedelta(days=1)
        busy = rows(
            'SELECT start, "end" FROM bench_load_bookings WHERE premises_id = :p '
            'AND start < :last AND "end" > :first AND cancelled_by IS NULL ORDER BY start',
            p=premises_id,
            first=datetime.combine(first, datetime.min.time(), HELSINKI),
            last=datetime.combine(last, datetime.min.time(), HELSINKI),
        )
        return jsonify({"premises_id": premises_id, "busy": busy})

    @app.get("/feed/<premises_id>")
    def feed(premises_id: str) -> Any:
        found = rows(
            'SELECT id, start, "end", title FROM bench_load_bookings WHERE premises_id = :p '
            "AND start > now() - interval '30 days' ORDER BY start",
            p=premises_id,
        )
        body = "".join(f"BEGIN:VEVENT\r\nUID:{r['id']}\r\nEND:VEVENT\r\n" for r in found)
        return body, 200, {"Content-Type": "text/calendar; charset=utf-8"}

    @app.post("/bookings")
    def book() -> Any:
        body = request.get_json()
        with engine.begin() as conn:
            booking_id = conn.execute(
                text(
                    'INSERT INTO bench_load_bookings (premises_id, start, "end", title, attendees) '
                    "VALUES (:p, :s, :e, :t, :a) RETURNING id"
                ),
                {
                    "p": body["premises_id"],
                    "s": datetime.fromisoformat(body["start"]),
                    "e": datetime.fromisoformat(body["end"]),
                    "t": body["title"],
                    "a": body["attendees"],
                },
            ).scalar_one()
        return jsonify({"id": str(booking_id), "status": "confirmed"}), 201

    @app.post("/bookings/<int:booking_id>/cancel")
    def cancel(booking_id: int) -> Any:
        # One INSERT, as the event-sourced cancel appends one event: a row that cancels.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO bench_load_bookings "
                    '(premises_id, start, "end", title, attendees, cancelled_by) '
                    "VALUES ('-', now(), now(), 'cancel', 0, :b)"
                ),
                {"b": booking_id},
            )
        return jsonify({"id": str(booking_id), "status": "cancelled"})

    return app


# --- the traffic -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where one system answers, and how its four kinds of request are spelled."""

    name: str
    port: int
    token: str
    app: bool  # the real app (else the baseline)
    first_day: date
    mix: tuple[tuple[str, int], ...] = MIX
    slots: Iterator[int] = field(default_factory=itertools.count)

    def slot(self) -> tuple[str, datetime]:
        n = next(self.slots)  # atomic under the GIL: every booking gets its own slot
        premises_id = f"room-{n % PREMISES}"
        k = n // PREMISES
        day = self.first_day + timedelta(days=k // SLOTS_PER_DAY)
        start = datetime.combine(day, datetime.min.time(), HELSINKI) + timedelta(
            hours=8 + k % SLOTS_PER_DAY
        )
        return premises_id, start

    def request(self, kind: str, rng: random.Random, mine: list[str]) -> tuple[str, str, Any]:
        premises_id = f"room-{rng.randrange(PREMISES)}"
        first = self.first_day + timedelta(days=rng.randrange(7))
        week = f"from={first}&to={first + timedelta(days=6)}"
        if kind == "cancel" and mine:
            booking_id = mine.pop(rng.randrange(len(mine)))
            path = (
                f"/api/v1/bookings/{booking_id}/cancel"
                if self.app
                else f"/bookings/{booking_id}/cancel"
            )
            return "POST", path, {"reason": "Ei tarvita"}
        if kind in ("booking", "cancel"):
            premises_id, start = self.slot()
            body = {
                "premises_id": premises_id,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=50)).isoformat(),
                "title": "Kuorotreenit",
                "attendees": 8,
            }
            return "POST", "/api/v1/bookings" if self.app else "/bookings", body
        if kind == "availability":
            if self.app:
                return "GET", f"/api/v1/premises/{premises_id}/availability?{week}", None
            return "GET", f"/availability/{premises_id}?{week}", None
        return (
            "GET",
            (f"/feeds/premises/{premises_id}.ics" if self.app else f"/feed/{premises_id}"),
            None,
        )


@dataclass
class Tally:
    """Latencies and statuses per kind of request."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    cpu: Counter[str] = field(default_factory=Counter)  # seconds per process, its rounds
    lock: threading.Lock = field(default_factory=threading.Lock)

    def merge(self, seconds: dict[str, list[float]], statuses: Counter[int]) -> None:
        with self.lock:
            for kind, found in seconds.items():
                self.seconds[kind].extend(found)
            self.statuses.update(statuses)

    @property
    def all_seconds(self) -> list[float]:
        return [s for found in self.seconds.values() for s in found]

    @property
    def count(self) -> int:
        return len(self.all_seconds)

    @property
    def five_hundreds(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def _client(target: Target, seed: int, until: float, budget: Iterator[int], tally: Tally) -> None:
    rng = random.Random(seed)
    kinds = [k for k, _ in target.mix]
    weights = [w for _, w in target.mix]
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"}
    mine: list[str] = []
    seconds: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[int] = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    while time.monotonic() < until and next(budget) < MAX_REQUESTS_PER_ROUND:
        kind = rng.choices(kinds, weights)[0]
        method, path, body = target.request(kind, rng, mine)
        payload = json.dumps(body) if body is not None else None
        began = time.perf_counter()
        try:
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            with tally.lock:
                tally.errors[type(error).__name__] += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
            continue
        seconds[kind].append(time.perf_counter() - began)
        statuses[response.status] += 1
        if method == "POST" and response.status == 201:
            mine.append(json.loads(data)["id"])
    connection.close()
    tally.merge(seconds, statuses)


def run_round(target: Target, clients: int, seconds: float, tally: Tally, seed: int) -> None:
    until = time.monotonic() + seconds
    budget = itertools.count()
    threads = [
        threading.Thread(target=_client, args=(target, seed * 1000 + i, until, budget, tally))
        for i in range(clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    tally.elapsed += time.perf_counter() - began


# --- processes ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """The processes this run started (each in a group of its own), ended on exit."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.started: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}

    def cpu_seconds(self, backends: Iterable[int] = ()) -> dict[str, float]:
        """CPU time used so far by each started process and its children, and by the
        PostgreSQL `backends` given (Linux /proc)."""
        tick = os.sysconf("SC_CLK_TCK")
        found = dict.fromkeys([*self.names.values(), "postgres"], 0.0)
        wanted = set(backends)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                group = int(fields[2])  # process group: the one start_new_session made
                used = (int(fields[11]) + int(fields[12])) / tick
                if group in self.names:
                    found[self.names[group]] += used
                elif int(stat.parent.name) in wanted:
                    found["postgres"] += used
        found["load client"] = time.process_time()
        return found

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        self.names[process.pid] = name
        return process

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _wait_until_serving(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} stopped:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status in (200, 404):
                return
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not start")


# --- checks after the load ---------------------------------------------------------------

OVERLAPS = """
SELECT count(*) FROM {table} a JOIN {table} b
  ON a.premises_id = b.premises_id AND a.{key} < b.{key}
 AND a.start < b."end" AND b.start < a."end"
 WHERE {active}
"""


def _backends(engine: Engine) -> list[int]:
    """The process ids of the PostgreSQL backends serving this run's database."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def overlapping(engine: Engine) -> dict[str, int]:
    """Active bookings of one premises that overlap, in each table that holds them."""
    active = (
        "a.status NOT IN ('cancelled', 'rejected') AND b.status NOT IN ('cancelled', 'rejected')"
    )
    busy = "a.kind <> 'closure' AND b.kind <> 'closure'"
    with read_transaction(engine) as conn:
        return {
            "booking_list": conn.execute(
                text(OVERLAPS.format(table="booking_list", key="id", active=active))
            ).scalar_one(),
            "availability_busy": conn.execute(
                text(OVERLAPS.format(table="availability_busy", key="ref_id", active=busy))
            ).scalar_one(),
        }


def catch_up_seconds(engine: Engine, limit: float = 30.0) -> float:
    """How long until every projection reflects the head (inf when not within `limit`)."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        with read_transaction(engine) as conn:
            if all(s.lag == 0 for s in runner.status(conn)):
                return time.perf_counter() - began
        time.sleep(0.05)
    return float("inf")


# --- the run -----------------------------------------------------------------------------


def _setup(url: str) -> tuple[str, str]:
    """Migrated schema, the baseline's table, a booker and staff; (booker token, staff token)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            for statement in BASELINE_TABLE.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
    finally:
        engine.dispose()
    return people(url)


def people(url: str) -> tuple[str, str]:
    """A booker and staff in the migrated database at `url`; (booker token, staff token).

    The people are made inside an app with the servers' secret key, which seals their
    personal data: a person sealed under another key could not be read by the servers."""
    engine = make_engine(url)
    try:
        app = create_app(
            {
                "ENGINE": engine,
                "BOOKING_DATABASE_URL": url,
                "SECRET_KEY": SECRET_KEY,
                "BOOKING_INSTANCE_PATH": tempfile.gettempdir(),
                "BOOKING_RUN_SCHEDULER": False,
            }
        )
        with app.app_context():
            booker = new_person(engine, "booker")
            staff = new_person(engine, "staff")
    finally:
        engine.dispose()
    return booker.token, staff.token


def premises_body(n: int) -> dict[str, Any]:
    """The load's room n: open every day 08-22, bookable at once and a year ahead."""
    every_day = {d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return {
        "id": f"room-{n}",
        "name": {"fi": f"Huone {n}", "en": f"Room {n}"},
        "address": "Raatihuoneenkatu 6, 50100 Mikkeli",
        "district": "keskusta",
        "capacity": 20,
        "free_of_charge": n % 2 == 0,
        "opening_hours": every_day,
        "rules": {"min_notice_minutes": 0, "max_advance_days": 365},
    }


@dataclass(frozen=True)
class InProcess:
    """bench.load's app inside this process: its test client, the booker and the traffic."""

    client: Any  # the Flask test client
    booker: Person
    target: Target


@contextlib.contextmanager
def in_process(postgres: str) -> Iterator[InProcess]:
    """The app of bench.load on a fresh migrated PostgreSQL database with its premises, a
    booker and staff, answered by the Flask test client in this process (for benchmarks that
    look inside a request: bench.http_kinds, bench.round_trips)."""
    with temporary_postgres(postgres) as url, tempfile.TemporaryDirectory() as folder:
        engine = make_engine(url)
        try:
            upgrade(engine)
            app = create_app(
                {
                    "ENGINE": engine,
                    "BOOKING_DATABASE_URL": url,
                    "SECRET_KEY": SECRET_KEY,
                    "BOOKING_INSTANCE_PATH": folder,
                    "BOOKING_RUN_SCHEDULER": False,
                }
            )
            with app.app_context():
                booker, staff = new_person(engine, "booker"), new_person(engine, "staff")
            client = app.test_client()
            for n in range(PREMISES):
                body = premises_body(n)
                answer = client.post("/api/v1/premises", json=body, headers=staff.headers)
                assert answer.status_code == 201, answer.data
            first = datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=14)
            yield InProcess(client, booker, Target("app", 0, booker.token, True, first, MIX))
        finally:
            engine.dispose()


def _register_premises(port: int, token: str) -> None:
    for n in range(PREMISES):
        body = premises_body(n)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request("POST", "/api/v1/premises", json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 201:
            raise SystemExit(f"could not register room-{n}: {response.status} {data[:300]!r}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start both systems on one fresh database, load them in alternating rounds, check."""
    with temporary_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as folder:
        booker, staff = _setup(url)
        env = {
            **os.environ,
            "BOOKING_DATABASE_URL": url,
            "BENCH_LOAD_DATABASE_URL": url,
            "BOOKING_INSTANCE_PATH": folder,
            "BOOKING_SECRET_KEY": SECRET_KEY,
            "BOOKING_RUN_SCHEDULER": "0",  # the scheduler runs as a process of its own
        }
        processes = Processes(Path(folder), env)
        try:
            app_port, baseline_port = _free_port(), _free_port()
            workers = ["--workers", str(args.workers), "--threads", str(args.threads)]
            app = processes.start(
                "serve", "-m", "booking.cli", "serve", "--host", "127.0.0.1",
                "--port", str(app_port), *workers,
            )  # fmt: skip
            baseline = processes.start(
                "baseline", "-m", "gunicorn", "--bind", f"127.0.0.1:{baseline_port}",
                "--worker-class", "gthread", *workers, "--access-logfile", "-",
                "bench.load:baseline_app()",
            )  # fmt: skip
            _wait_until_serving(app_port, app, Path(folder) / "serve.log")
            _wait_until_serving(baseline_port, baseline, Path(folder) / "baseline.log")
            processes.start("projector", "-m", "booking.cli", "projector")
            processes.start("scheduler", "-m", "booking.cli", "scheduler")
            _register_premises(app_port, staff)
            # The projector's start-up (the app, its catalogues: 1-2 s of CPU, many more on
            # a busy machine) must not fall into the first rounds' CPU: wait until it has
            # caught up with the premises just registered.
            ready = make_engine(url)
            try:
                started = catch_up_seconds(ready, limit=STARTUP_SECONDS)
            finally:
                ready.dispose()
            if started == float("inf"):
                raise RuntimeError("the projector did not catch up after it started")
            first = datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=14)
            targets = {
                "app": Target("app", app_port, booker, True, first, args.mix),
                "baseline": Target("baseline", baseline_port, booker, False, first, args.mix),
            }
            tallies = {name: Tally() for name in targets}
            for target in targets.values():  # warm-up, not counted
                run_round(target, args.clients, args.warmup, Tally(), seed=99)
            engine = make_engine(url)
            try:
                for round_number in range(args.rounds):
                    order = ("baseline", "app") if round_number % 2 == 0 else ("app", "baseline")
                    for name in order:
                        backends = _backends(engine)  # the pools' connections, kept open
                        before = processes.cpu_seconds(backends)
                        run_round(
                            targets[name], args.clients, args.seconds, tallies[name], round_number
                        )
                        after = processes.cpu_seconds(backends)
                        tallies[name].cpu.update({k: after[k] - before[k] for k in after})
                cpu = processes.cpu_seconds()
                del cpu["postgres"]  # its backends come and go over a whole run
                caught_up = catch_up_seconds(engine)
                overlaps = overlapping(engine)
            finally:
                engine.dispose()
        finally:
            processes.close()
    return {"tallies": tallies, "caught_up": caught_up, "overlaps": overlaps, "cpu": cpu}


def report(args: argparse.Namespace, found: dict[str, Any]) -> bool:
    tallies: dict[str, Tally] = found["tallies"]
    print(machine())
    print(
        f"{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s per system, "
        f"gunicorn {args.workers} workers × {args.threads} threads; mix "
        + ", ".join(f"{k} {w}" for k, w in args.mix)
    )
    rows = []
    for name, tally in tallies.items():
        every = tally.all_seconds
        rows.append(
            [
                name,
                tally.count,
                f"{tally.count / tally.elapsed:.0f}" if tally.elapsed else "-",
                millis(percentile(every, 50)) if every else "-",
                millis(percentile(every, 99)) if every else "-",
                tally.five_hundreds,
                sum(tally.errors.values()),
            ]
        )
    print_table("Mixed load", ["system", "requests", "req/s", "p50", "p99", "5xx", "errors"], rows)
    kinds = [
        [name, kind, len(s), millis(percentile(s, 50)), millis(percentile(s, 99))]
        for name, tally in tallies.items()
        for kind, s in sorted(tally.seconds.items())
        if s
    ]
    print_table("By kind", ["system", "kind", "requests", "p50", "p99"], kinds)
    names = [n for n in found["cpu"] if n != "postgres"] + ["postgres"]
    print_table(
        "CPU ms per request during each system's rounds (servers, projector, scheduler, "
        "the database's backends, this client)",
        ["system", *names, "total"],
        [
            [
                name,
                *(f"{tally.cpu[n] * 1000 / max(tally.count, 1):.2f}" for n in names),
                f"{sum(tally.cpu.values()) * 1000 / max(tally.count, 1):.2f}",
            ]
            for name, tally in tallies.items()
        ],
    )
    print(
        "CPU seconds over the whole run, start-up and warm-up included: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in found["cpu"].items())
    )
    app, baseline = tallies["app"], tallies["baseline"]
    per_request = {n: sum(t.cpu.values()) / max(t.count, 1) for n, t in tallies.items()}
    print(
        f"CPU per request, every process: app {per_request['app'] * 1000:.2f} ms, baseline "
        f"{per_request['baseline'] * 1000:.2f} ms — the baseline's is "
        f"{per_request['baseline'] / max(per_request['app'], 1e-9):.2f} × the app's "
        "(what the throughput ratio tends to when CPU is all that is short); load average "
        "at the end " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    throughput = (app.count / app.elapsed) / (baseline.count / baseline.elapsed)
    p99 = percentile(app.all_seconds, 99)
    checks = {
        f"throughput {throughput:.2f} × baseline (≥ {THROUGHPUT_TARGET})": (
            throughput >= THROUGHPUT_TARGET
        ),
        f"app p99 {p99 * 1000:.0f} ms (≤ 100 ms)": p99 <= 0.1,
        f"5xx: app {app.five_hundreds}, baseline {baseline.five_hundreds}": app.five_hundreds == 0,
        f"connection errors: app {sum(app.errors.values())}": not app.errors,
        f"statuses of the app: {dict(sorted(app.statuses.items()))}": True,
        f"overlapping active bookings: {found['overlaps']}": not any(found["overlaps"].values()),
        f"projections caught up {found['caught_up']:.2f} s after the load (≤ 5 s)": found[
            "caught_up"
        ]
        <= CATCH_UP_LIMIT,
    }
    for text_, ok in checks.items():
        print(f"  {'ok  ' if ok else 'MISS'} {text_}")
    return all(checks.values())


def _mix(text_: str) -> tuple[tuple[str, int], ...]:
    known = {k for k, _ in MIX}
    found = []
    for part in text_.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in known or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: kind=weight, kinds {sorted(known)}")
        found.append((kind.strip(), int(weight)))
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run")
    parser.add_argument("--databases", default="postgresql", help="only postgresql is loaded")
    parser.add_argument("--postgres", default=POSTGRES_SERVER, help="server URL (any database)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per round and system")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds, not counted")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers, both systems")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--mix",
        type=_mix,
        default=MIX,
        help="kind=weight,… of availability, feed, booking, cancel (default: "
        + ",".join(f"{k}={w}" for k, w in MIX)
        + ")",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 4.0, 1, 1.0
    if "postgresql" not in args.databases.split(","):
        print("bench.load runs on PostgreSQL only (the production setup); skipped")
        return
    if problem := postgres_problem(args.postgres):
        print(f"PostgreSQL skipped: {problem}", file=sys.stderr)
        return
    if not report(args, measure(args)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
