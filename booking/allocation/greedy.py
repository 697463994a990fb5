"""The baseline the allocator must beat: first come, first served, best wish first.

Sections are taken in the order given (the order applications arrived); each takes, slot by
slot, its best still-free candidate (primary before secondary, then premises rank, weekday,
start) on a day it has not used yet. This is how a round is run by hand on a first-come
basis, and what the benchmark and the property tests compare against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from booking.allocation import explain
from booking.allocation.candidates import Candidate, candidates_of
from booking.allocation.model import Premises, Proposal, Section


def first_come(
    sections: Iterable[Section], premises: Mapping[str, Premises], step: int = 15
) -> tuple[list[Section], list[Candidate]]:
    """(the sections in arrival order, the candidates they took)."""
    secs = list(sections)
    chosen: list[Candidate] = []
    for index, section in enumerate(secs):
        options = sorted(
            candidates_of(section, index, premises, step),
            key=lambda c: (not c.primary, c.rank, c.weekday, c.start),
        )
        days: set[int] = set()
        for option in options:
            if len(days) == section.slots_per_week:
                break
            if option.weekday in days or any(option.overlaps(c) for c in chosen):
                continue
            chosen.append(option)
            days.add(option.weekday)
    return secs, chosen


def propose_first_come(
    sections: Iterable[Section], premises: Mapping[str, Premises], step: int = 15
) -> Proposal:
    secs, chosen = first_come(sections, premises, step)
    allocations = tuple(c.allocation() for c in chosen)
    return Proposal(allocations, (), explain.metrics(secs, chosen))
