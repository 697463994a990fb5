"""A round as its stream's events folded into one value; its status follows from time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from events.catalog import (
    AllocationAdjusted,
    AllocationApplicationSubmitted,
    AllocationApplicationUpdated,
    AllocationApplicationWithdrawn,
    AllocationHoldReleased,
    AllocationOfferAccepted,
    AllocationOfferDeclined,
    AllocationOfferHeld,
    AllocationOfferLapsed,
    AllocationProposed,
    AllocationRoundOpened,
    AllocationRoundPublished,
    Event,
)

ROUND_STATUSES = ("upcoming", "open", "allocating", "published", "closed")


def round_stream(round_id: str) -> str:
    return f"allocation-round-{round_id}"


@dataclass
class ApplicationState:
    application_id: str
    organisation_id: str
    submitted_by: str
    purpose: str
    age_group: str
    group_size: int
    sections: list[dict[str, Any]]
    status: str = "submitted"  # | withdrawn
    version: int = 1

    def section(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.sections if s["name"] == name), None)


@dataclass
class RoundState:
    round_id: str
    version: int = 0
    opened: AllocationRoundOpened | None = None
    applications: dict[str, ApplicationState] = field(default_factory=dict)
    # allocation id → API.md's allocation JSON plus `status` (proposed | offered | accepted |
    # declined | lapsed), `confirm_by`, `series_id`, `override_reason`, `organisation_id`,
    # and while a published offer holds its time, `holding: True` (AllocationOfferHeld).
    allocations: dict[str, dict[str, Any]] = field(default_factory=dict)
    unallocated: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    published_at: datetime | None = None
    confirm_by: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.opened is not None

    def status(self, now: datetime) -> str:
        return round_status(self.opened, self.published_at, now) if self.opened else "upcoming"


def round_status(
    opened: AllocationRoundOpened, published_at: datetime | None, now: datetime
) -> str:
    """upcoming → open → allocating (after applications_close) → published → closed (once
    the season's last day is over)."""
    return status_at(
        opened.applications_open, opened.applications_close, published_at, opened.season_end, now
    )


def status_at(
    opens: datetime, closes: datetime, published_at: datetime | None, season_end: str, now: datetime
) -> str:
    if published_at is not None:
        return "closed" if now.date() > date.fromisoformat(season_end) else "published"
    if now < opens:
        return "upcoming"
    if now < closes:
        return "open"
    return "allocating"


def evolve(state: RoundState, event: Event) -> None:
    state.version += 1
    match event:
        case AllocationRoundOpened():
            state.opened = event
        case AllocationApplicationSubmitted():
            state.applications[event.application_id] = ApplicationState(
                event.application_id,
                event.organisation_id,
                event.submitted_by,
                event.purpose,
                event.age_group,
                event.group_size,
                [dict(s) for s in event.sections],
            )
        case AllocationApplicationUpdated():
            application = state.applications[event.application_id]
            for key, value in event.changes.items():
                setattr(application, key, value)
            application.version += 1
        case AllocationApplicationWithdrawn():
            application = state.applications[event.application_id]
            application.status = "withdrawn"
            application.version += 1
        case AllocationProposed():
            state.allocations = {
                a["id"]: {**a, "status": "proposed", "override_reason": ""}
                for a in event.allocations
            }
            state.unallocated = list(event.unallocated)
            state.metrics = dict(event.metrics)
        case AllocationAdjusted():
            if event.removed_id is not None:
                state.allocations.pop(event.removed_id, None)
            if event.allocation is not None:
                state.allocations[event.allocation["id"]] = {
                    **event.allocation,
                    "status": "proposed",
                    "override_reason": event.override_reason,
                }
        case AllocationRoundPublished():
            state.published_at = event.published_at
            state.confirm_by = event.confirm_by
            for offer_id in event.offer_ids:
                state.allocations[offer_id]["status"] = "offered"
        case AllocationOfferAccepted():
            offer = state.allocations[event.allocation_id]
            offer.update(status="accepted", series_id=event.series_id)
        case AllocationOfferDeclined():
            state.allocations[event.allocation_id]["status"] = "declined"
        case AllocationOfferLapsed():
            state.allocations[event.allocation_id]["status"] = "lapsed"
        case AllocationOfferHeld():
            offer = state.allocations[event.allocation_id]
            offer.update(holding=True, held=len(event.held), skipped=list(event.skipped))
        case AllocationHoldReleased():
            state.allocations[event.allocation_id]["holding"] = False
