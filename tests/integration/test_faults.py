"""Faults: a `booking serve` killed with SIGKILL in the middle of a burst of bookings, a
PostgreSQL connection lost during a request, and a client that times out and retries.

- The server is a real process (gunicorn), killed with its workers while bookings are in
  flight. Every 201 the clients saw must be in the log; every booking in the log must come
  from a request that was sent, complete with its read models and its stored
  Idempotency-Key outcome; retrying every unanswered request with its key after a restart
  books each of them exactly once.
- A backend terminated by `pg_terminate_backend` while a request waits on a lock gives 503
  with Retry-After, appends nothing, and the next request succeeds; so does a request after
  the whole database was unreachable (a TCP proxy in the test is cut, then restored).
- A client whose request times out while the server still works on it retries with the
  same Idempotency-Key, several times: one booking, and every answer names it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from booking.app import create_app
from booking.tables import idempotency_keys
from events.sql import make_engine, read_transaction
from events.store import events_table
from projections.availability import busy_table
from projections.bookings import bookings_table
from tests.conftest import Api, at_test_time, future_weekday, local

BURST = 60  # bookings sent in the burst
KILL_AFTER = 15  # acknowledged bookings before the kill
CLIENTS = 6


# --- a real server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """`booking serve` in a process group of its own (gunicorn's master and workers)."""

    database_url: str
    tmp_path: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        return self.start_with(scheduler=False)

    def start_with(self, scheduler: bool) -> Server:
        env = {
            **os.environ,
            "BOOKING_DATABASE_URL": self.database_url,
            "BOOKING_INSTANCE_PATH": str(self.tmp_path / "instance"),
            "BOOKING_SECRET_KEY": "tests",
            "BOOKING_RUN_SCHEDULER": "1" if scheduler else "0",
        }
        command = [sys.executable, "-m", "booking.cli", "serve", "--host", "127.0.0.1"]
        log = (self.tmp_path / "server.log").open("ab")
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), "--workers", "2", "--threads", "4"],
            env=at_test_time(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if self.request("GET", "/healthz", timeout=2)[0] == 200:
                    return self
            assert self.process.poll() is None, (self.tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once: nothing gets to clean up."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 20,
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = json.dumps(body) if body is not None else None
            sent = {"Content-Type": "application/json", **(headers or {})}
            connection.request(method, path, payload, sent)
            response = connection.getresponse()
            data = response.read()
            is_json = response.getheader("Content-Type", "").endswith("json")
            return response.status, json.loads(data) if is_json else data
        finally:
            connection.close()


@pytest.fixture
def server(api: Api, database_url: str, tmp_path: Path) -> Iterator[Server]:
    found = Server(database_url, tmp_path)
    yield found
    found.stop()


def _slot(n: int) -> dict[str, str]:
    """Bookings n = 0, 1, … never overlap: 45 minutes each, 12 a day from 08:00."""
    day = future_weekday(0) + timedelta(days=n // 12)
    start = local(day, 8 + n % 12)
    return {"start": start.isoformat(), "end": (start + timedelta(minutes=45)).isoformat()}


def _body(n: int, premises_id: str = "room") -> dict[str, Any]:
    return {"premises_id": premises_id, "title": f"Varaus {n}", "attendees": 3, **_slot(n)}


def _placed(engine: Engine) -> list[str]:
    """Booking ids of every BookingPlaced in the log, in log order."""
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(events_table.c.data).where(events_table.c.type == "BookingPlaced")
        )
        return [row.data["booking_id"] for row in rows]


def _complete(engine: Engine, booking_ids: list[str]) -> None:
    """Every placed booking has its read-model rows and its stored outcome: no command was
    left half-written, and each stream's versions run 1, 2, 3… without a gap."""
    with read_transaction(engine) as conn:
        listed = set(conn.execute(select(bookings_table.c.id)).scalars())
        busy = set(conn.execute(select(busy_table.c.ref_id)).scalars())
        stored = {
            row.body.get("id")
            for row in conn.execute(select(idempotency_keys.c.body))
            if isinstance(row.body, dict)
        }
        versions = conn.execute(
            select(events_table.c.stream, func.count(), func.max(events_table.c.version)).group_by(
                events_table.c.stream
            )
        ).all()
    assert set(booking_ids) <= listed
    assert set(booking_ids) <= busy
    assert set(booking_ids) <= stored
    assert all(count == top for _, count, top in versions), versions


# --- kill -9 in the middle of a burst ----------------------------------------------------


def test_sigkill_in_a_burst_loses_no_acknowledged_booking(api: Api, server: Server) -> None:
    api.premises("room", rules={"max_advance_days": 365})
    headers = api.headers("booker")
    server.start()
    acknowledged: dict[int, str] = {}
    unanswered: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def send(n: int) -> None:
        key = {"Idempotency-Key": f"burst-{n}", **headers}
        try:
            status, body = server.request("POST", "/api/v1/bookings", _body(n), key, timeout=15)
        except (OSError, http.client.HTTPException):  # refused, reset or cut off by the kill
            with lock:
                unanswered.add(n)
            return
        assert status == 201, (n, status, body)
        with lock:
            acknowledged[n] = body["id"]
            if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()  # while the other clients' requests are in flight

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(send, range(BURST)))
    assert killed.is_set() and unanswered, "the kill came too late to hit anything in flight"

    in_log = _placed(api.engine)
    assert set(acknowledged.values()) <= set(in_log)  # nothing acknowledged was lost
    assert len(in_log) == len(set(in_log))
    assert len(in_log) <= len(acknowledged) + len(unanswered)
    _complete(api.engine, in_log)

    # Restarted, every unanswered request is sent again with its key: booked exactly once.
    server.start()
    for n in sorted(unanswered):
        key = {"Idempotency-Key": f"burst-{n}", **headers}
        status, body = server.request("POST", "/api/v1/bookings", _body(n), key)
        assert status == 201, (n, status, body)
        acknowledged[n] = body["id"]
    final = _placed(api.engine)
    assert sorted(final) == sorted(acknowledged.values())
    assert len(final) == BURST
    assert [b for b in in_log if b in final] == in_log  # those before the kill kept as they were
    _complete(api.engine, final)


# --- a client that times out and retries -------------------------------------------------


@contextlib.contextmanager
def _writes_held(database_url: str) -> Iterator[None]:
    """Hold every writer up: SQLite's write lock, or PostgreSQL's lock on the events table."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        connection.isolation_level = None
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url) as connection:
        connection.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()


def test_retries_after_a_client_timeout_never_double_book(
    api: Api, server: Server, database_url: str
) -> None:
    api.premises("room")
    headers = {"Idempotency-Key": "retry-me", **api.headers("booker")}
    server.start()
    with _writes_held(database_url):
        for _ in range(3):  # each attempt gives up while the server is still on it
            with pytest.raises(TimeoutError):
                server.request("POST", "/api/v1/bookings", _body(0), headers, timeout=0.5)
    status, first = server.request("POST", "/api/v1/bookings", _body(0), headers)
    assert status == 201, first
    status, again = server.request("POST", "/api/v1/bookings", _body(0), headers)
    assert (status, again) == (201, first)
    deadline = time.monotonic() + 20  # the timed-out requests finish on the server
    while time.monotonic() < deadline and _pending(api.engine):
        time.sleep(0.1)
    assert _placed(api.engine) == [first["id"]]
    # The same key with another body is a client error, not a second booking.
    status, other = server.request("POST", "/api/v1/bookings", _body(1), headers)
    assert status == 422, other
    assert _placed(api.engine) == [first["id"]]


def _pending(engine: Engine) -> bool:
    """Whether some server thread still has a transaction open on PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return False
    with read_transaction(engine) as conn:
        busy = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active'"
            )
        ).scalar_one()
    return bool(busy)


# --- PostgreSQL goes away ----------------------------------------------------------------


def _app(url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "ENGINE": make_engine(url),
            "BOOKING_DATABASE_URL": url,
            "SECRET_KEY": "tests",
            "BOOKING_INSTANCE_PATH": str(tmp_path),
            "BOOKING_RUN_SCHEDULER": False,
            "TESTING": True,
        }
    )


def _terminate_the_waiter(admin_url: str, database: str) -> None:
    """From another connection: end the backend that waits on a lock in `database`."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchall()
            if found:
                for (pid,) in found:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                return
            time.sleep(0.02)
    raise AssertionError("no request was waiting on the lock")


@pytest.mark.parametrize(
    ("table", "call"),
    [
        ("events", lambda api: api.book("room", *_times(0))),
        ("availability_busy", lambda api: api.get(_availability())),
    ],
    ids=["booking", "availability"],
)
def test_a_connection_lost_mid_request_is_503_then_the_next_request_works(
    postgres_url: str, tmp_path: Path, table: str, call: Any
) -> None:
    app = _app(postgres_url, tmp_path)
    api = Api(app, app.test_client())
    api.premises("room")
    api.token("booker")
    before = _placed(api.engine)
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    answers: list[Any] = []
    with psycopg.connect(plain) as blocker:
        blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        waiting = threading.Thread(target=lambda: answers.append(call(api)))
        waiting.start()
        _terminate_the_waiter(plain, make_url(postgres_url).database or "")
        waiting.join(20)
        blocker.rollback()
    (lost,) = answers
    assert lost.status_code == 503, lost.get_json()
    assert lost.mimetype == "application/problem+json"
    assert lost.headers["Retry-After"]
    assert _placed(api.engine) == before
    following = call(api)
    assert following.status_code in (200, 201), following.get_json()
    api.engine.dispose()


def _times(n: int) -> tuple[Any, Any]:
    slot = _slot(n)
    from datetime import datetime

    return datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])


def _availability() -> str:
    first = future_weekday(0)
    return f"/api/v1/premises/room/availability?from={first}&to={first + timedelta(days=6)}"


class Proxy:
    """A TCP proxy on loopback to the database, which the test can cut and restore."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> Proxy:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a database that went away."""
        if self.listener is not None:
            # shutdown first: a close alone leaves a listener that a thread blocks on open
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()


def test_a_database_outage_is_503_and_service_resumes_when_it_is_back(
    postgres_url: str, tmp_path: Path
) -> None:
    real = make_url(postgres_url)
    proxy = Proxy(real.port or 5432).start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    app = _app(url, tmp_path)
    api = Api(app, app.test_client())
    api.premises("room")
    token = api.token("booker")
    assert api.get(_availability()).status_code == 200
    try:
        proxy.cut()
        down = api.get(_availability())
        assert down.status_code == 503, down.get_data()
        assert down.headers["Retry-After"]
        booking = api.post(
            "/api/v1/bookings", _body(0), headers={"Authorization": f"Bearer {token}"}
        )
        assert booking.status_code == 503, booking.get_data()
        assert api.get("/healthz").status_code == 503
        proxy.start()
        assert api.get("/healthz").status_code == 200
        assert api.get(_availability()).status_code == 200
        assert api.book("room", *_times(0)).status_code == 201
    finally:
        proxy.cut()
        api.engine.dispose()
