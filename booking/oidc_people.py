"""People known by an OpenID Connect issuer and subject.

Only the pseudonymous pair (issuer, sub) is kept in clear; the name and e-mail the provider
gives are sealed under the person's own key (booking.privacy), so erasure shreds them. The
provider's e-mail is never used to find an existing account (an account with the same
address is not taken over): a new pair is a new person, a `resident`, with no e-mail lookup
hash, so neither a password nor an e-mailed link can reach the account by that address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, delete, insert, select, update
from sqlalchemy.engine import Connection

from booking.oidc import Verified
from booking.privacy import Vault
from booking.tables import metadata, users
from events.catalog import UserRegistered
from events.sql import UTCDateTime
from events.store import Metadata, append

oidc_identities = Table(
    "oidc_identities",
    metadata,
    Column("issuer", String(300), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

NEW_ROLE = "resident"


def person_of(
    conn: Connection, who: Verified, vault: Vault, now: datetime, new_id: str, language: str
) -> str:
    """The id of the person the provider's (issuer, sub) names, made on first sign-in; their
    sealed name and e-mail follow what the provider says now."""
    mine = (oidc_identities.c.issuer == who.issuer, oidc_identities.c.subject == who.subject)
    found = conn.execute(
        select(oidc_identities.c.user_id, users.c.erased_at)
        .join(users, users.c.id == oidc_identities.c.user_id)
        .where(*mine)
    ).first()
    if found is not None and found.erased_at is not None:
        # An erased person who comes back is someone new: nothing links them to the old.
        conn.execute(delete(oidc_identities).where(*mine))
        found = None
    if found is not None:
        user_id = str(found.user_id)
        personal = vault.reader(conn)
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                email=personal.seal(user_id, who.email) if who.email else "",
                name=personal.seal(user_id, who.name) if who.name else "",
            )
        )
        return user_id
    user_id = new_id
    append(
        conn,
        f"user-{user_id}",
        [UserRegistered(user_id, NEW_ROLE, None, language)],
        0,
        Metadata(actor=user_id),
        now=now,
    )
    vault.create_key(conn, user_id)
    personal = vault.reader(conn)
    conn.execute(
        insert(users).values(
            id=user_id,
            email=personal.seal(user_id, who.email) if who.email else "",
            name=personal.seal(user_id, who.name) if who.name else "",
            email_hash=None,  # never found by e-mail: see the module's docstring
            role=NEW_ROLE,
            organisation_id=None,
            language=language,
            password_hash=None,
            created_at=now,
        )
    )
    conn.execute(
        insert(oidc_identities).values(
            issuer=who.issuer, subject=who.subject, user_id=user_id, created_at=now
        )
    )
    return user_id
