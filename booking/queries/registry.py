"""The free-premises registry as the API and the pages read it: the entries with their next
free hour, and the open-data CSV.

GET /api/v1/registry/free-premises lists the asynchronous registry projection (its entries,
a page at a time by id, and the whole CSV are made here); the /registry page reads the
catalogue itself (inline, so a change shows at once) through `catalogue_registry_rows`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.queries.paging import Page, PageRequest, fetch_page
from events.opening import WEEKDAYS, OpeningHours, days
from events.slot import Slot, subtract
from projections.availability import busy_between, days_of
from projections.catalogue import premises_table
from projections.registry import Registry, listed

HORIZON = timedelta(days=14)
LANGUAGES = ("fi", "en", "sv")


def next_free_hour(
    opening: OpeningHours, zone: ZoneInfo, now: datetime, busy: list[Slot]
) -> datetime | None:
    """The start of the first whole local clock hour from `now` on that is open and free."""
    today = now.astimezone(zone).date()
    intervals = [
        s
        for day in days(today - timedelta(days=1), (now + HORIZON).astimezone(zone).date())
        for s in opening.intervals_on(day, zone)
    ]
    for piece in subtract(intervals, busy):
        at = max(piece.start, now).astimezone(zone)
        if at.minute or at.second or at.microsecond:
            at = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = at.astimezone(UTC)
        if start + timedelta(hours=1) <= piece.end:
            return start
    return None


def registry_entries(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Every entry of the registry projection (the open-data CSV is the whole register)."""
    return _entries(conn, listed(conn), now)


def registry_page(conn: Connection, now: datetime, page: PageRequest) -> Page[dict[str, Any]]:
    """One page of the registry projection's entries by id (GET …/free-premises as JSON):
    the next free hours are worked out for that page's premises only."""
    t = Registry().tables[0]
    listed_now = select(t).where(t.c.free_of_charge.is_(True), t.c.retired.is_(False))
    found = fetch_page(conn, listed_now, [t.c.premises_id], page)
    return Page(_entries(conn, found.rows, now), found.next)


def _entries(conn: Connection, rows: list[Any], now: datetime) -> list[dict[str, Any]]:
    """Registry rows as entries, with their next free hour from `now` (read from the inline
    availability table, which is always current)."""
    window = Slot(now - timedelta(days=1), now + HORIZON + timedelta(days=1))
    busy = busy_between(conn, [r.premises_id for r in rows], window) if rows else {}
    entries = []
    for row in rows:
        zone = ZoneInfo(row.timezone)
        spans = [span for _, span in busy.get(row.premises_id, [])]
        free = next_free_hour(OpeningHours.parse(row.opening_hours), zone, now, spans)
        entries.append(
            {
                "id": row.premises_id,
                "name": row.name,
                "address": row.address,
                "district": row.district,
                "capacity": row.capacity,
                "accessibility": row.accessibility,
                "equipment": row.equipment,
                "opening_hours": row.opening_hours,
                "free_use_conditions": row.free_use_conditions,
                "timezone": row.timezone,
                "next_free_hour": free.astimezone(zone).isoformat() if free else None,
            }
        )
    return entries


def _catalogue_next_free_hour(
    conn: Any, row: Any, now: datetime, days_ahead: int = 14
) -> datetime | None:
    zone = ZoneInfo(row.timezone)
    today = now.astimezone(zone).date()
    last = today + timedelta(days=days_ahead)
    window = Slot(
        datetime.combine(today - timedelta(days=1), datetime.min.time(), zone),
        datetime.combine(last + timedelta(days=2), datetime.min.time(), zone),
    )
    busy = busy_between(conn, [row.id], window)[row.id]
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for day in days_of(OpeningHours.parse(row.opening_hours), zone, today, last, busy):
        for free in day.free:
            begin = max(free.start, start)
            if free.end - begin >= timedelta(hours=1):
                return begin
    return None


def catalogue_registry_rows(conn: Any, now: datetime) -> list[tuple[Any, datetime | None]]:
    t = premises_table
    rows = conn.execute(
        select(t).where(t.c.free_of_charge.is_(True), t.c.retired.is_(False)).order_by(t.c.id)
    ).all()
    return [(row, _catalogue_next_free_hour(conn, row, now)) for row in rows]


def _hours_text(opening_hours: dict[str, Any]) -> str:
    return "; ".join(
        f"{day} " + ", ".join(f"{a}-{b}" for a, b in opening_hours.get(day, []))
        for day in WEEKDAYS
        if opening_hours.get(day)
    )


def registry_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "id",
            *(f"name_{lang}" for lang in LANGUAGES),
            "address",
            "district",
            "capacity",
            "accessibility",
            "equipment",
            "opening_hours",
            *(f"free_use_conditions_{lang}" for lang in LANGUAGES),
            "timezone",
            "next_free_hour",
        ]
    )
    for e in entries:
        writer.writerow(
            [
                e["id"],
                *((e["name"] or {}).get(lang) or "" for lang in LANGUAGES),
                e["address"],
                e["district"],
                e["capacity"],
                ";".join(e["accessibility"]),
                ";".join(e["equipment"]),
                _hours_text(e["opening_hours"]),
                *((e["free_use_conditions"] or {}).get(lang) or "" for lang in LANGUAGES),
                e["timezone"],
                e["next_free_hour"] or "",
            ]
        )
    return out.getvalue()
