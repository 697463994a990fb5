"""Background work: the APScheduler process and the projection runner process.

Pop-up expiry, reminders and the outbox join the scheduler with the pop-up issue; the
asynchronous projections join the runner with the statistics issue. Until then every
projection is inline and both processes have nothing to catch up.
"""

from __future__ import annotations

import logging
import time

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from events.sql import read_transaction
from projections import runner

log = logging.getLogger(__name__)


def _report_status(app: Flask) -> None:
    with read_transaction(app.extensions["tilavaraus"].engine) as conn:
        for row in runner.status(conn):
            log.info("projection %s at %s (lag %s)", row.name, row.position, row.lag)


def run_forever(app: Flask) -> None:
    logging.basicConfig(level=logging.INFO)
    scheduler = BlockingScheduler(timezone=app.config["BOOKING_TIMEZONE"])
    scheduler.add_job(_report_status, "interval", minutes=10, args=[app], id="status")
    log.info("scheduler started")
    scheduler.start()


def run_projector(app: Flask, poll_seconds: float = 1.0, batch_size: int = 1000) -> None:
    """`booking projector`: keep the asynchronous projections caught up until SIGTERM or
    SIGINT. A batch and its checkpoint commit together, so stopping (or being killed) between
    or inside batches neither loses nor repeats an event."""
    import signal
    import threading

    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    started = time.monotonic()

    def _stop(signum: int, _frame: object) -> None:
        log.info("projector stopping (signal %s)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    names = ", ".join(p.name for p in runner.ASYNC)
    log.info("projector started; asynchronous projections: %s", names)
    _report_status(app)
    engine = app.extensions["tilavaraus"].engine
    runner.Runner(engine, batch_size=batch_size, poll_seconds=poll_seconds).run(stop)
    log.info("projector stopped after %.0f s", time.monotonic() - started)
