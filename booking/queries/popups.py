"""Pop-up request rows as the API, the pages and the expiry job read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, NotFound
from booking.queries.access import may_see, visible_popups
from booking.queries.paging import Page, PageRequest, fetch_page
from projections.catalogue import premises_table
from projections.popups import popups_table


def with_zone() -> Select[Any]:
    p, c = popups_table, premises_table
    return select(p, c.c.timezone).join(c, c.c.id == p.c.premises_id)


def popup_row(conn: Connection, request_id: str) -> Any:
    """One request with its premises' zone; NotFound when none."""
    row = conn.execute(with_zone().where(popups_table.c.id == request_id)).first()
    if row is None:
        raise NotFound(f"No pop-up request {request_id!r}.")
    return row


def visible_popup(conn: Connection, viewer: Actor, request_id: str) -> Any:
    """One request the viewer may see: NotFound, or NotAllowed for someone else's."""
    row = popup_row(conn, request_id)
    if not may_see(viewer, "popup", row):
        raise NotAllowed("The request is someone else's.")
    return row


@dataclass(frozen=True)
class PopupFilter:
    status: str | None = None
    premises_id: str | None = None


def list_popups(
    conn: Connection, viewer: Actor, wanted: PopupFilter, page: PageRequest
) -> Page[Any]:
    """A page of the requests the viewer may see (staff: all), by decision deadline."""
    p = popups_table
    sql = with_zone().where(visible_popups(viewer))
    if wanted.status is not None:
        sql = sql.where(p.c.status == wanted.status)
    if wanted.premises_id is not None:
        sql = sql.where(p.c.premises_id == wanted.premises_id)
    return fetch_page(conn, sql, [p.c.decision_deadline, p.c.id], page)


def pending_popups(conn: Connection) -> list[Any]:
    """The staff queue: pending requests, nearest deadline first."""
    p = popups_table
    sql = with_zone().where(p.c.status == "pending").order_by(p.c.decision_deadline)
    return list(conn.execute(sql).all())


def popups_of(conn: Connection, viewer: Actor, limit: int = 500) -> list[Any]:
    """The viewer's own requests, by start."""
    p = popups_table
    sql = with_zone().where(p.c.requested_by == viewer.user_id).order_by(p.c.start)
    return list(conn.execute(sql.limit(limit)).all())


def premises_due_to_expire(conn: Connection, now: datetime) -> list[str]:
    """The premises that have a pending request whose decision deadline has passed."""
    p = popups_table
    return list(
        conn.execute(
            select(p.c.premises_id)
            .where(p.c.status == "pending", p.c.decision_deadline <= now)
            .distinct()
            .order_by(p.c.premises_id)
        ).scalars()
    )
