"""Feed tokens as their owner sees them (never their secrets): the API's list, the /feeds
page and a person's data export read them here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.accounts import token_hash
from booking.domain.errors import RuleBroken
from booking.queries.paging import BAD_CURSOR, Page, PageRequest, encode_cursor
from booking.tables import feed_token_keys, feed_tokens


@dataclass
class FeedTokenRow:
    id: str
    scope: str  # "premises" | "organisation"
    names: list[str]  # the premises ids, or the one organisation id
    created_at: datetime
    revoked_at: datetime | None

    def scope_json(self) -> dict[str, Any]:
        if self.scope == "premises":
            return {"premises": list(self.names)}
        return {"organisation": self.names[0]}

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope_json(),
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


def feed_token_rows(
    conn: Connection,
    user_id: str,
    with_revoked: bool = False,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[FeedTokenRow]:
    """The user's tokens by creation (live ones only unless `with_revoked`); `after`
    (created_at, id) and `limit` page through them."""
    t, k = feed_tokens, feed_token_keys
    chosen = select(t.c.id).where(t.c.user_id == user_id)
    if not with_revoked:
        chosen = chosen.where(t.c.revoked_at.is_(None))
    if after is not None:
        created, token_id = after
        chosen = chosen.where(
            (t.c.created_at > created) | ((t.c.created_at == created) & (t.c.id > token_id))
        )
    chosen = chosen.order_by(t.c.created_at, t.c.id)
    if limit is not None:
        chosen = chosen.limit(limit)
    ids = list(conn.execute(chosen).scalars())
    if not ids:
        return []
    rows = conn.execute(
        select(t.c.id, t.c.scope, t.c.created_at, t.c.revoked_at, k.c.key)
        .join(k, k.c.token_id == t.c.id)
        .where(t.c.id.in_(ids))
        .order_by(t.c.created_at, t.c.id, k.c.ordinal)
    ).all()
    found: dict[str, FeedTokenRow] = {}
    for row in rows:
        token = found.setdefault(
            row.id, FeedTokenRow(row.id, row.scope, [], row.created_at, row.revoked_at)
        )
        token.names.append(row.key)
    return list(found.values())


def tokens_of(conn: Connection, user_id: str, with_revoked: bool = False) -> list[dict[str, Any]]:
    """The user's tokens as JSON, `revoked_at` (an instant or None) with `with_revoked`."""
    return [
        {**token.as_json(), **({"revoked_at": token.revoked_at} if with_revoked else {})}
        for token in feed_token_rows(conn, user_id, with_revoked)
    ]


def feed_token_page(conn: Connection, user_id: str, page: PageRequest) -> Page[FeedTokenRow]:
    """One page of the user's live tokens by (created_at, id)."""
    after = None
    if page.after is not None:
        values = page.after
        if (
            len(values) != 2
            or not isinstance(values[0], datetime)
            or not isinstance(values[1], str)
        ):
            raise RuleBroken({"after": [BAD_CURSOR]})
        after = (values[0], values[1])
    rows = feed_token_rows(conn, user_id, after=after, limit=page.limit + 1)
    if len(rows) <= page.limit:
        return Page(rows, None)
    rows = rows[: page.limit]
    return Page(rows, encode_cursor([rows[-1].created_at, rows[-1].id]))


def is_secret_of(conn: Connection, token_id: str, secret: str) -> bool:
    """Whether `secret` is the feed token's (revoked or not): only its hash is kept."""
    found = conn.execute(
        select(feed_tokens.c.id).where(
            feed_tokens.c.id == token_id, feed_tokens.c.token_hash == token_hash(secret)
        )
    ).first()
    return found is not None
