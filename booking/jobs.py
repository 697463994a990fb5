"""The scheduler's jobs: expire pop-up requests, lapse and remind of allocation offers, send
the outbox, queue reminders.

Each job is idempotent and catches up by itself: it looks for everything that is due (not
only what fell due since the last run), so a scheduler that was down does the missed work
when it starts, and two schedulers running at once append nothing twice — expiry goes
through the premises' stream version, mails through their dedupe keys.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from booking.allocation_mails import offer_reminders
from booking.clock import Clock, system_clock
from booking.notifications import Notifier
from booking.outbox import SmtpSettings, deliver, enqueue
from booking.privacy import Vault
from booking.queries.popups import premises_due_to_expire
from booking.service import Outcome, PremisesRepository, execute
from booking.tables import users
from booking.usecases import popups as popup_cases
from booking.usecases.allocation import lapse_offers
from booking.usecases.unit import Unit
from events.sql import read_transaction
from projections.bookings import bookings_table

log = logging.getLogger(__name__)
REMINDER_AHEAD = timedelta(hours=24)
# Premises per transaction: bounds how long the premises and the append lock are held.
PREMISES_PER_TRANSACTION = 100
SCHEDULER = popup_cases.SCHEDULER


class _Collector:
    """Keeps the cyclic garbage collector off while a bulk phase runs (`sparing`), in any
    number of threads at once: the first in turns it off, the last out turns it back on if
    it was on before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    @contextmanager
    def sparing(self) -> Iterator[None]:
        with self._lock:
            if not self._inside:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if not self._inside and self._was_enabled:
                    gc.enable()


_collector = _Collector()


def sparing_the_collector() -> AbstractContextManager[None]:
    """No cyclic garbage collection during one transaction of the expiry job.

    A transaction of 10,000 expiries makes ~60,000 objects that live until it commits
    (events, their data and records, mails), none of them in a cycle: reference counting
    frees them all. Meanwhile the collector ran ~190 times over them, young and old
    generations, collecting nothing (~20 ms of a ~270 ms run on SQLite). Cyclic garbage
    made meanwhile waits for the next collection after it. (The job froze the app's objects
    for its bulk phase before — `gc.freeze` — which spared the old generation only.)
    """
    return _collector.sparing()


@dataclass
class Jobs:
    """The jobs, handed the engine, the premises cache, the vault, the mail settings and
    the clock (`now` when a run is not given one)."""

    engine: Engine
    premises: PremisesRepository
    vault: Vault
    smtp: SmtpSettings | None
    clock: Clock = system_clock

    def expire_popups(self, now: datetime | None = None) -> int:
        """Expire every pending request whose decision deadline has passed; returns how many."""
        now = now or self.clock()
        with read_transaction(self.engine) as conn:
            due = premises_due_to_expire(conn, now)
        expired = 0
        for chunk in (
            due[i : i + PREMISES_PER_TRANSACTION]
            for i in range(0, len(due), PREMISES_PER_TRANSACTION)
        ):

            def handle(conn: Connection, chunk: list[str] = chunk) -> Outcome:
                found = popup_cases.expire_popups(conn, self.premises, chunk, now, self.clock())
                return Outcome(200, {"expired": found})

            with sparing_the_collector():
                expired += execute(self.engine, handle).body["expired"]
        if expired:
            log.info("expired %s pop-up request(s)", expired)
        return expired

    def lapse_offers(self, now: datetime | None = None) -> int:
        """Allocation offers not answered by their `confirm_by` lapse; returns how many.
        Each round's stream version guards it, so two schedulers lapse nothing twice."""
        at = now or self.clock()

        def handle(conn: Connection) -> Outcome:
            unit = Unit(conn, self.premises, self.vault, SCHEDULER, self.clock)
            return Outcome(200, {"lapsed": lapse_offers(unit, at)})

        return int(execute(self.engine, handle).body["lapsed"])

    def remind_offers(self, now: datetime | None = None) -> int:
        """Queue a reminder a day before `confirm_by` for each offer still unanswered; the
        mails' dedupe keys (`offer-reminder:<offer id>:<recipient>`) make it once per offer
        and recipient across restarts and schedulers. Returns how many mails were due."""
        at = now or self.clock()

        def handle(conn: Connection) -> Outcome:
            mails = offer_reminders(conn, at)
            enqueue(conn, mails, at)
            return Outcome(200, {"queued": len(mails)})

        return int(execute(self.engine, handle).body["queued"])

    def queue_reminders(self, now: datetime | None = None) -> int:
        """Queue a reminder for each confirmed booking starting within 24 h that was placed
        earlier than that; the dedupe key makes a second run a no-op."""
        now = now or self.clock()
        b = bookings_table
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(b).where(
                    b.c.status == "confirmed",
                    b.c.start > now,
                    b.c.start <= now + REMINDER_AHEAD,
                )
            ).all()
        due = [r for r in rows if r.created_at <= r.start - REMINDER_AHEAD]
        if not due:
            return 0

        def handle(conn: Connection) -> Outcome:
            notifier = Notifier(conn)
            mails = [
                notifier.mail(
                    "reminder",
                    f"reminder:{r.id}",
                    r.booked_by,
                    r.premises_id,
                    r.title,
                    r.start,
                    r.end,
                )
                for r in due
            ]
            enqueue(conn, mails, now)
            return Outcome(200, {"queued": len(mails)})

        return int(execute(self.engine, handle).body["queued"])

    def send_mail(self, now: datetime | None = None) -> int:
        return deliver(self.engine, self.smtp, self.address_of, now or self.clock())

    def address_of(self, conn: Connection, user_id: str) -> str | None:
        """The address to send to, read at send time: an erased person has none."""
        sealed = conn.execute(
            select(users.c.email).where(users.c.id == user_id, users.c.erased_at.is_(None))
        ).scalar()
        found = self.vault.reader(conn).open(sealed)
        return found if found and "@" in found else None
