"""Message threads on the pages: read and write the booker's (or requester's) conversation
with staff — the same query (booking.queries.messages) and use case
(booking.usecases.messages) as /api/v1/.../messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from booking.accounts import User
from booking.http import new_id, now, runtime, unit_for
from booking.queries.messages import messages, open_thread
from booking.queries.paging import MAX_LIMIT, PageRequest
from booking.usecases.messages import post_message


def read_thread(conn: Connection, user: User, kind: str, thread_id: str) -> list[dict[str, Any]]:
    """The messages of a thread the user may read, oldest first, bodies opened."""
    thread = open_thread(conn, user.actor, kind, thread_id)
    found = messages(conn, thread, PageRequest(MAX_LIMIT))
    personal = runtime().vault.reader(conn)
    return [
        {
            "author_role": r.author_role,
            "mine": r.author_id == user.id,
            "body": personal.open(r.body),
            "posted_at": r.posted_at,
        }
        for r in found.rows
    ]


def post_to_thread(conn: Connection, user: User, kind: str, thread_id: str, text: str) -> None:
    """Post a message through the same use case as the API."""
    post_message(unit_for(conn, user.id), user.actor, kind, thread_id, text, new_id(), now())
