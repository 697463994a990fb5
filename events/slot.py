"""`Slot`, the one interval type: a half-open span [start, end) between two instants (in UTC)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The longest a booking or hold may last and the widest buffer a premises may keep: the
# decider refuses rules beyond them, and the availability search relies on them to bound
# its index scan (projections.availability.busy_between).
LONGEST_BOOKING = timedelta(days=7)
LONGEST_BUFFER = timedelta(days=1)
_NONE = timedelta(0)


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a slot needs aware datetimes")
        # Python compares and subtracts wall clocks when both ends share one tzinfo, which is
        # an hour off across a DST change; in UTC every comparison is between instants.
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise ValueError("a slot must end after it starts")

    @classmethod
    def of_utc(cls, start: datetime, end: datetime) -> Slot:
        """A slot of instants already in UTC with `end > start` — slot arithmetic on other
        slots, or rows of our own tables — without checking them again (the checks were
        most of the cost of building a month of availability)."""
        slot = object.__new__(cls)
        object.__setattr__(slot, "start", start)
        object.__setattr__(slot, "end", end)
        return slot

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def minutes(self) -> float:
        return self.duration.total_seconds() / 60

    def overlaps(self, other: Slot) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Slot) -> bool:
        return self.start <= other.start and other.end <= self.end

    def padded(self, before: timedelta, after: timedelta | None = None) -> Slot:
        after = before if after is None else after
        if before < _NONE or after < _NONE:  # it may shrink to nothing: checked
            return Slot(self.start - before, self.end + after)
        return Slot.of_utc(self.start - before, self.end + after)

    def intersection(self, other: Slot) -> Slot | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Slot.of_utc(start, end) if start < end else None


def merge(slots: Iterable[Slot]) -> list[Slot]:
    """Union of slots as sorted, disjoint, non-touching slots."""
    merged: list[Slot] = []
    for slot in sorted(slots):
        if merged and slot.start <= merged[-1].end:
            if slot.end > merged[-1].end:
                merged[-1] = Slot.of_utc(merged[-1].start, slot.end)
        else:
            merged.append(slot)
    return merged


def subtract(base: Iterable[Slot], holes: Iterable[Slot]) -> list[Slot]:
    """`base` less every hole, as sorted disjoint slots."""
    result: list[Slot] = []
    cut = merge(holes)
    for piece in merge(base):
        start = piece.start
        for hole in cut:
            if hole.end <= start or hole.start >= piece.end:
                continue
            if hole.start > start:
                result.append(Slot.of_utc(start, hole.start))
            start = max(start, hole.end)
            if start >= piece.end:
                break
        if start < piece.end:
            result.append(Slot.of_utc(start, piece.end))
    return result
