"""Handlers for private iCalendar feed tokens: create one for a scope, revoke one.

POST/DELETE /api/v1/feed-tokens and the /feeds page call these. A token is a long random
secret that lives only in its URL; only its sha256 is stored. Staff and admins subscribe to
premises (with details), a booker only to its own organisation's bookings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from booking.accounts import User, organisation_exists, token_hash
from booking.domain.errors import NotAllowed, NotFound, RuleBroken
from booking.tables import feed_token_keys, feed_tokens
from projections.catalogue import premises_table


@dataclass(frozen=True)
class FeedTokenIssued:
    id: str
    scope: dict[str, Any]  # as stored: {"premises": [ids]} or {"organisation": id}
    created_at: datetime
    secret: str  # goes into the feed's URL, shown once


def checked_scope(conn: Connection, user: User, scope: dict[str, Any]) -> dict[str, Any]:
    """The scope as stored, or NotAllowed (403) / RuleBroken (422)."""
    staff = user.role in ("staff", "admin")
    if len(scope) != 1 or not ({"premises", "organisation"} & set(scope)):
        raise RuleBroken({"scope": ['Give either {"premises": [ids]} or {"organisation": id}.']})
    if "premises" in scope:
        if not staff:
            raise NotAllowed("Only staff may subscribe to premises with booking details.")
        ids = list(dict.fromkeys(scope["premises"]))
        known = set(
            conn.execute(select(premises_table.c.id).where(premises_table.c.id.in_(ids)))
            .scalars()
            .all()
        )
        if unknown := [i for i in ids if i not in known]:
            raise RuleBroken({"scope": [f"No such premises: {', '.join(unknown)}."]})
        return {"premises": ids}
    organisation_id = scope["organisation"]
    if not staff and organisation_id != user.organisation_id:
        raise NotAllowed("You may subscribe only to your own organisation's bookings.")
    if not organisation_exists(conn, organisation_id):
        raise RuleBroken({"scope": ["No such organisation."]})
    return {"organisation": organisation_id}


def create_feed_token(
    conn: Connection,
    user: User,
    scope: dict[str, Any],
    now: datetime,
    token_id: str,
    secret: str,
) -> FeedTokenIssued:
    checked = checked_scope(conn, user, scope)
    kind = next(iter(checked))
    conn.execute(
        insert(feed_tokens).values(
            id=token_id, token_hash=token_hash(secret), user_id=user.id, scope=kind, created_at=now
        )
    )
    keys = checked["premises"] if kind == "premises" else [checked["organisation"]]
    conn.execute(
        insert(feed_token_keys),
        [{"token_id": token_id, "key": key, "ordinal": n} for n, key in enumerate(keys)],
    )
    return FeedTokenIssued(token_id, checked, now, secret)


def revoke_feed_token(conn: Connection, user: User, token_id: str, now: datetime) -> None:
    """Revoke a live token of `user` (an admin: anyone's), or NotFound."""
    t = feed_tokens
    mine = t.c.user_id == user.id if user.role != "admin" else t.c.id == token_id
    done = conn.execute(
        update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None), mine).values(revoked_at=now)
    )
    if not done.rowcount:
        raise NotFound(f"No live feed token {token_id!r} of yours.")
