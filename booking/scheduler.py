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


def run_projector(app: Flask, poll_seconds: float = 1.0) -> None:
    logging.basicConfig(level=logging.INFO)
    log.info("projector started; projections: %s", ", ".join(p.name for p in runner.ALL))
    while True:
        _report_status(app)
        time.sleep(max(poll_seconds, 60))
