"""Time cut into the cells of the usage statistics: local date x local hour of a premises.

A cell is one hour of wall-clock time in the premises' zone, so the autumn DST day has a
cell (03:00) that holds two real hours and the spring day a cell that holds none; a slot
that runs past midnight falls into cells of two dates. Seconds are integers so that sums
are exact in any order.

Open hours are not stored: they follow from the opening hours (whose history the usage
projection keeps), retirement and closures. Summing them date by date would be slow for a
year of many premises, so `OpenHours` counts: an ordinary date of a given weekday has the
same open seconds per hour as every other one, and only the dates next to a DST change, a
change of opening hours or a retirement, and the closed periods, are worked out one by one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from events.opening import OpeningHours, days
from events.slot import Slot, merge

HOUR = timedelta(hours=1)
Cell = tuple[date, int]  # local date, local hour


def split_hours(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[tuple[date, int, int]]:
    """(local date, local hour, seconds) for every cell that [start, end) meets."""
    at = start
    while at < end:
        local = at.astimezone(zone)
        into = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        boundary = min(at - into + HOUR, end)
        yield local.date(), local.hour, int((boundary - at).total_seconds())
        at = boundary


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@cache
def _opening(raw: str) -> OpeningHours:
    import json

    return OpeningHours.parse(json.loads(raw))


@dataclass(frozen=True)
class Segment:
    """Opening hours in force from `start` (None: always before) until `end` (None: still)."""

    start: datetime | None
    end: datetime | None
    hours_json: str  # canonical JSON text: the cache key of its weekly template
    zone: str

    @property
    def opening(self) -> OpeningHours:
        return _opening(self.hours_json)

    def covers(self, slot: Slot) -> bool:
        return (self.start is None or self.start <= slot.start) and (
            self.end is None or slot.end <= self.end
        )


@dataclass
class PremisesHours:
    premises_id: str
    district: str
    zone: ZoneInfo
    segments: list[Segment]
    closures: list[Slot] = field(default_factory=list)


def open_slots_on(p: PremisesHours, day: date) -> list[Slot]:
    """The open time of local date `day` (intervals from the day before included), clipped
    to the day and to the segments in force."""
    day_span = Slot(local_midnight(day, p.zone), local_midnight(day + timedelta(days=1), p.zone))
    found = []
    for segment in p.segments:
        low = day_span.start if segment.start is None else max(day_span.start, segment.start)
        high = day_span.end if segment.end is None else min(day_span.end, segment.end)
        if low >= high:
            continue
        limit = Slot(low, high)
        zone = ZoneInfo(segment.zone)
        for opening_day in (day - timedelta(days=1), day):
            for interval in segment.opening.intervals_on(opening_day, zone):
                if (piece := interval.intersection(limit)) is not None:
                    found.append(piece)
    return merge(found)


def _cells(slots: Iterable[Slot], zone: ZoneInfo) -> dict[int, int]:
    hours: dict[int, int] = defaultdict(int)
    for slot in slots:
        for _, hour, seconds in split_hours(slot.start, slot.end, zone):
            hours[hour] += seconds
    return hours


@cache
def weekly_template(hours_json: str, zone_name: str) -> tuple[tuple[int, ...], ...]:
    """Open seconds per local hour on an ordinary date of each weekday (Monday first)."""
    zone = ZoneInfo(zone_name)
    segment = Segment(None, None, hours_json, zone_name)
    probe = PremisesHours("", "", zone, [segment])
    reference = date(2001, 1, 8)  # a Monday; no DST change within days of it anywhere
    found = []
    for weekday in range(7):
        hours = _cells(open_slots_on(probe, reference + timedelta(days=weekday)), zone)
        found.append(tuple(hours.get(h, 0) for h in range(24)))
    return tuple(found)


@cache
def irregular_dates(zone_name: str, first: date, last: date) -> frozenset[date]:
    """Dates whose cells a DST change may touch (the change's date and the one after it,
    for intervals that run past midnight)."""
    zone = ZoneInfo(zone_name)
    found = set()
    previous = datetime.combine(first - timedelta(days=1), time(12), tzinfo=zone).utcoffset()
    for day in days(first - timedelta(days=1), last + timedelta(days=1)):
        offset = datetime.combine(day + timedelta(days=1), time(12), tzinfo=zone).utcoffset()
        if offset != previous:
            found.update({day, day + timedelta(days=1)})
        previous = offset
    return frozenset(found)


TimeKey = Callable[[date], tuple[object, ...]]
PlaceKey = Callable[[PremisesHours], str]
# (place, time key, hour or None) -> seconds
Open = dict[tuple[str, tuple[object, ...], int | None], int]


def open_seconds(
    premises: Sequence[PremisesHours],
    first: date,
    last: date,
    key: TimeKey,
    place: PlaceKey = lambda p: p.premises_id,
    by_hour: bool = True,
) -> Open:
    """Open seconds less closures per place (`place(p)`), time key (of the cell's date) and
    hour (None unless `by_hour`). Premises of one place with the same opening hours and no
    history of changes are counted together: that is what makes a year of many premises
    cheap."""
    dates = list(days(first, last))
    base = Counter((key(d), d.weekday()) for d in dates)
    found: Open = defaultdict(int)

    def add(where: str, time_key: tuple[object, ...], hour: int, seconds: int) -> None:
        found[(where, time_key, hour if by_hour else None)] += seconds

    alike: dict[tuple[str, str, str], list[PremisesHours]] = defaultdict(list)
    for p in premises:
        segment = p.segments[0] if len(p.segments) == 1 else None
        if segment is not None and segment.start is None and segment.end is None:
            alike[(place(p), segment.hours_json, str(p.zone.key))].append(p)
        else:
            _one_by_one(p, dates, base, key, first, last, place(p), add)
        for closure in merge(p.closures):
            for day, hour, seconds in _closed(p, closure, first, last):
                add(place(p), key(day), hour, -seconds)
    for (where, hours_json, zone_name), group in alike.items():
        special = {d for d in irregular_dates(zone_name, first, last) if first <= d <= last}
        counts = Counter(base)
        counts.subtract((key(d), d.weekday()) for d in special)
        template = weekly_template(hours_json, zone_name)
        for (time_key, weekday), count in counts.items():
            if not count:
                continue
            if by_hour:
                for hour, seconds in enumerate(template[weekday]):
                    if seconds:
                        add(where, time_key, hour, count * seconds * len(group))
            else:
                add(where, time_key, 0, count * sum(template[weekday]) * len(group))
        for day in sorted(special):
            cells = _cells(open_slots_on(group[0], day), group[0].zone)
            for hour, seconds in cells.items():
                add(where, key(day), hour, seconds * len(group))
    return found


def _one_by_one(
    p: PremisesHours,
    dates: list[date],
    base: Counter[tuple[tuple[object, ...], int]],
    key: TimeKey,
    first: date,
    last: date,
    where: str,
    add: Callable[[str, tuple[object, ...], int, int], None],
) -> None:
    """Open seconds of premises whose opening hours changed or that was retired."""
    special = set(irregular_dates(str(p.zone.key), first, last))
    for segment in p.segments:
        for edge in (segment.start, segment.end):
            if edge is not None:
                local = edge.astimezone(p.zone).date()
                special.update({local - timedelta(days=1), local, local + timedelta(days=1)})
    special = {d for d in special if first <= d <= last}
    for (time_key, weekday), count, segment in _ordinary_runs(p, dates, base, special, key):
        template = weekly_template(segment.hours_json, segment.zone)
        for hour, seconds in enumerate(template[weekday]):
            if seconds:
                add(where, time_key, hour, count * seconds)
    for day in sorted(special):
        for hour, seconds in _cells(open_slots_on(p, day), p.zone).items():
            add(where, key(day), hour, seconds)


def _ordinary_runs(
    p: PremisesHours,
    dates: list[date],
    base: Counter[tuple[tuple[object, ...], int]],
    special: set[date],
    key: TimeKey,
) -> Iterator[tuple[tuple[tuple[object, ...], int], int, Segment]]:
    """((time key, weekday), count of ordinary dates, segment in force) for premises `p`."""
    if len(p.segments) == 1 and p.segments[0].start is None and p.segments[0].end is None:
        counts = Counter(base)
        counts.subtract((key(d), d.weekday()) for d in special)
        for run_key, count in counts.items():
            if count:
                yield run_key, count, p.segments[0]
        return
    grouped: Counter[tuple[tuple[tuple[object, ...], int], int]] = Counter()
    for d in dates:
        if d in special:
            continue
        noon = datetime.combine(d, time(12), tzinfo=p.zone)
        for index, segment in enumerate(p.segments):
            if (segment.start is None or segment.start <= noon) and (
                segment.end is None or noon < segment.end
            ):
                grouped[((key(d), d.weekday()), index)] += 1
                break
    for (run_key, index), count in grouped.items():
        yield run_key, count, p.segments[index]


def _closed(
    p: PremisesHours, closure: Slot, first: date, last: date
) -> Iterator[tuple[date, int, int]]:
    """The open seconds per cell that `closure` takes away, on the dates first..last."""
    start_day = max(first, closure.start.astimezone(p.zone).date())
    end_day = min(last, closure.end.astimezone(p.zone).date())
    for day in days(start_day, end_day):
        for slot in open_slots_on(p, day):
            if (piece := slot.intersection(closure)) is not None:
                for cell_day, hour, seconds in split_hours(piece.start, piece.end, p.zone):
                    if cell_day == day:
                        yield cell_day, hour, seconds
