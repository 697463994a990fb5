"""Local wall-clock times that do not exist or occur twice, found before a booking is made.

Where clocks spring forward (Europe/Helsinki, last Sunday of March, 03:00 → 04:00) a time
such as 03:30 never happens; where they fall back (October, 04:00 → 03:00) 03:30 happens
twice. Python quietly moves a missing time by an hour and picks the first of two, so a form
that says 03:30 would book 04:30 without a word. These functions name the problem instead:
the form and the API both refuse a time that does not exist, and the form asks which of two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.domain.errors import RuleBroken


@dataclass(frozen=True)
class MissingTime(Exception):
    """`wall` never happens in `zone`: the clocks jump from `gap_start` to `gap_end`."""

    wall: datetime  # naive
    zone: ZoneInfo
    gap_start: datetime  # naive wall times bounding the gap
    gap_end: datetime

    def __str__(self) -> str:
        return (
            f"{self.wall:%H:%M} does not exist on {self.wall:%Y-%m-%d} in {self.zone.key}: "
            f"the clocks move from {self.gap_start:%H:%M} to {self.gap_end:%H:%M}."
        )


@dataclass(frozen=True)
class TwiceTime(Exception):
    """`wall` happens twice in `zone` (`earlier` and `later`, both aware)."""

    wall: datetime  # naive
    zone: ZoneInfo
    earlier: datetime
    later: datetime

    def __str__(self) -> str:
        return (
            f"{self.wall:%H:%M} occurs twice on {self.wall:%Y-%m-%d} in {self.zone.key} "
            f"(UTC{_offset(self.earlier)} and UTC{_offset(self.later)}): choose which."
        )


def _offset(instant: datetime) -> str:
    text = instant.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def _round_trips(wall: datetime, zone: ZoneInfo, fold: int) -> bool:
    aware = wall.replace(tzinfo=zone, fold=fold)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    return _round_trips(wall, zone, 0) or _round_trips(wall, zone, 1)


def _gap_around(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The wall times just before and just after the gap that swallows `wall`."""
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    jump = abs(first - second)
    # Walk back minute by minute to the last wall time before the gap (at most the jump).
    start = wall
    while not exists(start - timedelta(minutes=1), zone) and wall - start < jump:
        start -= timedelta(minutes=1)
    return start, start + jump


def wall_instant(day: date, clock: time, zone: ZoneInfo, fold: int | None = None) -> datetime:
    """The instant that reads `clock` on `day` in `zone`. MissingTime when it never does;
    TwiceTime when it does twice and `fold` (0 earlier, 1 later) does not say which."""
    wall = datetime.combine(day, clock)
    early, late = _round_trips(wall, zone, 0), _round_trips(wall, zone, 1)
    if not early and not late:
        raise MissingTime(wall, zone, *_gap_around(wall, zone))
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    if fold is None:
        raise TwiceTime(wall, zone, first, second)
    return second if fold else first


def local_span(
    day: date,
    start: time,
    end: time,
    zone: ZoneInfo,
    folds: Mapping[str, int | None] | None = None,
) -> tuple[datetime, datetime]:
    """A form's local start and end (an end at or before the start is the next day), each
    checked to exist once; raises RuleBroken naming the field(s) `start` / `end`, with
    `MissingTime` / `TwiceTime` as the messages' cause in `problems_of`."""
    folds = folds or {}
    end_day = day if end > start else day + timedelta(days=1)
    found: dict[str, datetime] = {}
    problems: dict[str, list[str]] = {}
    causes: dict[str, MissingTime | TwiceTime] = {}
    for name, on, clock in (("start", day, start), ("end", end_day, end)):
        try:
            found[name] = wall_instant(on, clock, zone, folds.get(name))
        except (MissingTime, TwiceTime) as error:
            problems[name] = [str(error)]
            causes[name] = error
    if problems:
        raise LocalTimeProblem(problems, causes)
    return found["start"], found["end"]


class LocalTimeProblem(RuleBroken):
    """A RuleBroken about local times, with what went wrong per field (for the form)."""

    def __init__(
        self, problems: dict[str, list[str]], causes: Mapping[str, MissingTime | TwiceTime]
    ) -> None:
        super().__init__(problems)
        self.causes = dict(causes)


def check_stated_times(stated: Mapping[str, datetime], zone: ZoneInfo) -> None:
    """Refuse instants a client wrote as a local time that does not exist in `zone`.

    `2027-03-28T03:30:00+02:00` is a real instant (04:30+03:00), but it names 03:30 in
    Helsinki's winter offset on the night that hour is skipped: the client meant a wall
    time that never happens. An instant in another zone's terms (`01:30Z`) is taken as
    given. The offset written disambiguates a time that occurs twice, so that is never
    refused here.
    """
    problems: dict[str, list[str]] = {}
    causes: dict[str, MissingTime | TwiceTime] = {}
    for name, instant in stated.items():
        offset = instant.utcoffset()
        if offset is None or offset == instant.astimezone(zone).utcoffset():
            continue
        # The zone's offsets at the wall time written, at either fold (a ZoneInfo reads
        # only the wall time and fold of what it is asked about): an offset that is neither
        # is another zone's terms (an instant in UTC, say), whether or not the wall time
        # exists in the zone — found without the round trips of `exists`.
        zone_offsets = (
            zone.utcoffset(instant),
            zone.utcoffset(instant.replace(fold=1 - instant.fold)),
        )
        if offset not in zone_offsets:
            continue
        wall = instant.replace(tzinfo=None)
        if not exists(wall, zone):
            error = MissingTime(wall, zone, *_gap_around(wall, zone))
            problems[name] = [str(error)]
            causes[name] = error
    if problems:
        raise LocalTimeProblem(problems, causes)
