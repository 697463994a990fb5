"""Opening hours: local wall-clock intervals per weekday, possibly running past midnight.

`{"mon": [["08:00", "20:00"]], "fri": [["18:00", "02:00"]], "sun": []}` — an interval whose
end is not after its start closes on the next day. Instants are computed in the premises'
zone, so a day with a DST change has 23 or 25 hours and 08:00 is always 08:00 local.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.slot import Slot, merge

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_clock(text: str) -> time:
    hours, minutes = text.split(":")
    if len(hours) != 2 or len(minutes) != 2:
        raise ValueError(f"not HH:MM: {text!r}")
    if hours == "24" and minutes == "00":
        return time(0, 0)
    return time(int(hours), int(minutes))


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The instant a local wall-clock time names, in UTC.

    A wall time in the spring gap maps past the gap and an ambiguous autumn time to its
    first occurrence (PEP 495, fold=0), so an interval never runs backwards.
    """
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _minutes(opens: time, closes: time) -> tuple[int, int]:
    start = opens.hour * 60 + opens.minute
    end = closes.hour * 60 + closes.minute
    return start, end if end > start else end + 24 * 60


def _refuse_overlaps(day: str, intervals: list[tuple[time, time]]) -> None:
    """One day's intervals must not overlap: each instant is open once or not at all."""
    spans = sorted(_minutes(o, c) for o, c in intervals)
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"{day}: opening intervals overlap")


@dataclass(frozen=True)
class OpeningHours:
    weekly: Mapping[str, Sequence[tuple[time, time]]]
    # `covers`' merged intervals by (first day, last day, zone), as worked out: every
    # booking asks for its three days' (two local instants a day, merged), and bookings
    # come many to a day. Bounded; a premises' new hours are a new OpeningHours.
    _merged: dict[tuple[date, date, ZoneInfo], tuple[Slot, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def parse(cls, raw: Mapping[str, Sequence[Sequence[str]]]) -> OpeningHours:
        unknown = set(raw) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekdays: {', '.join(sorted(unknown))}")
        weekly: dict[str, list[tuple[time, time]]] = {}
        for day in WEEKDAYS:
            intervals = []
            for pair in raw.get(day, []):
                if len(pair) != 2:
                    raise ValueError(f"{day}: an interval is [open, close]")
                if pair[0] == "24:00":
                    raise ValueError(f"{day}: 24:00 closes a day; it cannot open one")
                opens, closes = parse_clock(pair[0]), parse_clock(pair[1])
                if opens == closes and pair[1] != "24:00":
                    raise ValueError(f"{day}: an interval cannot be empty")
                intervals.append((opens, closes))
            _refuse_overlaps(day, intervals)
            weekly[day] = intervals
        return cls(weekly)

    def as_json(self) -> dict[str, list[list[str]]]:
        return {
            day: [[o.strftime("%H:%M"), c.strftime("%H:%M")] for o, c in self.weekly.get(day, [])]
            for day in WEEKDAYS
        }

    def intervals_on(self, day: date, zone: ZoneInfo) -> list[Slot]:
        """The opening intervals that start on local date `day` (some may end the next day)."""
        slots = []
        for opens, closes in self.weekly.get(WEEKDAYS[day.weekday()], ()):
            end_day = day if closes > opens else day + timedelta(days=1)
            start, end = local_instant(day, opens, zone), local_instant(end_day, closes, zone)
            if end > start:
                slots.append(Slot.of_utc(start, end))  # (both in UTC: `local_instant`)
        return slots

    def open_between(self, first: date, last: date, zone: ZoneInfo) -> list[Slot]:
        """Merged opening intervals starting on the local dates first..last inclusive."""
        return merge(s for day in days(first, last) for s in self.intervals_on(day, zone))

    def covers(self, slot: Slot, zone: ZoneInfo) -> bool:
        """True when one continuous opening interval holds the whole slot."""
        first = slot.start.astimezone(zone).date() - timedelta(days=1)
        last = slot.end.astimezone(zone).date()
        merged = self._merged.get((first, last, zone))
        if merged is None:
            if len(self._merged) >= _MERGED_KEPT:
                self._merged.clear()
            merged = self._merged[first, last, zone] = tuple(self.open_between(first, last, zone))
        return any(o.contains(slot) for o in merged)


_MERGED_KEPT = 1024


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
