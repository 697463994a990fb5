"""Premises as the API and the pages read them: one row, the catalogue's JSON, the search
with the usual filters, and a free slug for a new premises."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.domain.errors import NotFound, RuleBroken
from booking.queries.paging import BAD_CURSOR, Page, PageRequest, encode_cursor
from events.opening import OpeningHours
from events.slot import Slot
from projections.availability import free_for_whole
from projections.availability_read import busy_between
from projections.catalogue import PROFILE_FIELDS, premises_table


def premises_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        **{field: getattr(row, field) for field in PROFILE_FIELDS},
        "retired": row.retired,
        "version": row.version,
    }


def premises_row(conn: Connection, premises_id: str) -> Any:
    row = conn.execute(select(premises_table).where(premises_table.c.id == premises_id)).first()
    if row is None:
        raise NotFound(f"No premises {premises_id!r}.")
    return row


def premises_exists(conn: Connection, premises_id: str) -> bool:
    t = premises_table
    return conn.execute(select(t.c.id).where(t.c.id == premises_id)).first() is not None


def every_premises(conn: Connection) -> list[Any]:
    """The whole catalogue for staff: in use first, then retired, each by id."""
    t = premises_table
    return list(conn.execute(select(t).order_by(t.c.retired, t.c.id)).all())


def premises_in_use(conn: Connection) -> list[Any]:
    t = premises_table
    return list(conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all())


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "premises"


def free_slug(conn: Connection, name: dict[str, Any]) -> str:
    """An id made from the name (Finnish first) that no premises has yet."""
    base = slugify(name.get("fi") or name.get("en") or name.get("sv") or "premises")
    taken = set(
        conn.execute(
            select(premises_table.c.id).where(premises_table.c.id.like(f"{base}%"))
        ).scalars()
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def matching_premises(
    conn: Connection, query: dict[str, Any], after: str | None = None, limit: int | None = None
) -> list[Any]:
    """Premises by id that match the filters of GET /api/v1/premises and the search page:
    `district`, `min_capacity`, `free_of_charge`, `q` (every word), `feature` (all of them);
    retired ones only with `include_retired`. `after` and `limit` page through them by id."""
    t = premises_table
    sql = select(t).order_by(t.c.id)
    if not query.get("include_retired"):
        sql = sql.where(t.c.retired.is_(False))
    if "district" in query:
        sql = sql.where(t.c.district == query["district"])
    if "min_capacity" in query:
        sql = sql.where(t.c.capacity >= query["min_capacity"])
    if "free_of_charge" in query:
        sql = sql.where(t.c.free_of_charge.is_(query["free_of_charge"]))
    if query.get("q"):
        for word in query["q"].casefold().split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql = sql.where(t.c.search_text.like(f"%{escaped}%", escape="\\"))
    if after is not None:
        sql = sql.where(t.c.id > after)
    wanted = set(query.get("feature") or ())
    if not wanted:
        return list(conn.execute(sql if limit is None else sql.limit(limit)).all())
    # Features are JSON lists (no portable SQL filter): filtered here, a page at a time.
    found: list[Any] = []
    for row in conn.execute(sql):
        if wanted <= set(row.accessibility) | set(row.equipment):
            found.append(row)
            if limit is not None and len(found) >= limit:
                break
    return found


def _after_id(page: PageRequest) -> str | None:
    """The premises id a page by id continues after (422 on `after` for any other cursor)."""
    if page.after is None:
        return None
    if len(page.after) != 1 or not isinstance(page.after[0], str):
        raise RuleBroken({"after": [BAD_CURSOR]})
    return str(page.after[0])


def premises_page(conn: Connection, query: dict[str, Any], page: PageRequest) -> Page[Any]:
    """One page of `matching_premises`, by id (the cursor is the last id of the page)."""
    return _by_id(matching_premises(conn, query, _after_id(page), page.limit + 1), page.limit)


def _by_id(rows: list[Any], limit: int) -> Page[Any]:
    """A page of `limit` of `rows` (read one more than that, by id) and its cursor."""
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor([rows[-1].id]))


def free_premises_page(
    conn: Connection, query: dict[str, Any], window: Slot, page: PageRequest
) -> Page[Any]:
    """One page, by id, of the premises matching the filters that are open and free for the
    whole `window` (GET /api/v1/availability). Candidates are read and checked a batch at a
    time after the cursor, until one more than the page is found or none are left, so a
    page costs about its own candidates, not the catalogue's."""
    after = _after_id(page)
    wanted = page.limit + 1
    found: list[Any] = []
    while len(found) < wanted:
        candidates = matching_premises(conn, query, after, wanted)
        if not candidates:
            break
        busy = busy_between(conn, [r.id for r in candidates], window)
        for row in candidates:
            hours = OpeningHours.parse(row.opening_hours)
            if free_for_whole(hours, ZoneInfo(row.timezone), window, busy[row.id]):
                found.append(row)
                if len(found) == wanted:
                    break
        if len(candidates) < wanted:
            break
        after = candidates[-1].id
    return _by_id(found, page.limit)
