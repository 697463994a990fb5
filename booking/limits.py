"""Sign-in limits kept in the database, so they hold across every worker and process.

Each attempt is a row (which limit, a keyed hash of what it counts — an e-mail address or a
client address, never the value itself —, when). A limit allows `limit` attempts within
`window`; rows older than the window are pruned as new ones come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, Integer, String, Table, delete, func, insert, select
from sqlalchemy.engine import Connection

from booking.privacy import Vault
from booking.tables import metadata
from events.sql import UTCDateTime

signin_attempts = Table(
    "signin_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bucket", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_signin_attempts_bucket_key_at", "bucket", "key_hash", "at"),
)


@dataclass(frozen=True)
class Limit:
    """At most `limit` attempts per key within `window`, counted in the database."""

    bucket: str
    limit: int
    window: timedelta

    def _key(self, vault: Vault, key: str) -> str:
        return vault.lookup_hash(f"{self.bucket}:{key}")

    def blocked(self, conn: Connection, vault: Vault, key: str, now: datetime) -> float:
        """Seconds to wait before `key` may try again (0 when it may try now)."""
        t = signin_attempts.c
        count, oldest = conn.execute(
            select(func.count(), func.min(t.at)).where(
                t.bucket == self.bucket,
                t.key_hash == self._key(vault, key),
                t.at > now - self.window,
            )
        ).one()
        if count < self.limit or oldest is None:
            return 0.0
        wait: float = (oldest + self.window - now).total_seconds()
        return max(wait, 1.0)

    def hit(self, conn: Connection, vault: Vault, key: str, now: datetime) -> None:
        t = signin_attempts.c
        conn.execute(
            delete(signin_attempts).where(t.bucket == self.bucket, t.at <= now - self.window)
        )
        conn.execute(
            insert(signin_attempts).values(
                bucket=self.bucket, key_hash=self._key(vault, key), at=now
            )
        )

    def reset(self, conn: Connection, vault: Vault, key: str) -> None:
        t = signin_attempts.c
        conn.execute(
            delete(signin_attempts).where(
                t.bucket == self.bucket, t.key_hash == self._key(vault, key)
            )
        )


# Failed sign-ins per e-mail address and per client address, and links asked per client.
FAILURES_PER_EMAIL = Limit("failures-email", 5, timedelta(minutes=15))
FAILURES_PER_CLIENT = Limit("failures-client", 30, timedelta(minutes=15))
LINKS_PER_CLIENT = Limit("links-client", 5, timedelta(minutes=15))
# Provider sign-ins started per client: each one stores a pending transaction.
OIDC_STARTS_PER_CLIENT = Limit("oidc-client", 30, timedelta(minutes=15))
