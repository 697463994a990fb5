"""Message threads as the API and the pages read them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, NotFound
from booking.domain.messages import Thread
from booking.queries.access import thread_of
from booking.queries.paging import Page, PageRequest, fetch_page
from booking.queries.popups import popup_row
from projections.bookings import bookings_table
from projections.messages import messages_table


def thread(conn: Connection, kind: str, thread_id: str) -> Thread:
    """The thread on a booking or pop-up request; NotFound when there is no such thing."""
    if kind == "booking":
        b = bookings_table
        row = conn.execute(
            select(b.c.id, b.c.booked_by, b.c.organisation_id).where(b.c.id == thread_id)
        ).first()
        if row is None:
            raise NotFound(f"No booking {thread_id!r}.")
        return thread_of(kind, row)
    return thread_of(kind, popup_row(conn, thread_id))


def open_thread(conn: Connection, viewer: Actor, kind: str, thread_id: str) -> Thread:
    """The thread, when the viewer may read it (NotAllowed otherwise)."""
    found = thread(conn, kind, thread_id)
    if not found.open_to(viewer):
        raise NotAllowed("Only the booker's side and staff read this thread.")
    return found


def messages(conn: Connection, of: Thread, page: PageRequest) -> Page[Any]:
    """A page of a thread's messages, oldest first (bodies still sealed)."""
    m = messages_table
    sql = select(m).where(m.c.thread_kind == of.kind, m.c.thread_id == of.thread_id)
    return fetch_page(conn, sql, [m.c.posted_at, m.c.id], page)


def message_row(conn: Connection, message_id: str) -> Any:
    m = messages_table
    return conn.execute(select(m).where(m.c.id == message_id)).one()
