"""Premises made of spaces: what other premises that share a space hold, and the rules for it.

A space is a piece of floor; a premises occupies one or more (`PremisesState.spaces`). A
whole hall and its halves share spaces, so a booking of the whole blocks both halves and a
half blocks the whole, while the halves never block each other (API.md, "Premises made of
spaces"). The premises' own bookings live in its state; what *other* premises hold on its
spaces arrives here as `Shared`, read under the guard of every space concerned
(booking/service.py) — the decider stays a pure function of what it is handed.

Two holdings conflict when their premises share a space and their times overlap, each
followed by its own premises' buffer: [start, end + buffer) of the one meets that of the
other. For two bookings of one premises that is exactly the rule `PremisesState` keeps
(its buffer on both sides); it is also what PostgreSQL's exclusion constraint per space
checks (projections/availability.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from booking.domain.errors import Conflict
from events.slot import LONGEST_BOOKING, LONGEST_BUFFER, Slot

# A published allocation offer's weekly occurrence (projections.availability_tables.OFFER):
# it holds its time against every booking and pop-up request on its spaces, its own
# premises' included, and is answered as a `hold`.
OFFER = "offer"

MAX_SPACES = 20
SPACE_ID_LENGTH = 100
# A premises id, and so a space id (a premises' one space is by default named after it):
# 1 to 100 lower-case letters a-z, digits and hyphens, not starting with a hyphen. It is
# part of URLs (/premises/{id}), feed UIDs and CSV files, so nothing else may be in it.
# (`ID_PATTERN` is what the OpenAPI document shows; `is_id` checks the whole text, where a
# `re.match` of the pattern would let a trailing line feed through before `$`.)
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,99}$"
_ID = re.compile(ID_PATTERN)


def is_id(text: str) -> bool:
    """Whether `text` is a well-formed premises or space id (`ID_PATTERN`)."""
    return _ID.fullmatch(text) is not None


@dataclass(frozen=True)
class Occupied:
    """A booking, hold or closure of another premises on a space this one occupies, or an
    allocation offer's occurrence on it (of this premises too)."""

    premises_id: str  # the other premises (shown as `via`)
    ref_id: str  # its booking, pop-up request or closure id
    kind: str  # booking | hold | offer | closure
    slot: Slot
    buffer: timedelta  # the other premises' buffer, kept after its slot

    @property
    def blocked(self) -> Slot:
        """The span it keeps from others: its slot and its own premises' buffer after."""
        return Slot.of_utc(self.slot.start, self.slot.end + self.buffer)


@dataclass(frozen=True)
class Shared:
    """What other premises hold on the spaces a decision concerns, meeting `window`."""

    window: Slot | None = None
    items: tuple[Occupied, ...] = field(default_factory=tuple)

    def holding(self, slot: Slot, buffer: timedelta) -> list[Occupied]:
        """Bookings and holds that a slot of ours (followed by our `buffer`) would meet."""
        mine = Slot.of_utc(slot.start, slot.end + buffer)
        return [o for o in self.items if o.kind != "closure" and o.blocked.overlaps(mine)]

    def closed(self, slot: Slot) -> list[Occupied]:
        """Closures of premises sharing a space with ours that meet `slot`."""
        return [o for o in self.items if o.kind == "closure" and o.slot.overlaps(slot)]


NOTHING_SHARED = Shared()


def conflict_of(other: Occupied, viewer: str | None = None) -> Conflict:
    """`other` as a conflict of premises `viewer`: an offer is a hold, and `via` names the
    premises holding it unless that is the viewer itself."""
    kind = "hold" if other.kind == OFFER else other.kind
    return Conflict(other.slot, kind, None if other.premises_id == viewer else other.premises_id)


def reach(slot: Slot) -> Slot:
    """How far around `slot` others' holdings may matter: their buffers and ours."""
    return slot.padded(LONGEST_BUFFER)


def series_reach(first: Slot, max_advance_days: int) -> Slot:
    """A series' occurrences lie between its first start and the premises' horizon."""
    horizon = first.start + timedelta(days=max_advance_days) + LONGEST_BOOKING
    return Slot(first.start, max(horizon, first.end)).padded(LONGEST_BUFFER)


def space_problems(spaces: object, kept: Iterable[str] = ()) -> list[str]:
    """What is wrong with a list of space ids (a new id is fine: naming it creates it). Each
    id is written as a premises id is (`ID_PATTERN`), except the ids in `kept` (the spaces
    the premises occupies already, which may be sent back as they are)."""
    if not isinstance(spaces, list) or not all(isinstance(s, str) for s in spaces):
        return ["Give a list of space ids."]
    problems = []
    if not spaces:
        problems.append("A premises occupies at least one space.")
    if len(spaces) > MAX_SPACES:
        problems.append(f"A premises occupies at most {MAX_SPACES} spaces.")
    if len(set(spaces)) != len(spaces):
        problems.append("Name each space once.")
    known = set(kept)
    if any(not is_id(s) for s in spaces if s not in known):
        problems.append(
            f"A space id is 1 to {SPACE_ID_LENGTH} lower-case letters (a-z), digits and "
            "hyphens, not starting with a hyphen (as a premises id is)."
        )
    return problems


def sorted_spaces(spaces: Iterable[str]) -> list[str]:
    return sorted(set(spaces))


def by_premises(items: Sequence[Occupied]) -> dict[str, list[Occupied]]:
    found: dict[str, list[Occupied]] = {}
    for item in items:
        found.setdefault(item.premises_id, []).append(item)
    return found
