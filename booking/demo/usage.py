"""How each kind of premises is used in the demo: which days, hours and seasons are busy, how
long bookings last and how far ahead they are made.

Evenings and weekends are busier, summer is quiet (school gyms close, village halls get
their summer parties), public holidays are nearly empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from dateutil.easter import easter


@dataclass(frozen=True)
class Usage:
    weight: float  # bookings per premises of this kind, relative to other kinds
    weekdays: tuple[float, ...]  # demand mon..sun
    hours: tuple[tuple[int, int, float], ...]  # (from hour, to hour, demand) of the start
    durations: tuple[tuple[int, float], ...]  # (minutes, how often)
    step_minutes: int  # starts fall on multiples of this, counted from the opening time
    lead_days: tuple[float, float]  # median and spread (lognormal) of how far ahead
    attendees: tuple[float, float]  # share of the capacity, low and high
    public: float  # share of bookings shown with their title
    season: dict[int, float] = field(default_factory=dict)  # month → demand, over SEASON

    def hour_demand(self, hour: int) -> float:
        return next((w for lo, hi, w in self.hours if lo <= hour < hi), 0.1)


# Demand by month for most premises: the summer holiday empties libraries and clubs.
SEASON = {
    1: 1.0, 2: 1.05, 3: 1.05, 4: 1.0, 5: 0.85, 6: 0.45,
    7: 0.3, 8: 0.75, 9: 1.1, 10: 1.1, 11: 1.05, 12: 0.8,
}  # fmt: skip

USAGE = {
    "library": Usage(
        1.0, (1, 1, 1, 1, 0.8, 0.6, 0), ((8, 12, 0.6), (12, 16, 0.8), (16, 24, 1.4)),
        ((60, 3), (90, 3), (120, 3), (180, 1)), 30, (6, 1.0), (0.3, 1.0), 0.2,
    ),
    "hall": Usage(
        0.6, (0.6, 0.8, 0.8, 1, 1, 1.2, 0), ((8, 14, 0.5), (14, 17, 0.8), (17, 24, 1.2)),
        ((120, 3), (180, 3), (240, 2), (360, 1)), 60, (30, 0.8), (0.2, 0.9), 0.7,
    ),
    "youth": Usage(
        0.7, (0, 1, 1, 1, 1.5, 1.5, 0),
        ((0, 6, 0.2), (14, 17, 0.5), (17, 20, 1.2), (20, 24, 1.0)),
        ((90, 2), (120, 3), (180, 2), (240, 1)), 30, (10, 0.9), (0.2, 0.8), 0.3,
    ),
    "gym": Usage(
        1.3, (1, 1, 1, 1, 0.9, 1.3, 1.1),
        ((9, 13, 0.6), (13, 17, 0.7), (17, 21, 1.5), (21, 24, 0.6)),
        ((60, 5), (90, 3), (120, 2)), 60, (8, 0.9), (0.2, 0.6), 0.05,
        {6: 0.25, 7: 0.1, 8: 0.6},
    ),
    "village_hall": Usage(
        0.4, (0.3, 0.4, 0.4, 0.5, 1.2, 2, 0.8), ((8, 12, 0.6), (12, 18, 1), (18, 24, 0.8)),
        ((180, 2), (240, 3), (360, 3), (480, 2), (600, 1)), 60, (45, 0.9), (0.2, 0.8), 0.5,
        {6: 1.3, 7: 1.4, 8: 1.2},
    ),
    "meeting_place": Usage(
        0.6, (1, 1, 1, 1, 1, 0.6, 0.4), ((8, 12, 1), (12, 17, 1), (17, 24, 1)),
        ((30, 1), (60, 3), (90, 2), (120, 2), (180, 1)), 30, (3, 1.1), (0.2, 0.9), 0.6,
    ),
}  # fmt: skip

# Kinds whose busy premises are also booked weekly for a season.
SERIES_KINDS = ("gym", "library")


def midsummer_eve(year: int) -> date:
    """The Friday between 19 and 25 June."""
    return date(year, 6, 19) + timedelta(days=(4 - date(year, 6, 19).weekday()) % 7)


def holidays(year: int) -> set[date]:
    """Finnish public holidays and eves when hardly anything is booked."""
    easter_day = easter(year)
    all_saints = date(year, 10, 31) + timedelta(days=(5 - date(year, 10, 31).weekday()) % 7)
    return {
        date(year, 1, 1),
        date(year, 1, 6),
        easter_day - timedelta(days=2),
        easter_day,
        easter_day + timedelta(days=1),
        date(year, 5, 1),
        easter_day + timedelta(days=39),
        midsummer_eve(year),
        midsummer_eve(year) + timedelta(days=1),
        all_saints,
        date(year, 12, 6),
        date(year, 12, 24),
        date(year, 12, 25),
        date(year, 12, 26),
        date(year, 12, 31),
    }


def day_demand(kind: str, day: date, holiday: bool) -> float:
    usage = USAGE[kind]
    month = usage.season.get(day.month, SEASON[day.month])
    return month * usage.weekdays[day.weekday()] * (0.15 if holiday else 1.0)
