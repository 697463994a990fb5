"""Keyset paging for every list that can grow without bound (API.md: `?limit=` and
`?after=`, `next` in the body, `Link: <…>; rel="next"`; a list is never cut silently).

A list is ordered by a few columns that together are unique (e.g. start, id). A page asks
for `limit` rows after a cursor; the cursor is the last row's values of those columns,
encoded as opaque text (clients pass it back as `after`, never build one). One row more
than asked is read to know whether a next page exists, so `next` is null exactly at the end.

    page = PageRequest.of(limit=100, after=query.get("after"))
    found = fetch_page(conn, sql, [t.c.start, t.c.id], page)
    body = {"bookings": [...found.rows], "next": found.next}
    headers = link_header(request.url, found.next)

Malformed cursors are a `RuleBroken` on the field `after` (422), like any bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import ColumnElement, Select, TypeDecorator, and_, or_
from sqlalchemy.engine import Connection

from booking.domain.errors import RuleBroken

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
BAD_CURSOR = "Not a cursor of this list: pass back the `next` of the previous page."


@dataclass(frozen=True)
class PageRequest:
    """`limit` rows after `after` (the decoded cursor: one value per ordering column)."""

    limit: int = DEFAULT_LIMIT
    after: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, limit: int | None = None, after: str | None = None) -> PageRequest:
        return cls(limit or DEFAULT_LIMIT, decode_cursor(after) if after else None)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (None at the end)."""

    rows: list[T]
    next: str | None


def encode_cursor(values: Sequence[Any]) -> str:
    """Opaque text for a row's ordering values (instants, text, whole numbers)."""
    tagged = [
        ["t", v.isoformat()] if isinstance(v, datetime) else ["i" if isinstance(v, int) else "s", v]
        for v in values
    ]
    raw = json.dumps(tagged, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[Any, ...]:
    """The values `encode_cursor` wrote; RuleBroken on `after` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tagged = json.loads(raw)
        values: list[Any] = []
        for tag, value in tagged:
            if tag == "t":
                instant = datetime.fromisoformat(value)
                if instant.tzinfo is None:
                    raise ValueError("naive")
                values.append(instant.astimezone(UTC))  # in range (else OverflowError)
            elif _plain(tag, value):
                values.append(value)
            else:
                raise ValueError(tag)
    except (
        ValueError,
        TypeError,
        OverflowError,
        binascii.Error,
        UnicodeDecodeError,
        RecursionError,
    ):
        raise RuleBroken({"after": [BAD_CURSOR]}) from None
    if not values:
        raise RuleBroken({"after": [BAD_CURSOR]})
    return tuple(values)


def _plain(tag: str, value: Any) -> bool:
    if tag == "i":  # within a 64-bit column, as every whole number we store is
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    return tag == "s" and isinstance(value, str) and _storable(value)


def _storable(text: str) -> bool:
    """Text both databases can compare with: no NUL (PostgreSQL refuses it) and no lone
    surrogate (which JSON can spell but UTF-8 cannot, so no driver can send it)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def after_clause(
    keys: Sequence[ColumnElement[Any]], after: Sequence[Any], descending: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after `after` in the order of `keys` (all ascending, or all descending),
    spelled without row-value comparison so that both databases use the same bound types as
    the columns."""
    if len(after) != len(keys) or not all(map(_fits, keys, after)):
        raise RuleBroken({"after": [BAD_CURSOR]})
    clauses = []
    for n, key in enumerate(keys):
        equal = [keys[i] == after[i] for i in range(n)]
        clauses.append(and_(*equal, key < after[n] if descending else key > after[n]))
    return or_(*clauses)


def _fits(key: ColumnElement[Any], value: Any) -> bool:
    """Whether a cursor's value is of its column's kind (a text where an instant belongs
    would reach PostgreSQL as a comparison it cannot make: a 500, not a 422)."""
    column_type = key.type
    if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime says `object` itself
        column_type = column_type.impl_instance
    try:
        kind = column_type.python_type
    except NotImplementedError:
        return True
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def fetch_page(
    conn: Connection,
    sql: Select[Any],
    keys: Sequence[ColumnElement[Any]],
    page: PageRequest,
    descending: bool = False,
) -> Page[Any]:
    """Run `sql` (already filtered, not yet ordered) as one page ordered by `keys` (latest
    first when `descending`); a row's key values are read back by the keys' names."""
    if page.after is not None:
        sql = sql.where(after_clause(keys, page.after, descending))
    order = [k.desc() for k in keys] if descending else list(keys)
    rows = list(conn.execute(sql.order_by(*order).limit(page.limit + 1)).all())
    if len(rows) <= page.limit:
        return Page(rows, None)
    rows = rows[: page.limit]
    last = rows[-1]
    return Page(rows, encode_cursor([getattr(last, _name(k)) for k in keys]))


def _name(key: ColumnElement[Any]) -> str:
    name = getattr(key, "key", None) or getattr(key, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"a paging key needs a name: {key!r}")
    return name


def next_url(url: str, cursor: str) -> str:
    """`url` with its `after` replaced by `cursor` (other parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "after"]
    query.append(("after", cursor))
    return urlunsplit(parts._replace(query=urlencode(query)))


def link_header(url: str, cursor: str | None) -> dict[str, str]:
    """The `Link: <…>; rel="next"` header of a page (none at the end)."""
    return {"Link": f'<{next_url(url, cursor)}>; rel="next"'} if cursor else {}
