"""Organisations people join (API.md "Signing in with OpenID Connect, and organisations").

A signed-in person asks to join an organisation; staff approve or reject, and so does the
organisation's own contact person where staff named one (organisations.contact_user_id,
booking.usecases.accounts.name_contact) — for that organisation only, never the person who
asked. A retired organisation takes no requests and lets no one in. An approved resident
becomes a `booker`. A person's organisations are the one they were created with
(`users.organisation_id`) and every approved membership; a person in several names the one
a booking is for. The request's message is the person's own text: sealed under their key
(booking.privacy), like every personal text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from booking.accounts import User, organisation_exists
from booking.domain.commands import Actor
from booking.domain.errors import InvalidState, NotAllowed, NotFound, RuleBroken, StaleVersion
from booking.privacy import Vault
from booking.tables import metadata, organisations, users
from events import pipeline
from events.sql import UTCDateTime

STAFF = ("staff", "admin")
RETIRED = "The organisation is retired: it takes no new members."
STATUSES = ("pending", "approved", "rejected")

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id"), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("organisations.id"), primary_key=True),
    Column("joined_at", UTCDateTime, nullable=False),
)

membership_requests = Table(
    "membership_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("organisations.id"), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("message", Text, nullable=False),  # sealed under the person's key
    Column("status", String(16), nullable=False),
    Column("reason", Text),  # staff's reason for a rejection (no personal data asked)
    Column("decided_by", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Index("ix_membership_requests_status", "status", "created_at"),
)


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str


def organisations_of(conn: Connection, user_id: str) -> list[Organisation]:
    """The person's organisations, by name: the one they were made with and those joined."""
    ahead = pipeline.remembered(conn, ("organisations", user_id))
    if ahead is not None:
        return list(ahead)
    rows = conn.execute(_ORGANISATIONS_OF, {"user": user_id})
    return [Organisation(r.id, r.name) for r in rows]


def _organisations_of() -> Any:
    user: Any = bindparam("user")
    joined = select(memberships.c.organisation_id).where(memberships.c.user_id == user)
    own = select(users.c.organisation_id).where(
        users.c.id == user, users.c.organisation_id.is_not(None)
    )
    return (
        select(organisations.c.id, organisations.c.name)
        .where(organisations.c.id.in_(joined.union(own).scalar_subquery()))
        .order_by(organisations.c.name, organisations.c.id)
    )


_ORGANISATIONS_OF = _organisations_of()


def organisations_ahead(user_id: str) -> pipeline.Ahead:
    """`organisations_of` as a read for the first round trip (`events.pipeline.read_ahead`)."""
    return pipeline.Ahead(
        _ORGANISATIONS_OF,
        {"user": user_id},
        ("organisations", user_id),
        lambda rows: [Organisation(*row) for row in rows],
    )


def organisation_for_booking(conn: Connection, actor: Actor, asked: str | None) -> str | None:
    """The organisation a booking is for: staff may name any that exists (422 for one that
    does not) or none; a member names one of theirs — 422 when they belong to several and
    name none, 403 for one not theirs."""
    if actor.is_staff:
        if asked and not organisation_exists(conn, asked):
            raise RuleBroken({"organisation_id": [f"No organisation {asked!r}."]})
        return asked or actor.organisation_id
    mine = [o.id for o in organisations_of(conn, actor.user_id)]
    if asked:
        if asked not in mine:
            raise NotAllowed("You may book only for an organisation you belong to.")
        return asked
    if len(mine) > 1:
        raise RuleBroken({"organisation_id": ["You belong to several organisations: name one."]})
    return mine[0] if mine else actor.organisation_id


def acting_for(actor: Actor, organisation_id: str | None) -> Actor:
    """The person as a member of the organisation `organisation_for_booking` chose."""
    if actor.is_staff or actor.organisation_id == organisation_id:
        return actor  # (already: most bookers belong to one organisation)
    return replace(actor, organisation_id=organisation_id)


def ask(
    conn: Connection,
    vault: Vault,
    user: User,
    organisation_id: str,
    message: str,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """A pending request to join; 404 for no such organisation, 409 when it is retired,
    when already a member or already asking."""
    found = conn.execute(
        select(organisations.c.retired_at).where(organisations.c.id == organisation_id)
    ).first()
    if found is None:
        raise NotFound(f"No organisation {organisation_id!r}.")
    if found.retired_at is not None:
        raise InvalidState(RETIRED)
    if any(o.id == organisation_id for o in organisations_of(conn, user.id)):
        raise InvalidState("You are a member of this organisation already.")
    r = membership_requests.c
    if conn.execute(
        select(r.id).where(
            r.user_id == user.id, r.organisation_id == organisation_id, r.status == "pending"
        )
    ).first():
        raise InvalidState("You have asked to join this organisation already.")
    conn.execute(
        insert(membership_requests).values(
            id=request_id,
            organisation_id=organisation_id,
            user_id=user.id,
            message=vault.seal_for(conn, user.id, message),
            status="pending",
            created_at=now,
        )
    )
    return request_json(conn, vault, request_id)


def request_json(conn: Connection, vault: Vault, request_id: str) -> dict[str, Any]:
    r = membership_requests.c
    row = conn.execute(
        select(membership_requests, organisations.c.name.label("organisation_name"))
        .join(organisations, organisations.c.id == r.organisation_id)
        .where(r.id == request_id)
    ).first()
    if row is None:
        raise NotFound(f"No membership request {request_id!r}.")
    return as_json(row, vault.reader(conn))


def version_of(status: str) -> int:
    """A request changes once, when it is decided: version 1 while pending, then 2."""
    return 1 if status == "pending" else 2


def as_json(row: Any, personal: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "organisation_id": row.organisation_id,
        "organisation_name": row.organisation_name,
        "user_id": row.user_id,
        "message": personal.open(row.message),
        "reason": row.reason,
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "decided_at": row.decided_at.isoformat().replace("+00:00", "Z") if row.decided_at else None,
        "version": version_of(row.status),
    }


def contact_of(conn: Connection, user_id: str) -> list[str]:
    """The organisations whose contact person `user_id` is (and still a member of)."""
    mine = {o.id for o in organisations_of(conn, user_id)}
    named = conn.execute(
        select(organisations.c.id).where(organisations.c.contact_user_id == user_id)
    )
    return sorted(row.id for row in named if row.id in mine)


def may_decide(conn: Connection, user: User, organisation_id: str) -> bool:
    """Staff decide every request; a contact person those of their organisation."""
    return user.role in STAFF or organisation_id in contact_of(conn, user.id)


def listed(
    conn: Connection,
    vault: Vault,
    status: str | None,
    user_id: str | None = None,
    organisation_ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Requests, oldest first: those of `status`, of `user_id` and of `organisation_ids`
    when given (the pages; the API pages through booking.queries.memberships)."""
    r = membership_requests.c
    query = (
        select(membership_requests, organisations.c.name.label("organisation_name"))
        .join(organisations, organisations.c.id == r.organisation_id)
        .order_by(r.created_at, r.id)
    )
    if status:
        query = query.where(r.status == status)
    if user_id:
        query = query.where(r.user_id == user_id)
    if organisation_ids is not None:
        query = query.where(r.organisation_id.in_(organisation_ids))
    personal = vault.reader(conn)
    return [as_json(row, personal) for row in conn.execute(query)]


def listed_for(conn: Connection, vault: Vault, user_id: str) -> list[dict[str, Any]]:
    return listed(conn, vault, None, user_id)


def decide(
    conn: Connection,
    vault: Vault,
    decider: User,
    request_id: str,
    approve: bool,
    reason: str | None,
    now: datetime,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Approve (the person joins; a resident becomes a booker) or reject a pending request:
    staff, or the organisation's contact person; never the person who asked (403). With
    `expected_version` (If-Match), a request that is no longer that version is StaleVersion."""
    r = membership_requests.c
    row = conn.execute(select(membership_requests).where(r.id == request_id)).first()
    if row is None:
        raise NotFound(f"No membership request {request_id!r}.")
    if not may_decide(conn, decider, row.organisation_id):
        raise NotAllowed("Staff and the organisation's contact person decide its requests.")
    if row.user_id == decider.id:
        raise NotAllowed("Someone else decides your own request to join.")
    if expected_version is not None and expected_version != version_of(row.status):
        raise StaleVersion(version_of(row.status))
    if row.status != "pending":
        raise InvalidState(f"The request is {row.status} already.")
    if (
        approve
        and conn.execute(
            select(organisations.c.retired_at).where(organisations.c.id == row.organisation_id)
        ).scalar()
    ):
        raise InvalidState(RETIRED)
    changed = conn.execute(
        update(membership_requests)
        .where(r.id == request_id, r.status == "pending")
        .values(
            status="approved" if approve else "rejected",
            reason=None if approve else (reason or ""),
            decided_by=decider.id,
            decided_at=now,
        )
    ).rowcount
    if not changed:  # decided by someone else meanwhile
        raise InvalidState("The request was decided already.")
    if approve:
        conn.execute(
            insert(memberships).values(
                user_id=row.user_id, organisation_id=row.organisation_id, joined_at=now
            )
        )
        person = conn.execute(
            select(users.c.role, users.c.organisation_id).where(users.c.id == row.user_id)
        ).one()
        if person.role == "resident":
            conn.execute(
                update(users)
                .where(users.c.id == row.user_id)
                .values(role="booker", organisation_id=row.organisation_id)
            )
    return request_json(conn, vault, request_id)


def leave(conn: Connection, user: User, organisation_id: str) -> None:
    """Leave an organisation joined through a request (404 when not a member that way)."""
    gone = conn.execute(
        delete(memberships).where(
            memberships.c.user_id == user.id, memberships.c.organisation_id == organisation_id
        )
    ).rowcount
    if not gone:
        raise NotFound("You are not a member of that organisation through a request.")
    if user.organisation_id == organisation_id and user.role == "booker":
        rest = [o.id for o in organisations_of(conn, user.id) if o.id != organisation_id]
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(
                organisation_id=rest[0] if rest else None,
                role="booker" if rest else "resident",
            )
        )
