"""The scheduler's jobs: expiry that catches up and runs once, reminders, and an outbox
that survives a mail server going away."""

from __future__ import annotations

import contextlib
import gc
import os
import select as select_module
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from booking import accounts, notifications
from booking.jobs import Jobs, sparing_the_collector
from booking.outbox import SmtpSettings, outbox
from booking.scheduler import Leader
from booking.service import PremisesRepository
from booking.usecases import popups as popup_cases
from events.sql import make_engine, read_transaction, write_transaction
from events.store import events_table, read_all
from projections.availability import busy_table
from projections.popups import popups_table
from tests.conftest import Api, at_test_time

HELSINKI = ZoneInfo("Europe/Helsinki")
ALWAYS_OPEN = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
POPUP_RULES = {"popup_allowed": True, "min_notice_minutes": 0, "max_advance_days": 400}


def jobs(api: Api, smtp: SmtpSettings | None = None) -> Jobs:
    return Jobs(api.engine, PremisesRepository(), api.app.extensions["tilavaraus"].vault, smtp)


def ask(api: Api, start: datetime, premises_id: str = "room", token: str | None = None) -> dict:
    body = {
        "premises_id": premises_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Korjauskahvila",
    }
    if token is None:
        response = api.post("/api/v1/popup-requests", body, role="resident")
    else:
        headers = {"Authorization": f"Bearer {token}"}
        response = api.client.post("/api/v1/popup-requests", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def count(api: Api, event_type: str) -> int:
    with read_transaction(api.engine) as conn:
        query = (
            select(func.count()).select_from(events_table).where(events_table.c.type == event_type)
        )
        return int(conn.execute(query).scalar_one())


def test_expiry_catches_up_every_missed_deadline_once(api: Api) -> None:
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    api.premises("hall", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=2 * n), ("room", "hall")[n % 2]) for n in range(6)]
    latest = max(datetime.fromisoformat(p["decision_deadline"]) for p in asked)

    # The scheduler was down past every deadline: one run expires them all, a second nothing.
    assert jobs(api).expire_popups(latest - timedelta(days=3)) == 0
    assert jobs(api).expire_popups(latest) == 6
    assert jobs(api).expire_popups(latest + timedelta(hours=1)) == 0
    assert count(api, "PopupExpired") == 6
    statuses = {
        api.get(f"/api/v1/popup-requests/{p['id']}", role="staff").get_json()["status"]
        for p in asked
    }
    assert statuses == {"expired"}


def test_expiry_releases_the_holds_and_mails_each_requester_in_their_language(api: Api) -> None:
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    api.premises("hall", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    with write_transaction(api.engine) as conn:
        english = accounts.create_user(
            conn,
            email="resident-en@example.fi",
            name="Resident",
            role="resident",
            organisation_id=None,
            password="salasana-123",
            vault=api.app.extensions["tilavaraus"].vault,
            language="en",
        ).token
    # Slots within one local day (10:00–19:00), so that each mail's text is written here.
    base = (datetime.now(HELSINKI) + timedelta(days=5)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    # Two requests share a slot (in two premises): a slot's text is made once and reused.
    asked = [
        ask(api, base + timedelta(hours=2 * (n // 2)), ("room", "hall")[n % 2]) for n in range(4)
    ]
    asked.append(ask(api, base + timedelta(hours=8), "hall", token=english))
    latest = max(datetime.fromisoformat(p["decision_deadline"]) for p in asked)
    with read_transaction(api.engine) as conn:
        holds = conn.execute(select(func.count()).select_from(busy_table)).scalar_one()
    assert holds == 5

    assert jobs(api).expire_popups(latest) == 5

    with read_transaction(api.engine) as conn:
        assert conn.execute(select(func.count()).select_from(busy_table)).scalar_one() == 0
        stored = {
            m.dedupe_key: (m.recipient_id, m.language, m.subject, m.body)
            for m in conn.execute(select(outbox).where(outbox.c.subject.like("Pop-up%")))
        }
        expired = [r for r in read_all(conn) if r.type == "PopupExpired"]
        requests = {
            r.id: r
            for r in conn.execute(
                select(popups_table).where(
                    popups_table.c.id.in_([r.data["request_id"] for r in expired])
                )
            )
        }
        # The mails of all the events at once are those of each event alone.
        one_by_one = [
            m for r in expired for m in notifications.mails_for(conn, [(r.to_event(), r)])
        ]
        assert notifications.mails_for(conn, [(r.to_event(), r) for r in expired]) == one_by_one
    expected = {}
    for r in expired:
        request = requests[r.data["request_id"]]
        english_mail = request.requested_by != requests[asked[0]["id"]].requested_by
        start = request.start.astimezone(HELSINKI)
        if english_mail:
            subject = "Pop-up request expired: Meeting room 2"
            when = f"{start:%a} {start.day} {start:%b %Y %H:%M}–{start.hour + 1:02}:00"
            body = (
                "Your pop-up request Korjauskahvila was not decided in time, and the slot is"
                f" free again.\nMeeting room 2, {when} (Europe/Helsinki)."
            )
        else:
            subject = "Pop-up-pyyntö vanheni: Kokoushuone 2"
            days = ("ma", "ti", "ke", "to", "pe", "la", "su")
            when = (
                f"{days[start.weekday()]} {start.day}.{start.month}.{start.year}"
                f" klo {start:%H.%M}–{start.hour + 1:02}.00"
            )
            body = (
                "Pop-up-pyyntöösi Korjauskahvila ei ehditty vastata, ja aika on vapautettu."
                f"\nKokoushuone 2, {when} (Europe/Helsinki)."
            )
        language = "en" if english_mail else "fi"
        key = f"{r.stream}:{r.version}:{request.requested_by}"
        expected[key] = (request.requested_by, language, subject, body)
    assert len(expected) == 5 and {m[1] for m in expected.values()} == {"fi", "en"}
    assert stored == expected


@time_machine.travel("2027-10-30T12:00:00Z", tick=False)
def test_a_request_on_the_saturday_before_the_october_change_expires_48_hours_later(
    api: Api,
) -> None:
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    # Saturday 30 Oct 2027 15:00 EEST; clocks go back at 04:00 on Sunday.
    start = datetime(2027, 11, 3, 18, 0, tzinfo=HELSINKI)
    popup = ask(api, start)
    deadline = datetime.fromisoformat(popup["decision_deadline"])
    assert deadline == datetime(2027, 11, 1, 12, 0, tzinfo=UTC)
    # 48 elapsed hours: 14:00 on Monday by the wall clock (winter time), not 15:00.
    assert deadline.astimezone(HELSINKI).hour == 14
    assert jobs(api).expire_popups(deadline - timedelta(seconds=1)) == 0
    assert jobs(api).expire_popups(deadline) == 1


@pytest.mark.postgres
def test_two_schedulers_expire_each_request_exactly_once(postgres_url: str) -> None:
    from booking.app import create_app

    engine = make_engine(postgres_url)
    app = create_app({"ENGINE": engine, "BOOKING_DATABASE_URL": postgres_url, "SECRET_KEY": "t"})
    api = Api(app, app.test_client())
    for n in range(4):
        api.premises(f"room-{n}", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=n), f"room-{n % 4}") for n in range(20)]
    deadline = max(datetime.fromisoformat(p["decision_deadline"]) for p in asked)

    results: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            mine = jobs(api)  # its own premises cache, as another process would have
            results.append(sum(mine.expire_popups(deadline) for _ in range(3)))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results) == 20
    assert count(api, "PopupExpired") == 20
    engine.dispose()


@pytest.mark.postgres
def test_one_leader_at_a_time(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    first, second = Leader(engine), Leader(engine)
    assert first.is_leader() is True
    assert second.is_leader() is False
    first.release()  # the leader's session ends (as when its process dies): the lock goes
    # once the server's backend for that session has exited, which the client's close does
    # not wait for (a busy machine took longer than the next statement: CI at 22:20 UTC).
    deadline = time.monotonic() + 10
    while not second.is_leader() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second.is_leader() is True
    second.release()
    engine.dispose()


def test_reminder_is_queued_once_a_day_ahead(api: Api) -> None:
    api.premises("room")
    start = (
        (datetime.now(UTC) + timedelta(days=3))
        .astimezone(HELSINKI)
        .replace(hour=18, minute=0, second=0, microsecond=0)
    )
    booking = api.book("room", start, start + timedelta(hours=2)).get_json()
    job = jobs(api)
    assert job.queue_reminders(start - timedelta(hours=25)) == 0
    assert job.queue_reminders(start - timedelta(hours=23)) == 1
    job.queue_reminders(start - timedelta(hours=22))
    with read_transaction(api.engine) as conn:
        reminders = conn.execute(
            select(outbox).where(outbox.c.dedupe_key.like(f"reminder:{booking['id']}%"))
        ).all()
    assert len(reminders) == 1
    assert reminders[0].subject.startswith("Muistutus")
    assert "klo 18.00" in reminders[0].body and "Europe/Helsinki" in reminders[0].body


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content.decode())
        return "250 OK"


def test_outbox_delivers_every_mail_exactly_once_across_an_outage(api: Api) -> None:
    api.premises("room")
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = SmtpSettings("127.0.0.1", port, "tilavaraus@example.fi")
    start = (
        (datetime.now(UTC) + timedelta(days=10))
        .astimezone(HELSINKI)
        .replace(hour=8, minute=0, second=0, microsecond=0)
    )

    def book(n: int) -> None:
        placed = api.book(
            "room", start + timedelta(hours=2 * n), start + timedelta(hours=2 * n + 1)
        )
        assert placed.status_code == 201, placed.get_json()

    for n in range(3):
        book(n)
    job = jobs(api, smtp)
    assert job.send_mail() == 3
    assert len(inbox.received) == 3

    controller.stop()  # the mail server goes away
    for n in range(3, 6):
        book(n)
    assert job.send_mail() == 0  # nothing lost: the rows wait with a backoff
    with read_transaction(api.engine) as conn:
        waiting = conn.execute(select(outbox).where(outbox.c.sent_at.is_(None))).all()
    assert len(waiting) == 3 and all(r.attempts == 1 and r.last_error for r in waiting)

    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        later = datetime.now(UTC) + timedelta(minutes=5)  # past the first backoff
        assert job.send_mail(later) == 3
        assert job.send_mail(later + timedelta(hours=2)) == 0
    finally:
        controller.stop()
    ids = [
        line
        for mail in inbox.received
        for line in mail.splitlines()
        if line.startswith("Message-ID")
    ]
    assert len(ids) == 6 and len(set(ids)) == 6


def test_expiry_leaves_the_collector_as_it_found_it(api: Api) -> None:
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    first = ask(api, base)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    seen: list[bool] = []
    real_expire = popup_cases.expire_popups

    def noting(*args: Any, **kwargs: Any) -> int:
        seen.append(gc.isenabled())
        return real_expire(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(popup_cases, "expire_popups", noting)
        assert jobs(api).expire_popups(datetime.fromisoformat(first["decision_deadline"])) == 1
    # The collector was off for the bulk phase only, and nothing was frozen.
    assert seen == [False]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    # A collector someone else turned off stays off; frozen objects stay frozen.
    second = ask(api, base + timedelta(hours=2))
    gc.freeze()
    gc.disable()
    try:
        assert jobs(api).expire_popups(datetime.fromisoformat(second["decision_deadline"])) == 1
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_collector_comes_back_on_after_overlapping_jobs() -> None:
    # Two threads in their bulk phases at once: the collector is off while either is inside
    # and on again when the last leaves, whichever leaves first.
    inside, leave = threading.Barrier(2), [threading.Event(), threading.Event()]
    states: list[bool] = []

    def phase(n: int) -> None:
        with sparing_the_collector():
            inside.wait(5)
            leave[n].wait(5)
            states.append(gc.isenabled())

    threads = [threading.Thread(target=phase, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    leave[0].set()
    threads[0].join(5)
    leave[1].set()
    threads[1].join(5)
    assert states == [False, False]
    assert gc.isenabled()


# The signal that stops `booking scheduler` (and `booking projector`) may land while the main
# thread sits inside `stop.wait(1.0)` holding the event's own lock; a handler that called
# `stop.set()` there waited for itself for ever. Under load (a thread preempted while it
# holds the lock) that window was wide enough to hit: the scheduler outlived its grace in
# CI's full runs. The handler now leaves the setting to a thread of its own; the child below
# takes that lock and signals itself inside it, which hung every time before.
_SIGNAL_INSIDE_THE_LOCK = """
import os, signal, time
from booking.scheduler import _stopped_by_signal
stop = _stopped_by_signal("test")
with stop._cond:  # what stop.wait() holds between its waits
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the handler runs here, in this thread, with the lock held
    assert not stop.is_set()
assert stop.wait(30), "the signal never stopped it"
print("stopped")
"""


def test_a_stop_signal_while_the_main_thread_holds_the_events_lock_still_stops() -> None:
    child = subprocess.run(
        [sys.executable, "-c", _SIGNAL_INSIDE_THE_LOCK],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")
    assert child.stdout.decode().strip() == "stopped"


def test_booking_scheduler_stops_cleanly_on_sigterm(database_url: str, tmp_path: Path) -> None:
    # Production stops `booking scheduler` with SIGTERM (systemd, containers): it should let
    # a running job finish and exit 0, not die mid-job with 143.
    env = {
        **os.environ,
        "BOOKING_DATABASE_URL": database_url,
        "BOOKING_SECRET_KEY": "sigterm-test",
        "BOOKING_INSTANCE_PATH": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "booking.cli", "scheduler"],
        env=at_test_time(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        seen, deadline = "", time.monotonic() + 60
        while "scheduler started" not in seen:  # its signal handlers are set before
            assert time.monotonic() < deadline and process.poll() is None, seen
            if select_module.select([process.stdout], [], [], 0.5)[0]:
                seen += process.stdout.readline().decode()
        process.send_signal(signal.SIGTERM)
        # Its grace for a running job is 15 s; a loaded machine (CI) slows the rest.
        try:
            output = seen + process.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:
            _report_stuck(process, seen)
            raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, output
    assert "scheduler stopped" in output


def _report_stuck(process: subprocess.Popen[bytes], seen: str) -> None:
    """Say where a scheduler that did not stop waits: its threads' stacks (SIGUSR1 makes it
    print them), as a warning, which pytest shows at the end of the run even for an
    expected failure. A process that has exited while its output stays open means a child
    of it holds the pipe."""
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGUSR1)
    with contextlib.suppress(subprocess.TimeoutExpired):  # the stacks, printed meanwhile
        process.communicate(timeout=5)
    process.kill()
    try:
        rest = process.communicate(timeout=10)[0].decode(errors="replace")
    except subprocess.TimeoutExpired as still_open:  # a child of it holds the pipe
        rest = (still_open.output or b"").decode(errors="replace")
    state = "still running" if alive else f"exited ({process.returncode}) but its output open"
    warnings.warn(f"the stopped scheduler was {state}; its output:\n{seen}{rest}", stacklevel=1)


def test_the_jobs_read_the_time_from_the_clock_they_are_handed(api: Api) -> None:
    """Without a `now`, a run asks the clock it was given, never the wall clock."""
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    popup = ask(api, datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    deadline = datetime.fromisoformat(popup["decision_deadline"])
    vault = api.app.extensions["tilavaraus"].vault
    at_deadline = Jobs(api.engine, PremisesRepository(), vault, None, clock=lambda: deadline)
    assert at_deadline.expire_popups() == 1  # the wall clock is days before the deadline
    assert count(api, "PopupExpired") == 1
