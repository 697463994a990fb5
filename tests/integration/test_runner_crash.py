"""`booking projector` killed with SIGKILL in the middle of a batch, on both databases.

The projector is a real process; it is killed while its batch transaction holds uncommitted
writes (SQLite: it holds the write lock; PostgreSQL: its transaction has an xid), restarted,
killed again, and finally left to catch up. The read models must then equal a fresh rebuild
and count every booking exactly once.
"""

from __future__ import annotations

import os
import select as io_select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from booking.clock import system_clock
from booking.domain.commands import Actor, BookingRequest, CancelBooking, PlaceBooking
from booking.service import PremisesRepository, run_premises_command
from events.slot import Slot
from events.sql import read_transaction, write_transaction
from events.store import Metadata, events_table, head_position
from projections import rebuilding, runner
from tests.conftest import Api, at_test_time

BATCH = 50
KILLS = 2


def _history(api: Api, bookings: int) -> int:
    """Premises and `bookings` bookings (a fifth of them cancelled), placed in the past."""
    for n in range(4):
        api.premises(f"room-{n}", rules={"max_duration_minutes": 240})
    repository = PremisesRepository()
    org = api.organisation_id
    actor = Actor("crash-booker", "booker", org)
    first = datetime(2025, 1, 6, 8, tzinfo=UTC)
    placed = 0
    with write_transaction(api.engine) as conn:
        for n in range(bookings):
            premises_id = f"room-{n % 4}"
            start = first + timedelta(days=n // 4 // 6, hours=2 * (n // 4 % 6))
            booking_id = str(uuid.uuid4())
            request = BookingRequest(
                premises_id, Slot(start, start + timedelta(hours=1)), "x", 3, False, "", org
            )
            now = start - timedelta(days=3)
            run_premises_command(
                conn,
                repository,
                premises_id,
                PlaceBooking(actor, booking_id, request, now),
                Metadata(actor.user_id),
                now=datetime.now(UTC),
            )
            placed += 1
            if n % 5 == 0:
                cancel = CancelBooking(actor, booking_id, "no", now + timedelta(hours=1))
                run_premises_command(
                    conn,
                    repository,
                    premises_id,
                    cancel,
                    Metadata(actor.user_id),
                    now=datetime.now(UTC),
                )
    return placed


def _projector(url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BOOKING_DATABASE_URL": url,
        "BOOKING_SECRET_KEY": "crash-test",
        "BOOKING_INSTANCE_PATH": str(tmp_path),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "booking.cli",
            "projector",
            f"--batch-size={BATCH}",
            "--poll-seconds=0.1",
        ],
        env=at_test_time(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _in_a_batch(engine: Engine) -> bool:
    """Whether another connection holds an open write transaction on the database."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            )
        ).scalar_one()
    return bool(found)


def _position(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return runner.read_checkpoint(conn, "usage")


def _head(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return head_position(conn)


def _kill_mid_batch(engine: Engine, process: subprocess.Popen[bytes]) -> bool:
    """Wait for a committed batch, then SIGKILL while the next is open; False if it ended."""
    started = _position(engine)
    deadline = time.monotonic() + 60
    while _position(engine) == started:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    while time.monotonic() < deadline:
        if _position(engine) >= _head(engine):
            return False
        if _in_a_batch(engine):
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            return True
    raise AssertionError("the projector never held a batch open")


def _wait_until_started(process: subprocess.Popen[bytes]) -> str:
    """The projector's output up to its start line (it sets its signal handlers before)."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "projector started" not in seen:
        assert time.monotonic() < deadline and process.poll() is None, seen
        ready, _, _ = io_select.select([process.stdout], [], [], 0.5)
        if ready:
            seen += process.stdout.readline().decode()
    return seen


@pytest.mark.slow
def test_killed_mid_batch_then_restarted_equals_a_rebuild(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    placed = _history(api, bookings=300)
    engine = api.engine
    kills = 0
    for _ in range(KILLS):
        process = _projector(database_url, tmp_path)
        try:
            killed = _kill_mid_batch(engine, process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        kills += killed
        if not killed:
            break
        assert process.returncode == -signal.SIGKILL
        assert _position(engine) < _head(engine)  # the batch it was in never committed
    assert kills >= 1
    process = _projector(database_url, tmp_path)
    # A SIGTERM before the projector sets its handler would simply kill it.
    started_output = _wait_until_started(process)
    deadline = time.monotonic() + 60
    while _position(engine) < _head(engine):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output = started_output + process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "projector stopped" in output

    with read_transaction(engine) as conn:
        live = {
            name: rebuilding.contents(conn, runner.by_name([name])[0])
            for name in ("usage", "registry")
        }
        usage = runner.by_name(["usage"])[0]
        days = usage.tables[7]
        counted = conn.execute(select(func.sum(days.c.bookings))).scalar_one()
        cancelled = conn.execute(select(func.sum(days.c.cancellations))).scalar_one()
        booked = conn.execute(select(func.sum(days.c.booked_s))).scalar_one()
        placed_events = conn.execute(
            select(func.count()).where(events_table.c.type == "BookingPlaced")
        ).scalar_one()
    assert int(counted) == placed == placed_events  # no booking counted twice, none lost
    assert int(cancelled) == len(range(0, placed, 5))
    assert int(booked) == (placed - int(cancelled)) * 3600
    rebuilding.rebuild(engine, runner.by_name(["usage", "registry"]), clock=system_clock)
    with read_transaction(engine) as conn:
        rebuilt: dict[str, Any] = {
            name: rebuilding.contents(conn, runner.by_name([name])[0])
            for name in ("usage", "registry")
        }
    assert rebuilt == live
