"""Every place and time a section could get: its wished premises × wished windows × starts.

Start times are discretised: the window's first feasible start, then every `step` minutes
on the clock (17:00, 17:15, …), then its last feasible start, so odd windows still fit.
Where two wishes give the same premises, day and start, the better one (primary) counts.
Each candidate carries `until`, its end plus its premises' buffer: what two candidates that
share a space must not both cover (`model.blocks`, the booking rules' conflict).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from booking.allocation.model import (
    DAY_MINUTES,
    WEEKDAYS,
    Allocation,
    Premises,
    Section,
    blocks,
)

# Allocation ids are derived from what they allocate, so the same applications always give
# the same ids (a section has at most one slot a day).
_ID_NAMESPACE = uuid.UUID("6f1d3c1e-8a59-4c1b-9a8e-2f0d0c5a7b10")


@dataclass(frozen=True)
class Candidate:
    section: Section
    section_index: int
    premises_id: str
    spaces: frozenset[str]
    rank: int
    weekday: int
    start: int
    end: int
    primary: bool
    until: int  # end + the premises' buffer: the floor is kept from others until then

    @property
    def points_per_minute(self) -> int:
        """How well it fits the wish: any primary time beats any secondary one; within
        each, the first-choice premises beats the second, which beats the rest."""
        return (3 if self.primary else 0) + 3 - min(self.rank, 2)

    @property
    def points(self) -> int:
        return self.points_per_minute * self.section.duration

    def overlaps(self, other: Candidate) -> bool:
        """Whether the two cannot both be allocated: they share a space and their times meet,
        each followed by its own premises' buffer (on the same day or across midnight)."""
        if self.weekday == other.weekday:  # the common case, inline: this is called a lot
            meet = self.start < other.until and other.start < self.until
        else:  # only a span past 24:00 reaches into another day
            meet = max(self.until, other.until) > DAY_MINUTES and blocks(
                self.weekday, self.start, self.until, other.weekday, other.start, other.until
            )
        return meet and not self.spaces.isdisjoint(other.spaces)

    def allocation(self) -> Allocation:
        s = self.section
        name = f"{s.application_id}\x1f{s.name}\x1f{WEEKDAYS[self.weekday]}"
        return Allocation(
            id=str(uuid.uuid5(_ID_NAMESPACE, name)),
            application_id=s.application_id,
            section=s.name,
            organisation_id=s.organisation_id,
            premises_id=self.premises_id,
            weekday=self.weekday,
            start=self.start,
            end=self.end,
            tier=s.tier,
            primary=self.primary,
            premises_rank=self.rank,
        )


def ordered(sections: Iterable[Section]) -> list[Section]:
    """The sections in one canonical order, so the input's order changes nothing."""
    return sorted(sections, key=lambda s: (s.tier, s.application_id, s.name))


def starts(lo: int, hi: int, step: int) -> list[int]:
    """Start times from `lo` to `hi` inclusive: both ends and the clock's `step` marks."""
    if hi < lo:
        return []
    marks = {lo, hi}
    mark = -(-lo // step) * step
    while mark < hi:
        marks.add(mark)
        mark += step
    return sorted(marks)


def candidates_of(
    section: Section, index: int, premises: Mapping[str, Premises], step: int
) -> list[Candidate]:
    best: dict[tuple[str, int, int], Candidate] = {}
    for rank, premises_id in enumerate(section.premises):
        place = premises.get(premises_id)
        if place is None:
            continue
        for wish in section.times:
            for opens, closes in place.opening.get(wish.weekday, ()):
                lo = max(wish.start, opens)
                hi = min(wish.end, closes) - section.duration
                for start in starts(lo, hi, step):
                    key = (premises_id, wish.weekday, start)
                    known = best.get(key)
                    if known is None or (wish.primary and not known.primary):
                        best[key] = Candidate(
                            section,
                            index,
                            premises_id,
                            place.occupies,
                            rank,
                            wish.weekday,
                            start,
                            start + section.duration,
                            wish.primary,
                            start + section.duration + place.buffer,
                        )
    return sorted(best.values(), key=lambda c: (c.rank, c.weekday, c.start, not c.primary))


def all_candidates(
    sections: list[Section], premises: Mapping[str, Premises], step: int
) -> list[Candidate]:
    return [
        candidate
        for index, section in enumerate(sections)
        for candidate in candidates_of(section, index, premises, step)
    ]
