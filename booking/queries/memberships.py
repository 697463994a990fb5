"""Requests to join organisations, one page at a time (API.md Conventions: `?limit=`,
`?after=`, `next`): staff read all, an organisation's contact person those of their
organisations (booking.memberships.contact_of says which)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.memberships import as_json, membership_requests
from booking.privacy import Vault
from booking.queries.paging import Page, PageRequest, fetch_page
from booking.tables import organisations


def membership_request_page(
    conn: Connection,
    vault: Vault,
    page: PageRequest,
    status: str | None = None,
    organisation_ids: list[str] | None = None,
) -> Page[dict[str, Any]]:
    """Requests oldest first (by `created_at`, then id), of `status` and of
    `organisation_ids` when given."""
    r = membership_requests.c
    sql = select(membership_requests, organisations.c.name.label("organisation_name")).join(
        organisations, organisations.c.id == r.organisation_id
    )
    if status:
        sql = sql.where(r.status == status)
    if organisation_ids is not None:
        sql = sql.where(r.organisation_id.in_(organisation_ids))
    found = fetch_page(conn, sql, [r.created_at, r.id], page)
    personal = vault.reader(conn)
    return Page([as_json(row, personal) for row in found.rows], found.next)
