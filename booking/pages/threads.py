"""Message threads on the pages: read and write the booker's (or requester's) conversation
with staff — the same events and rules as /api/v1/.../messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.accounts import User
from booking.api.messages import _check_access
from booking.http import runtime
from booking.notifications import notify
from booking.pages.common import metadata
from events.catalog import MessagePosted
from events.store import append, stream_version
from projections.messages import messages_table
from projections.runner import project_inline


def read_thread(conn: Connection, user: User, kind: str, thread_id: str) -> list[dict[str, Any]]:
    """The messages of a thread the user may read, oldest first, bodies opened."""
    _check_access(conn, user, kind, thread_id)
    m = messages_table
    rows = conn.execute(
        select(m)
        .where(m.c.thread_kind == kind, m.c.thread_id == thread_id)
        .order_by(m.c.posted_at, m.c.id)
    ).all()
    personal = runtime().vault.reader(conn)
    return [
        {
            "author_role": r.author_role,
            "mine": r.author_id == user.id,
            "body": personal.open(r.body),
            "posted_at": r.posted_at,
        }
        for r in rows
    ]


def post_to_thread(conn: Connection, user: User, kind: str, thread_id: str, text: str) -> None:
    """Append a message (sealed with the author's key), project it and queue the e-mails."""
    _check_access(conn, user, kind, thread_id)
    vault = runtime().vault
    vault.ensure_key(conn, user.id)
    now = datetime.now(UTC)
    event = MessagePosted(
        kind,
        thread_id,
        str(uuid.uuid4()),
        user.id,
        user.role,
        vault.reader(conn).seal(user.id, text),
        now,
    )
    stream = f"thread-{kind}-{thread_id}"
    recorded = append(conn, stream, [event], stream_version(conn, stream), metadata(), now=now)
    project_inline(conn, [(event, recorded[0])])
    notify(conn, [(event, recorded[0])], now)
