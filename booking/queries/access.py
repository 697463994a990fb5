"""Who may see what: the one answer for bookings, pop-up requests and their threads.

A booking, a pop-up request and the message thread on each are seen by the same people:
staff, the person who booked or asked, and the booking's organisation
(booking.domain.messages.Thread.open_to, the rule posting uses too).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, true

from booking.domain.commands import Actor
from booking.domain.messages import Thread
from projections.bookings import bookings_table
from projections.popups import popups_table


def thread_of(kind: str, row: Any) -> Thread:
    """The thread of a booking row (`kind="booking"`) or a pop-up row (`"popup"`)."""
    if kind == "booking":
        return Thread("booking", row.id, row.booked_by, row.organisation_id)
    return Thread("popup", row.id, row.requested_by, None)


def may_see(viewer: Actor, kind: str, row: Any) -> bool:
    """Whether `viewer` may see the booking or pop-up request `row` and its thread."""
    return thread_of(kind, row).open_to(viewer)


def visible_bookings(viewer: Actor) -> ColumnElement[bool]:
    """`may_see` for a list of bookings, as a WHERE clause."""
    b = bookings_table
    if viewer.is_staff:
        return true()
    mine = b.c.booked_by == viewer.user_id
    if viewer.organisation_id:
        mine = or_(mine, b.c.organisation_id == viewer.organisation_id)
    return mine


def visible_popups(viewer: Actor) -> ColumnElement[bool]:
    """`may_see` for a list of pop-up requests, as a WHERE clause."""
    return true() if viewer.is_staff else popups_table.c.requested_by == viewer.user_id
