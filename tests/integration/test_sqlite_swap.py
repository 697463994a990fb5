"""SQLite's rebuild of the inline projections swaps its copies in by their root pages
(`projections.shadowing.SQLiteShadow`): the copies are built in the main database in short
write transactions while bookings go on, the rows the catch-up changes after that are
copied again, and the swap exchanges root pages in `sqlite_master`. Here: what changes
after the copy reaches the swapped-in tables; bookings between the copy's transactions
succeed; a rebuild that fails, or whose process is killed, at any step leaves the live
tables, their indexes and the file as they were, and the next rebuild clears what it
left."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from booking.clock import system_clock
from events.sql import read_transaction
from projections import rebuilding, runner, shadowing
from tests.conftest import Api, future_weekday, local
from tests.integration.test_runner_rebuild import _schema, a_mixed_history, inline_contents

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _file_is_sound(engine: Engine) -> None:
    """integrity_check passes and no copy (`__swap`) is left in the main database."""
    with read_transaction(engine) as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
        left = conn.exec_driver_sql(
            "SELECT name FROM main.sqlite_master WHERE name LIKE '%\\_\\_swap%' ESCAPE '\\'"
        ).all()
    assert left == []


def _equals_a_rebuild_from_scratch(api: Api) -> None:
    live = inline_contents(api)
    rebuilding.rebuild(api.engine, runner.INLINE, clock=system_clock)
    rebuilt = inline_contents(api)
    for name, tables in live.items():
        for table, rows in tables.items():
            got = rebuilt[name][table]
            assert got == rows, (table, set(got) - set(rows), set(rows) - set(got))


def test_what_changes_after_the_copy_reaches_the_swapped_tables(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Once the last table is copied, bookings are placed and cancelled, a premises is
    renamed: the catch-up writes the TEMP tables (rows inserted, updated and deleted),
    and the swap copies those rows again; the result equals a rebuild from scratch, with
    the indexes by their names and definitions."""
    a_mixed_history(api)
    schema = _schema(api)
    copy = shadowing.SQLiteShadow._copy
    day = future_weekday(4, weeks_ahead=2)
    booked: list[bool] = []

    def then_book(self: shadowing.SQLiteShadow, conn: Any, name: str) -> None:
        copy(self, conn, name)
        if name != self.names[-1] or booked:
            return
        booked.append(True)
        days = [day + timedelta(days=n) for n in range(3)]
        placed = [api.book("plain", local(d, 9), local(d, 10)) for d in days]
        assert [p.status_code for p in placed] == [201, 201, 201], placed[-1].get_json()
        first = placed[0].get_json()["id"]
        cancelled = api.post(f"/api/v1/bookings/{first}/cancel", {"reason": "r"}, role="booker")
        assert cancelled.status_code == 200, cancelled.get_json()
        renamed = api.patch("/api/v1/premises/plain", {"name": {"fi": "Kolmas"}}, role="staff")
        assert renamed.status_code == 200, renamed.get_json()

    monkeypatch.setattr(shadowing.SQLiteShadow, "_copy", then_book)
    with caplog.at_level(logging.INFO, logger="projections.shadowing"):
        shadowing.rebuild_inline(api.engine, runner.INLINE, batch_size=3)
    noted = [r.getMessage() for r in caplog.records if "copied again" in r.getMessage()]
    assert noted and not noted[0].startswith("rows changed after the copy, copied again: 0 "), noted
    _file_is_sound(api.engine)
    assert _schema(api) == schema
    _equals_a_rebuild_from_scratch(api)


def test_bookings_between_the_copys_transactions_succeed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three clients book while the copy runs in write transactions of a few rows each:
    every booking is answered 201 or 409, some of them during the copy."""
    a_mixed_history(api)
    api.premises("hall-a")
    token = api.token("booker")
    monkeypatch.setattr(shadowing, "COPY_FIRST_ROWS", 2)
    monkeypatch.setattr(shadowing, "COPY_LEAST_ROWS", 2)
    monkeypatch.setattr(shadowing, "COPY_MOST_ROWS", 5)
    copying, stop = threading.Event(), threading.Event()
    copy = shadowing.SQLiteShadow._copy

    def slowly(self: shadowing.SQLiteShadow, conn: Any, name: str) -> None:
        copying.set()
        copy(self, conn, name)
        time.sleep(0.05)
        if name == self.names[-1]:
            stop.set()  # the catch-up after the copy then has an end

    monkeypatch.setattr(shadowing.SQLiteShadow, "_copy", slowly)
    day = future_weekday(3, weeks_ahead=5)
    answers: list[tuple[int, bool, float]] = []

    def book(n: int) -> None:
        client = api.app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        hour = 0
        while not stop.is_set():
            # Three weeks per client, again and again (409 from the second time on).
            start = local(day + timedelta(days=n * 21 + (hour // 14) % 21), 8 + hour % 14)
            hour += 1
            time.sleep(0.005)
            body = {
                "premises_id": "hall-a",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "title": "Kerho",
                "attendees": 3,
            }
            during = copying.is_set()
            began = time.monotonic()
            placed = client.post("/api/v1/bookings", json=body, headers=headers)
            answers.append((placed.status_code, during, time.monotonic() - began))

    threads = [threading.Thread(target=book, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        shadowing.rebuild_inline(api.engine, runner.INLINE, batch_size=5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {201, 409}, statuses
    assert sum(1 for status, during, _ in answers if during and status == 201) >= 3, answers
    _file_is_sound(api.engine)
    _equals_a_rebuild_from_scratch(api)


@pytest.mark.parametrize("step", ["copy", "exchange", "drop"])
def test_a_rebuild_failing_at_any_step_leaves_the_live_tables(
    api: Api, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A failure in the middle of the copy, of the root pages' exchange (after some of its
    updates of `sqlite_master`), or of dropping the old tables: the live tables keep
    their rows (the new ones if the swap committed), indexes and names; no copy is left;
    the next rebuild runs."""
    a_mixed_history(api)
    rows, schema = inline_contents(api), _schema(api)
    copy, exchange, drop = (
        shadowing.SQLiteShadow._copy,
        shadowing._exchange_root_pages,
        shadowing.SQLiteShadow._drop_copies,
    )

    def copy_then_fail(self: shadowing.SQLiteShadow, conn: Any, name: str) -> None:
        copy(self, conn, name)
        if name == self.names[2]:
            raise RuntimeError("failed mid-copy")

    def exchange_then_fail(conn: Any, names: list[str]) -> None:
        exchange(conn, names[:3])  # some root pages exchanged, in the transaction
        raise RuntimeError("failed mid-swap")

    calls: list[int] = []

    def drop_once_then_fail(self: shadowing.SQLiteShadow, conn: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("failed dropping the old tables")
        drop(self, conn)

    if step == "copy":
        monkeypatch.setattr(shadowing.SQLiteShadow, "_copy", copy_then_fail)
    elif step == "exchange":
        monkeypatch.setattr(shadowing, "_exchange_root_pages", exchange_then_fail)
    else:
        monkeypatch.setattr(shadowing.SQLiteShadow, "_drop_copies", drop_once_then_fail)
    with pytest.raises(RuntimeError):
        shadowing.rebuild_inline(api.engine, runner.INLINE, batch_size=3)
    assert inline_contents(api) == rows
    assert _schema(api) == schema
    monkeypatch.undo()
    _file_is_sound(api.engine)
    shadowing.rebuild_inline(api.engine, runner.INLINE, batch_size=3)
    assert inline_contents(api) == rows
    _file_is_sound(api.engine)


KILLED_REBUILD = """
import os, signal, sys
from events.sql import make_engine
from projections import runner, shadowing

step = sys.argv[2]
copy, exchange = shadowing.SQLiteShadow._copy, shadowing._exchange_root_pages

def copy_then_die(self, conn, name):
    copy(self, conn, name)
    if step == "copy" and name == self.names[2]:
        os.kill(os.getpid(), signal.SIGKILL)

def exchange_then_die(conn, names):
    exchange(conn, names)
    os.kill(os.getpid(), signal.SIGKILL)  # the root pages exchanged, not committed

def drop_then_die(self, conn):
    os.kill(os.getpid(), signal.SIGKILL)  # committed, the old tables not dropped

shadowing.SQLiteShadow._copy = copy_then_die
if step == "exchange":
    shadowing._exchange_root_pages = exchange_then_die
if step == "drop":
    shadowing.SQLiteShadow._drop_copies = drop_then_die
shadowing.rebuild_inline(make_engine(sys.argv[1]), runner.INLINE, batch_size=3)
"""


@pytest.mark.parametrize("step", ["copy", "exchange", "drop"])
def test_a_rebuild_killed_at_any_step_leaves_a_sound_file(
    api: Api, database_url: str, step: str
) -> None:
    """The rebuild's process is killed (SIGKILL) in the middle of the copy, after the root
    pages' exchange but before its commit, or after the commit before the old tables are
    dropped: the file passes integrity_check, the live tables hold the same rows under the
    same indexes, and the next rebuild drops what was left."""
    a_mixed_history(api)
    rows, schema = inline_contents(api), _schema(api)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_REBUILD, database_url, step],
        env=env,
        capture_output=True,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    api.engine.dispose()  # a fresh look at the file
    with read_transaction(api.engine) as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
    assert inline_contents(api) == rows
    assert _schema(api) == schema
    shadowing.rebuild_inline(api.engine, runner.INLINE, batch_size=3)
    assert inline_contents(api) == rows
    _file_is_sound(api.engine)
