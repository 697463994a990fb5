"""People known by an OpenID Connect issuer and subject: the rows (the sign-in's handler is
booking.usecases.accounts.sign_in_through_provider).

Only the pseudonymous pair (issuer, sub) is kept in clear; the name and e-mail the provider
gives are sealed under the person's own key (booking.privacy), so erasure shreds them. The
provider's e-mail is never used to find an existing account (an account with the same
address is not taken over): a new pair is a new person, a `resident`, with no e-mail lookup
hash, so neither a password nor an e-mailed link can reach the account by that address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, delete, insert, select, update
from sqlalchemy.engine import Connection

from booking.privacy import PersonalData
from booking.tables import metadata, users
from events.sql import UTCDateTime

oidc_identities = Table(
    "oidc_identities",
    metadata,
    Column("issuer", String(300), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The role the provider's claim granted at the last sign-in (BOOKING_OIDC_ROLE_MAP), or
    # None: a role it stops granting is taken away, one an admin gave is left alone.
    Column("granted_role", String(16)),
)


def identity(conn: Connection, issuer: str, subject: str) -> Any:
    """(user_id, erased_at, granted_role) of the person the pair names, or None."""
    mine = (oidc_identities.c.issuer == issuer, oidc_identities.c.subject == subject)
    return conn.execute(
        select(oidc_identities.c.user_id, oidc_identities.c.granted_role, users.c.erased_at)
        .join(users, users.c.id == oidc_identities.c.user_id)
        .where(*mine)
    ).first()


def forget(conn: Connection, issuer: str, subject: str) -> None:
    """An erased person who comes back is someone new: nothing links them to the old."""
    conn.execute(
        delete(oidc_identities).where(
            oidc_identities.c.issuer == issuer, oidc_identities.c.subject == subject
        )
    )


def remember(conn: Connection, issuer: str, subject: str, user_id: str, now: datetime) -> None:
    conn.execute(
        insert(oidc_identities).values(
            issuer=issuer, subject=subject, user_id=user_id, created_at=now
        )
    )


def grant(conn: Connection, issuer: str, subject: str, role: str | None) -> None:
    """What the provider's claim grants the pair from now on (None: nothing)."""
    conn.execute(
        update(oidc_identities)
        .where(oidc_identities.c.issuer == issuer, oidc_identities.c.subject == subject)
        .values(granted_role=role)
    )


def forget_grants(conn: Connection, user_id: str) -> None:
    """An admin decided the person's role: the provider took no role away that it gave."""
    conn.execute(
        update(oidc_identities)
        .where(oidc_identities.c.user_id == user_id)
        .values(granted_role=None)
    )


def reseal(conn: Connection, personal: PersonalData, user_id: str, name: str, email: str) -> None:
    """The sealed name and e-mail follow what the provider says now."""
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            email=personal.seal(user_id, email) if email else "",
            name=personal.seal(user_id, name) if name else "",
        )
    )
