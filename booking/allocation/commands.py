"""What people ask of a round. Each carries `now`; what the catalogue says about the
round's premises comes in as `PremisesFacts`, so the decider reads nothing itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from booking.allocation.model import Premises
from booking.domain.commands import Actor


@dataclass(frozen=True)
class PremisesFacts:
    """A premises as the allocation rules need it."""

    hours: Premises  # opening hours in minutes per weekday, and its spaces
    min_duration_minutes: int
    max_duration_minutes: int
    retired: bool = False
    capacity: int | None = None


Catalogue = dict[str, PremisesFacts]


@dataclass(frozen=True)
class OpenRound:
    actor: Actor
    round_id: str
    body: dict[str, Any]  # API.md's round: name, season dates, window, premises, criteria…
    catalogue: Catalogue
    now: datetime


@dataclass(frozen=True)
class SubmitApplication:
    actor: Actor
    application_id: str
    organisation_id: str
    body: dict[str, Any]
    catalogue: Catalogue
    now: datetime


@dataclass(frozen=True)
class UpdateApplication:
    actor: Actor
    application_id: str
    changes: dict[str, Any]
    catalogue: Catalogue
    now: datetime
    expected_version: int | None = None


@dataclass(frozen=True)
class WithdrawApplication:
    actor: Actor
    application_id: str
    now: datetime
    expected_version: int | None = None


@dataclass(frozen=True)
class RecordProposal:
    """The allocator's answer, worked out by the use case from this state."""

    actor: Actor
    proposal: dict[str, Any]
    now: datetime


@dataclass(frozen=True)
class AddAllocation:
    actor: Actor
    allocation_id: str
    body: dict[str, Any]  # application_id, section, premises_id, weekday, start/end_time
    override_reason: str
    catalogue: Catalogue
    now: datetime


@dataclass(frozen=True)
class RemoveAllocation:
    actor: Actor
    allocation_id: str
    now: datetime


@dataclass(frozen=True)
class OfferHold:
    """What an offer is to hold from publication: the season's occurrences free then
    (`held`, `{start, end}` instants) and those already taken (`skipped`, with reason), worked
    out by the use case under the locks of the premises' spaces."""

    premises_id: str
    held: list[dict[str, Any]]
    skipped: list[dict[str, Any]]


@dataclass(frozen=True)
class Publish:
    """`holds`: allocation id → what its offer holds (every allocation of the round)."""

    actor: Actor
    now: datetime
    holds: dict[str, OfferHold] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerOffer:
    """Accept (with the id of the series the use case places) or decline an offer."""

    actor: Actor
    allocation_id: str
    accept: bool
    series_id: str
    reason: str
    now: datetime


@dataclass(frozen=True)
class LapseOffers:
    now: datetime


RoundCommand = (
    OpenRound
    | SubmitApplication
    | UpdateApplication
    | WithdrawApplication
    | RecordProposal
    | AddAllocation
    | RemoveAllocation
    | Publish
    | AnswerOffer
    | LapseOffers
)
