"""Domain errors are values with names; the HTTP layer maps each to a status in one place."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from events.slot import Slot


class DomainError(Exception):
    """Base of every refusal the domain can give."""


class RuleBroken(DomainError):
    """422: the request breaks a rule of the premises; `problems` names field → messages."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Conflict:
    slot: Slot
    kind: str  # booking | hold | closure


class SlotTaken(DomainError):
    """409: the slot (with buffer) overlaps a booking, a hold or a closure. `zone` is the
    premises' zone: the conflicts are its instants, answered in its local offset."""

    def __init__(self, conflicts: list[Conflict], zone: ZoneInfo | None = None) -> None:
        super().__init__(f"{len(conflicts)} conflicting interval(s)")
        self.conflicts = conflicts
        self.zone = zone


class NotFound(DomainError):
    """404."""


class InvalidState(DomainError):
    """409: the thing is not in a state where this can be done (already cancelled, over…)."""


class NotAllowed(DomainError):
    """403: the actor may not do this to this thing."""


class StaleVersion(DomainError):
    """412: the client's If-Match names a version that is no longer current."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current
