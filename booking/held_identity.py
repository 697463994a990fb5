"""What signing in and joining organisations keep about a person, for their data export
(GET /api/v1/users/{id}/data). Erasure (booking.accounts) ends the sessions and drops the
provider identities; membership messages are sealed, so they are shredded with the key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.memberships import listed_for
from booking.oidc_people import oidc_identities
from booking.privacy import Vault
from booking.sessions import sessions


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat()).replace("+00:00", "Z")


def held(conn: Connection, vault: Vault, user_id: str) -> dict[str, Any]:
    """Sessions (never their secrets), provider identities and membership requests."""
    s = sessions.c
    return {
        "sessions": [
            {
                "id": r.id,
                "method": r.method,
                "strong": r.strong,
                "acr": r.acr,
                "created_at": _iso(r.created_at),
                "last_seen_at": _iso(r.last_seen_at),
                "ended_at": _iso(r.ended_at),
            }
            for r in conn.execute(
                select(sessions).where(s.user_id == user_id).order_by(s.created_at, s.id)
            )
        ],
        "identities": [
            {
                "issuer": r.issuer,
                "subject": r.subject,
                "created_at": _iso(r.created_at),
                "granted_role": r.granted_role,  # what the provider's claim granted
            }
            for r in conn.execute(
                select(oidc_identities).where(oidc_identities.c.user_id == user_id)
            )
        ],
        "membership_requests": listed_for(conn, vault, user_id),
    }
