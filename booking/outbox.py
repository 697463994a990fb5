"""The transactional outbox: e-mail is written in the transaction of the events that cause
it and delivered later by a scheduler job, with retries and backoff.

A mail server that is down loses nothing: a row stays until a delivery succeeds. A row is
claimed for a short lease before sending, so two schedulers never send it at once; its
Message-ID is fixed, so a receiver can drop the rare duplicate after a crash mid-send.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, NamedTuple
from urllib.parse import urlparse

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from booking.tables import metadata
from events.sql import UTCDateTime, write_transaction
from projections.batching import driver_value, insert_new_values

log = logging.getLogger(__name__)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # What caused the mail, per recipient: writing the same mail twice is a no-op.
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("recipient_id", String(64), nullable=False, index=True),
    Column("language", String(8), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", UTCDateTime),
    Column("sent_at", UTCDateTime, index=True),
    Column("logged_at", UTCDateTime),
    Column("last_error", Text),
)

LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)


class Mail(NamedTuple):
    """A mail to queue. A named tuple, not a frozen dataclass: an expiry run makes 10,000,
    and the dataclass's `__init__` (a `object.__setattr__` per field) cost 1.5 µs each."""

    dedupe_key: str
    recipient_id: str
    language: str
    subject: str
    body: str


def enqueue(conn: Connection, mails: Iterable[Mail], now: datetime) -> None:
    """Add mails in the caller's transaction; a mail whose dedupe key exists is skipped.
    One many-row INSERT (the 10,000 mails of an expiry run included)."""
    # Tuples in the driver's types, the instant converted once: a dict per mail and the
    # conversion per value were 12 % of an expiry run on SQLite. The texts need none.
    at = driver_value(conn, outbox.c.created_at, now)
    rows = [(*m, at, at, 0) for m in mails]  # a Mail's fields are `_ENQUEUED`'s first five
    insert_new_values(conn, outbox, ["dedupe_key"], _ENQUEUED, rows)


_ENQUEUED = [
    "dedupe_key",
    "recipient_id",
    "language",
    "subject",
    "body",
    "created_at",
    "next_attempt_at",
    "attempts",
]


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpSettings:
        parsed = urlparse(url)
        if parsed.scheme != "smtp" or not parsed.hostname:
            raise ValueError(f"BOOKING_SMTP_URL must look like smtp://host:port, not {url!r}")
        return cls(parsed.hostname, parsed.port or 25, sender)


# Resolves a recipient id to an address at send time (None once the person is erased).
AddressOf = Callable[[Connection, str], "str | None"]


def _claim(engine: Engine, now: datetime, limit: int) -> list[int]:
    t = outbox
    with write_transaction(engine) as conn:
        due = select(t.c.id).where(
            t.c.sent_at.is_(None),
            t.c.next_attempt_at <= now,
            or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(conn.execute(due.order_by(t.c.id).limit(limit)).scalars())
        if ids:
            conn.execute(update(t).where(t.c.id.in_(ids)).values(claimed_until=now + LEASE))
    return ids


def deliver(
    engine: Engine,
    smtp: SmtpSettings | None,
    address_of: AddressOf,
    now: datetime,
    limit: int = 100,
) -> int:
    """Send what is due at `now`; returns how many were sent. Without SMTP, log each mail
    once."""
    if smtp is None:
        return _log_unsent(engine, now)
    sent = 0
    for mail_id in _claim(engine, now, limit):
        with write_transaction(engine) as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == mail_id)).one()
            address = address_of(conn, row.recipient_id)
        if address is None:  # the person was erased or has no address: nothing to send
            _finish(engine, mail_id, now, error="no address")
            continue
        try:
            _send(smtp, row, address)
        except (OSError, smtplib.SMTPException) as error:
            log.warning("mail %s not sent (attempt %s): %s", mail_id, row.attempts + 1, error)
            with write_transaction(engine) as conn:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == mail_id)
                    .values(
                        attempts=row.attempts + 1,
                        next_attempt_at=now + backoff(row.attempts + 1),
                        claimed_until=None,
                        last_error=str(error)[:500],
                    )
                )
            continue
        _finish(engine, mail_id, now)
        sent += 1
    return sent


def _finish(engine: Engine, mail_id: int, now: datetime, error: str | None = None) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == mail_id)
            .values(sent_at=now, claimed_until=None, last_error=error)
        )


def _send(smtp: SmtpSettings, row: Any, address: str) -> None:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = address
    message["Subject"] = row.subject
    message["Message-ID"] = f"<outbox-{row.id}@tilavaraus>"
    message["Content-Language"] = row.language
    message.set_content(row.body)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.send_message(message)


def _log_unsent(engine: Engine, now: datetime) -> int:
    t = outbox
    with write_transaction(engine) as conn:
        rows = conn.execute(
            select(t.c.id, t.c.recipient_id, t.c.subject).where(
                and_(t.c.sent_at.is_(None), t.c.logged_at.is_(None))
            )
        ).all()
        for row in rows:
            log.info("mail kept in the outbox (no SMTP): #%s to %s: %s", *row)
        if rows:
            conn.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(logged_at=now))
    return 0
