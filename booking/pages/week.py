"""The week view of one premises: an hour-by-day grid and the same facts as text.

Each cell is one local hour of one local date, judged against the availability projection
(opening hours less bookings, holds, closures and buffers). A day with a DST change simply
lacks (or repeats) an hour: a cell whose local hour does not exist is marked as such. An
hour taken only by a premises sharing the floor (the whole hall, for a half) is `via` that
premises, with its relation to this one (`booking.pages.spaces`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from booking.pages.spaces import Related, related_premises
from events.opening import OpeningHours
from events.slot import Slot
from projections.availability import Busy, busy_between, days_of


@dataclass(frozen=True)
class Cell:
    day: date
    hour: int
    start: datetime | None  # aware, None for an hour the DST change skips
    end: datetime | None
    state: str  # free | partial | busy | closed | past | missing
    via: str = ""  # busy only through premises sharing the floor: whole | part | shared


@dataclass
class DayText:
    """The text alternative of one day: opening hours, free and busy intervals."""

    day: date
    open: list[Slot] = field(default_factory=list)
    free: list[Slot] = field(default_factory=list)
    busy: list[Busy] = field(default_factory=list)


@dataclass
class Week:
    monday: date
    zone: ZoneInfo
    days: list[date]
    hours: list[int]
    rows: list[list[Cell]]
    texts: list[DayText]
    related: Related = field(default_factory=Related)

    @property
    def previous(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.monday + timedelta(days=7)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _cell(
    day: date,
    hour: int,
    zone: ZoneInfo,
    now: datetime,
    open_: list[Slot],
    free: list[Slot],
    busy: list[Busy],
    related: Related,
) -> Cell:
    start = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
    end_day, end_hour = (day, hour + 1) if hour < 23 else (day + timedelta(days=1), 0)
    end = datetime.combine(end_day, time(end_hour), tzinfo=zone).astimezone(UTC)
    if start.astimezone(zone).hour != hour or end <= start:
        return Cell(day, hour, None, None, "missing")
    slot = Slot(start, end)
    if not any(o.overlaps(slot) for o in open_):
        return Cell(day, hour, start, end, "closed")
    if end <= now:
        return Cell(day, hour, start, end, "past")
    if any(f.contains(slot) for f in free) and start >= now:
        return Cell(day, hour, start, end, "free")
    if any(f.overlaps(slot) for f in free):
        return Cell(day, hour, start, end, "partial")
    meeting = [b for b in busy if b.slot.overlaps(slot)]
    if meeting:
        if all(b.via for b in meeting):
            relations = {related.relation(b.via or "") for b in meeting}
            via = next((r for r in ("whole", "part", "shared") if r in relations), "shared")
            return Cell(day, hour, start, end, "busy", via)
        return Cell(day, hour, start, end, "busy")
    return Cell(day, hour, start, end, "closed")


def week_of(conn: Connection, row: Any, monday: date, now: datetime) -> Week:
    """The week from `monday` for the premises `row` (a catalogue row), as seen at `now`."""
    zone = ZoneInfo(row.timezone)
    opening = OpeningHours.parse(row.opening_hours)
    first, last = monday - timedelta(days=1), monday + timedelta(days=6)
    window = Slot(
        datetime.combine(first, time(), zone),
        datetime.combine(last + timedelta(days=2), time(), zone),
    )
    busy = busy_between(conn, [row.id], window)[row.id]
    found = days_of(opening, zone, first, last, busy)
    open_all = [s for d in found for s in d.open]
    free_all = [s for d in found for s in d.free]
    busy_all = [b for d in found for b in d.busy]
    related = related_premises(conn, row)
    days = [monday + timedelta(days=n) for n in range(7)]
    grid = {
        (day, hour): _cell(day, hour, zone, now, open_all, free_all, busy_all, related)
        for day in days
        for hour in range(24)
    }
    hours = [
        h for h in range(24) if any(grid[d, h].state not in ("closed", "missing") for d in days)
    ]
    if hours:  # keep the rows between the first and last open hour, so the grid has no gaps
        hours = list(range(hours[0], hours[-1] + 1))
    texts = [
        DayText(d.date, d.open, _from_now(d.free, now), d.busy) for d in found if d.date >= monday
    ]
    rows = [[grid[d, h] for d in days] for h in hours]
    return Week(monday, zone, days, hours, rows, texts, related)


def _from_now(free: list[Slot], now: datetime) -> list[Slot]:
    """Free time that has not begun yet, starting at the next full hour at the earliest."""
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return [Slot(max(f.start, start), f.end) for f in free if f.end > start]
