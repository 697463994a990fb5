"""Sign-in sessions kept in the database, so that ending one takes effect at once.

The browser's cookie carries only a random secret; the database keeps its SHA-256 (a copied
cookie of an ended session finds nothing). A session lives at most `LIFETIME` from sign-in
and `IDLE` from its last use. `/logout` ends the session, the person can end any of theirs
(API.md "Signing in with OpenID Connect"), and disabling or erasing a person ends all of
theirs and revokes their API tokens (`end_everything`).

This module knows rows, not people: booking.auth turns a live session into a User.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, insert, select, update
from sqlalchemy.engine import Connection

from booking.domain.errors import RuleBroken
from booking.queries.paging import BAD_CURSOR, Page, PageRequest, fetch_page
from booking.tables import api_tokens, feed_tokens, metadata, users
from events.sql import UTCDateTime

LIFETIME = timedelta(hours=12)  # from sign-in, whatever happens
IDLE = timedelta(hours=2)  # from the last request
# last_seen_at is written at most this often: a page view is a read, not a write.
TOUCH_EVERY = timedelta(minutes=1)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),  # public: what the person sees and ends
    Column("secret_hash", String(64), nullable=False, unique=True),  # sha256 of the cookie
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("method", String(16), nullable=False),  # password | link | oidc
    Column("strong", Boolean, nullable=False),
    Column("acr", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)

# Who may not sign in any more (no personal data): disabling keeps the account and its
# history, unlike erasure.
disabled_people = Table(
    "disabled_people",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id"), primary_key=True),
    Column("disabled_at", UTCDateTime, nullable=False),
    Column("disabled_by", String(64)),
)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    method: str
    strong: bool
    acr: str | None
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class NewSession:
    session: Session
    secret: str  # for the cookie only; never stored


class Disabled(Exception):
    """The person was disabled: no new session."""


def is_disabled(conn: Connection, user_id: str) -> bool:
    found = conn.execute(
        select(disabled_people.c.user_id).where(disabled_people.c.user_id == user_id)
    ).first()
    return found is not None


def start(
    conn: Connection,
    user_id: str,
    now: datetime,
    session_id: str,
    method: str,
    strong: bool = False,
    acr: str | None = None,
) -> NewSession:
    """A new session for the person (raises Disabled for a disabled one)."""
    if is_disabled(conn, user_id):
        raise Disabled(user_id)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        insert(sessions).values(
            id=session_id,
            secret_hash=secret_hash(secret),
            user_id=user_id,
            method=method,
            strong=strong,
            acr=acr,
            created_at=now,
            last_seen_at=now,
        )
    )
    return NewSession(Session(session_id, user_id, method, strong, acr, now, now), secret)


def _live(now: datetime) -> Any:
    s = sessions.c
    return (
        s.ended_at.is_(None),
        s.created_at > now - LIFETIME,
        s.last_seen_at > now - IDLE,
    )


def _session(row: Any) -> Session:
    return Session(
        row.id, row.user_id, row.method, row.strong, row.acr, row.created_at, row.last_seen_at
    )


def find(conn: Connection, secret: str, now: datetime) -> Session | None:
    """The live session of a cookie's secret, of a person neither erased nor disabled."""
    row = conn.execute(
        select(sessions)
        .join(users, users.c.id == sessions.c.user_id)
        .outerjoin(disabled_people, disabled_people.c.user_id == sessions.c.user_id)
        .where(
            sessions.c.secret_hash == secret_hash(secret),
            users.c.erased_at.is_(None),
            disabled_people.c.user_id.is_(None),
            *_live(now),
        )
    ).first()
    return None if row is None else _session(row)


def due_for_touch(session: Session, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def touch(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
        .values(last_seen_at=now)
    )


def page_of_user(conn: Connection, user_id: str, now: datetime, page: PageRequest) -> Page[Session]:
    """One page of the person's live sessions, newest first (by created_at, then id, both
    descending: a cursor names one row whatever the clock's resolution)."""
    if page.after is not None and (
        len(page.after) != 2
        or not isinstance(page.after[0], datetime)
        or not isinstance(page.after[1], str)
    ):
        raise RuleBroken({"after": [BAD_CURSOR]})
    found = fetch_page(
        conn,
        select(sessions).where(sessions.c.user_id == user_id, *_live(now)),
        [sessions.c.created_at, sessions.c.id],
        page,
        descending=True,
    )
    return Page([_session(row) for row in found.rows], found.next)


def end(conn: Connection, session_id: str, now: datetime, user_id: str | None = None) -> bool:
    """End one session (only the person's own, when `user_id` is given); True if it was live."""
    condition = [sessions.c.id == session_id, sessions.c.ended_at.is_(None)]
    if user_id is not None:
        condition.append(sessions.c.user_id == user_id)
    return bool(conn.execute(update(sessions).where(*condition).values(ended_at=now)).rowcount)


def end_all(conn: Connection, user_id: str, now: datetime, keep: str | None = None) -> int:
    """End every live session of the person but `keep`; how many were ended."""
    condition = [sessions.c.user_id == user_id, sessions.c.ended_at.is_(None)]
    if keep is not None:
        condition.append(sessions.c.id != keep)
    return int(conn.execute(update(sessions).where(*condition).values(ended_at=now)).rowcount)


def end_everything(conn: Connection, user_id: str, now: datetime) -> None:
    """End all of a person's sessions and revoke their API and feed tokens at once."""
    end_all(conn, user_id, now)
    for tokens in (api_tokens, feed_tokens):
        conn.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def disable(conn: Connection, user_id: str, now: datetime, by: str | None) -> datetime:
    """Disable a person: no sign-in, no session, no token from now on. Returns when (the
    first time; disabling twice changes nothing)."""
    found = conn.execute(
        select(disabled_people.c.disabled_at).where(disabled_people.c.user_id == user_id)
    ).first()
    if found is not None:
        disabled_at: datetime = found.disabled_at
        return disabled_at
    conn.execute(insert(disabled_people).values(user_id=user_id, disabled_at=now, disabled_by=by))
    end_everything(conn, user_id, now)
    return now
