"""Background work: the APScheduler process and the projection runner process.

`booking scheduler` runs the jobs of booking/jobs.py on an interval. With PostgreSQL only
one scheduler process works at a time: the leader holds a session-level advisory lock, the
others wait for it. The jobs are idempotent as well, so a double run appends nothing. On
the embedded default, `booking serve` runs the same jobs in a background thread.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from booking.jobs import Jobs
from booking.outbox import SmtpSettings
from booking.service import PremisesRepository
from events.sql import make_engine, read_transaction
from projections import runner

log = logging.getLogger(__name__)


def _report_status(app: Flask) -> None:
    with read_transaction(app.extensions["tilavaraus"].engine) as conn:
        for row in runner.status(conn):
            log.info("projection %s at %s (lag %s)", row.name, row.position, row.lag)


LEADER_LOCK = 0x7E1A_5C4E  # advisory lock key: "the scheduler leader"
STOP_GRACE_SECONDS = 15.0  # how long a stop waits for a running job
INTERVALS = {
    "expire_popups": 30,
    "send_mail": 15,
    "queue_reminders": 300,
    "lapse_offers": 60,
    "remind_offers": 300,
}


def jobs_for(app: Flask, engine: Engine | None = None) -> Jobs:
    rt = app.extensions["tilavaraus"]
    url = app.config.get("BOOKING_SMTP_URL")
    smtp = SmtpSettings.from_url(url, app.config["BOOKING_MAIL_FROM"]) if url else None
    return Jobs(engine or rt.engine, PremisesRepository(), rt.vault, smtp, rt.clock)


def _schedule(scheduler: BaseScheduler, jobs: Jobs, leader: Leader | None = None) -> None:
    for name, seconds in INTERVALS.items():
        work = getattr(jobs, name)
        scheduler.add_job(
            _as_leader(work, leader) if leader else work,
            "interval",
            seconds=seconds,
            id=name,
            # APScheduler's own time line (when to run), not the app's clock: at once.
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )


class Leader:
    """Holds PostgreSQL's session advisory lock on a connection of its own while alive."""

    def __init__(self, engine: Engine) -> None:
        # A connection outside the pool: closing it must end the session and its lock.
        self.engine = create_engine(engine.url, poolclass=NullPool)
        self.conn: Connection | None = None

    def release(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def is_leader(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True  # one process on the embedded default
        if self.conn is None:
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK})
            if got.scalar():
                conn.commit()
                self.conn = conn
                log.info("this scheduler is the leader")
            else:
                conn.close()
        return self.conn is not None


def _as_leader(work: Callable[[], object], leader: Leader) -> Callable[[], None]:
    def run() -> None:
        if leader.is_leader():
            work()

    return run


def _stopped_by_signal(process: str) -> threading.Event:
    """An event set by SIGTERM (systemd, containers) or SIGINT, for a process's main loop to
    finish its work and stop; set before the process says it has started. SIGUSR1 dumps
    the threads' stacks."""
    stop = threading.Event()

    def _set(signum: int) -> None:
        log.info("%s stopping (signal %s)", process, signum)
        stop.set()

    def _stop(signum: int, _frame: object) -> None:
        # Not `stop.set()` here: the handler runs in the main thread between two bytecodes,
        # also while that thread holds the event's own (non-reentrant) lock inside
        # `stop.wait(…)`, and would wait for itself for ever -- the stopped scheduler that
        # outlived its grace under load. A thread of its own waits for the lock instead.
        threading.Thread(target=_set, args=(signum,), name=f"{process}-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # `kill -USR1 <pid>` prints every thread's stack to stderr, for a process that seems stuck
    # (written from the C signal handler: it works while the main thread is blocked).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return stop


def run_forever(app: Flask) -> None:
    """`booking scheduler`: run the jobs until SIGTERM or SIGINT, then let a running job
    finish (each job commits whole or not at all) and give up the leadership."""
    logging.basicConfig(level=logging.INFO)
    stop = _stopped_by_signal("scheduler")
    jobs = jobs_for(app)
    leader = Leader(jobs.engine)
    scheduler = BackgroundScheduler(timezone=app.config["BOOKING_TIMEZONE"])
    _schedule(scheduler, jobs, leader)
    scheduler.add_job(_report_status, "interval", minutes=10, args=[app], id="status")
    scheduler.start()
    log.info("scheduler started")
    started = time.monotonic()
    while not stop.wait(1.0):
        pass
    # Let a running job finish (each commits whole or not at all), but not for ever: one
    # still running after the grace is abandoned, and its transaction rolls back with the
    # connection. A supervisor would kill the process a little later anyway.
    stopping = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True)
    stopping.start()
    stopping.join(STOP_GRACE_SECONDS)
    leader.release()
    if stopping.is_alive():
        log.warning("a job was still running after %.0f s; left unfinished", STOP_GRACE_SECONDS)
    log.info("scheduler stopped after %.0f s", time.monotonic() - started)
    # Exit here rather than through the interpreter's shutdown, which would wait for every
    # worker thread the job executor ever started (seen to keep a stopped scheduler alive
    # past its grace on a loaded machine); what is unfinished rolls back with its connection.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


def start_in_process(app: Flask) -> tuple[BackgroundScheduler, runner.BackgroundRunner]:
    """The jobs and the projection runner in background threads of this process (the
    embedded default); production runs `booking scheduler` and `booking projector`."""
    engine = make_engine(app.config["BOOKING_DATABASE_URL"])
    scheduler = BackgroundScheduler(timezone=app.config["BOOKING_TIMEZONE"], daemon=True)
    _schedule(scheduler, jobs_for(app, engine))
    scheduler.start()
    clock = app.extensions["tilavaraus"].clock
    return scheduler, runner.BackgroundRunner(engine, clock).start()


def run_projector(app: Flask, poll_seconds: float = 1.0, batch_size: int = 1000) -> None:
    """`booking projector`: keep the asynchronous projections caught up until SIGTERM or
    SIGINT. A batch and its checkpoint commit together, so stopping (or being killed) between
    or inside batches neither loses nor repeats an event."""
    logging.basicConfig(level=logging.INFO)
    stop = _stopped_by_signal("projector")
    started = time.monotonic()
    names = ", ".join(p.name for p in runner.ASYNC)
    log.info("projector started; asynchronous projections: %s", names)
    _report_status(app)
    rt = app.extensions["tilavaraus"]
    runner.Runner(rt.engine, rt.clock, batch_size=batch_size, poll_seconds=poll_seconds).run(stop)
    log.info("projector stopped after %.0f s", time.monotonic() - started)
