"""What the allocator takes and gives: plain frozen values, in minutes of the local week.

Times are minutes after local midnight of a weekday (0 = Monday .. 6 = Sunday), so a
proposal is about wall-clock weekly slots; dates and DST belong to the series that an
accepted offer becomes, not to the allocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
# A premises' buffer is at most a day (booking.domain.decide, LONGEST_BUFFER), so a slot and
# the buffer after it reach at most into the next day.
LONGEST_BUFFER_MINUTES = DAY_MINUTES


def clock_minutes(text: str) -> int:
    """ "HH:MM" as minutes after midnight; "24:00" is the end of the day."""
    hours, minutes = text.split(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"not HH:MM: {text!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > DAY_MINUTES:
        raise ValueError(f"not a time of day: {text!r}")
    return value


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class TimeWish:
    """A weekday window in which a section would like its slot to lie."""

    weekday: int
    start: int
    end: int
    primary: bool = True


@dataclass(frozen=True)
class Section:
    """One group of an application asking for weekly slots.

    `tier` is 0 for the round's first criterion, 1 for the second, …, and the number of
    criteria for an application that meets none. `premises` is most wanted first.
    """

    application_id: str
    name: str
    organisation_id: str
    tier: int
    slots_per_week: int
    duration: int
    premises: tuple[str, ...]
    times: tuple[TimeWish, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.application_id, self.name)

    @property
    def requested_minutes(self) -> int:
        return self.slots_per_week * self.duration


@dataclass(frozen=True)
class Premises:
    """A bookable premises: opening hours per weekday, the spaces it occupies, its buffer.

    A whole hall and its halves share spaces; `spaces` defaults to the premises alone.
    Opening intervals are (start, end) minutes within the day; an interval that runs past
    midnight is cut at 24:00 (an allocation never spans two days). `buffer` is the rules'
    `buffer_minutes`: each allocation keeps the floor for that long after its end (`blocks`).
    """

    premises_id: str
    opening: Mapping[int, tuple[tuple[int, int], ...]]
    spaces: frozenset[str] = field(default=frozenset())
    buffer: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.buffer <= LONGEST_BUFFER_MINUTES:
            raise ValueError(f"a buffer is 0 to {LONGEST_BUFFER_MINUTES} minutes")

    @property
    def occupies(self) -> frozenset[str]:
        return self.spaces or frozenset({self.premises_id})

    @classmethod
    def from_opening_hours(
        cls,
        premises_id: str,
        opening_hours: Mapping[str, Any],
        spaces: frozenset[str] = frozenset(),
        buffer: int = 0,
    ) -> Premises:
        """From API.md's `{"mon": [["08:00","20:00"]], …}` shape."""
        opening: dict[int, tuple[tuple[int, int], ...]] = {}
        for index, day in enumerate(WEEKDAYS):
            spans = []
            for opens, closes in opening_hours.get(day) or ():
                start, end = clock_minutes(opens), clock_minutes(closes)
                spans.append((start, end if end > start else DAY_MINUTES))
            opening[index] = tuple(sorted(spans))
        return cls(premises_id, opening, spaces, buffer)


def blocks(
    weekday: int, start: int, until: int, other_weekday: int, other_start: int, other_until: int
) -> bool:
    """Whether two weekly slots keep each other out, each given as its weekday, start and
    `until` (its end plus its own premises' buffer, so past 24:00 when the buffer runs into
    the next day; Sunday's runs into Monday's, as a weekly series does). Callers check that
    the two share a space.

    This is the booking rules' conflict (booking.domain.spaces): [start, end + buffer) of the
    one meets that of the other. For two slots of one premises it is the same as widening one
    by the buffer on both sides (`PremisesState.bookings_overlapping`); across premises that
    share a space each keeps its own buffer after it, as the availability rows'
    `blocked_until` do. Touching spans do not meet.
    """
    if weekday == other_weekday:
        return start < other_until and other_start < until
    if (weekday + 1) % 7 == other_weekday:
        return other_start < until - DAY_MINUTES
    if (other_weekday + 1) % 7 == weekday:
        return start < other_until - DAY_MINUTES
    return False


@dataclass(frozen=True)
class Allocation:
    id: str
    application_id: str
    section: str
    organisation_id: str
    premises_id: str
    weekday: int
    start: int
    end: int
    tier: int
    primary: bool
    premises_rank: int  # 0 = the section's first choice

    def as_json(self) -> dict[str, Any]:
        """API.md's allocation; `tier` and `premises_rank` counted from 1 for people."""
        return {
            "id": self.id,
            "application_id": self.application_id,
            "section": self.section,
            "premises_id": self.premises_id,
            "weekday": WEEKDAYS[self.weekday],
            "start_time": clock_text(self.start),
            "end_time": clock_text(self.end),
            "tier": self.tier + 1,
            "priority": "primary" if self.primary else "secondary",
            "premises_rank": self.premises_rank + 1,
        }


@dataclass(frozen=True)
class Unallocated:
    """A section that got fewer slots than it asked for, and why."""

    application_id: str
    section: str
    missing_slots: int
    reason: str
    blocked_by: tuple[Allocation, ...] = ()
    reason_code: str = ""  # booking.allocation.explain's codes: the reason in any language

    def as_json(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "section": self.section,
            "missing_slots": self.missing_slots,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "blocked_by": [
                {
                    "allocation_id": a.id,
                    "application_id": a.application_id,
                    "section": a.section,
                    "premises_id": a.premises_id,
                    "weekday": WEEKDAYS[a.weekday],
                    "start_time": clock_text(a.start),
                    "end_time": clock_text(a.end),
                    "tier": a.tier + 1,
                }
                for a in self.blocked_by
            ],
        }


@dataclass(frozen=True)
class StageReport:
    """One lexicographic stage: what it maximised, the value reached, the proven bound."""

    tier: int
    objective: str
    value: float
    bound: float
    gap: float
    status: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Proposal:
    allocations: tuple[Allocation, ...]
    unallocated: tuple[Unallocated, ...]
    metrics: dict[str, Any]
    stages: tuple[StageReport, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "allocations": [a.as_json() for a in self.allocations],
            "unallocated": [u.as_json() for u in self.unallocated],
            "metrics": self.metrics,
        }
