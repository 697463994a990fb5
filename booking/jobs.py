"""The scheduler's jobs: expire pop-up requests, send the outbox, queue reminders.

Each job is idempotent and catches up by itself: it looks for everything that is due (not
only what fell due since the last run), so a scheduler that was down does the missed work
when it starts, and two schedulers running at once append nothing twice — expiry goes
through the premises' stream version, mails through their dedupe keys.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from booking.clock import Clock, system_clock
from booking.domain.popups import ExpirePopups
from booking.notifications import Notifier
from booking.outbox import SmtpSettings, deliver, enqueue
from booking.privacy import Vault
from booking.recording import record
from booking.service import (
    Outcome,
    PremisesRepository,
    execute,
    lock_premises,
    premises_stream,
)
from booking.tables import users
from events.bulk import StreamAppend
from events.sql import read_transaction
from events.store import Metadata
from projections.bookings import bookings_table
from projections.popups import popups_table

log = logging.getLogger(__name__)
REMINDER_AHEAD = timedelta(hours=24)
# Premises per transaction: bounds how long the premises and the append lock are held.
PREMISES_PER_TRANSACTION = 100
SCHEDULER = Metadata(actor="scheduler")


@contextmanager
def _collecting_only_new_objects() -> Iterator[None]:
    """Spare the collector's full passes the objects alive before a bulk phase.

    An expiry run keeps ~60,000 objects alive at once (events, their data, mails), which
    sets off a full collection; that pass would walk the whole app's objects too (~80 ms of
    a ~700 ms run on SQLite; ~13 ms with them frozen). `gc.freeze` moves what exists now out
    of the collector's sight until `gc.unfreeze`; reference counting still frees it as
    usual, only cyclic garbage made before the phase waits for the unfreeze. Left alone if
    something else (a server that forks after freezing) has frozen objects already.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class Jobs:
    engine: Engine
    premises: PremisesRepository
    vault: Vault
    smtp: SmtpSettings | None
    # The time the expiry's events and mails are recorded at (the instant an expiry is run
    # for, `now`, may be another: tests and catch-up runs name it).
    clock: Clock = system_clock

    def expire_popups(self, now: datetime | None = None) -> int:
        """Expire every pending request whose decision deadline has passed; returns how many."""
        now = now or datetime.now(UTC)
        p = popups_table
        with read_transaction(self.engine) as conn:
            due = list(
                conn.execute(
                    select(p.c.premises_id)
                    .where(p.c.status == "pending", p.c.decision_deadline <= now)
                    .distinct()
                    .order_by(p.c.premises_id)
                ).scalars()
            )
        expired = 0
        for chunk in (
            due[i : i + PREMISES_PER_TRANSACTION]
            for i in range(0, len(due), PREMISES_PER_TRANSACTION)
        ):

            def handle(conn: Connection, chunk: list[str] = chunk) -> Outcome:
                return Outcome(200, {"expired": self._expire(conn, chunk, now)})

            expired += execute(self.engine, handle).body["expired"]
        if expired:
            log.info("expired %s pop-up request(s)", expired)
        return expired

    def _expire(self, conn: Connection, premises_ids: list[str], now: datetime) -> int:
        """One transaction's expiry: decide per premises under its lock, then record the
        events of all of them at once (`booking.recording.record`: one statement per table
        and chunk of ids, not one per event: the projections' batch handlers,
        `notifications.mails_for`'s reads of many rows at once, one outbox INSERT,
        `events.bulk`'s one INSERT).

        Each premises still appends to its own stream at the version it decided on, so a
        racing scheduler or booking makes the whole chunk retry; the retry decides on the
        events the other appended and finds nothing left to expire.
        """
        lock_premises(conn, premises_ids)  # all at once, in order: no deadlock with bookings
        appends = []
        for premises_id in premises_ids:
            command = ExpirePopups(premises_id, now)
            version, events = self.premises.decide(conn, premises_id, command)
            if events:
                appends.append(StreamAppend(premises_stream(premises_id), events, version))
        if not appends:
            return 0
        with _collecting_only_new_objects():
            recorded = record(conn, appends, SCHEDULER, self.clock())
            return sum(len(mine) for mine in recorded)

    def queue_reminders(self, now: datetime | None = None) -> int:
        """Queue a reminder for each confirmed booking starting within 24 h that was placed
        earlier than that; the dedupe key makes a second run a no-op."""
        now = now or datetime.now(UTC)
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
        return deliver(self.engine, self.smtp, self.address_of, now)

    def address_of(self, conn: Connection, user_id: str) -> str | None:
        """The address to send to, read at send time: an erased person has none."""
        sealed = conn.execute(
            select(users.c.email).where(users.c.id == user_id, users.c.erased_at.is_(None))
        ).scalar()
        found = self.vault.reader(conn).open(sealed)
        return found if found and "@" in found else None
