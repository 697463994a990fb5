"""Commands: what a person asks the system to do. Each carries `now`; decide never reads a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.slot import Slot

ROLES = ("resident", "booker", "staff", "analyst", "admin")


@dataclass(frozen=True)
class Actor:
    user_id: str
    role: str
    organisation_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")


@dataclass(frozen=True)
class RegisterPremises:
    actor: Actor
    premises_id: str
    profile: dict[str, Any]


@dataclass(frozen=True)
class UpdatePremises:
    actor: Actor
    premises_id: str
    changes: dict[str, Any]
    expected_version: int | None = None
    # When the change is made: new `spaces` must not make bookings from then on collide.
    # None checks every booking, past ones too.
    now: datetime | None = None


@dataclass(frozen=True)
class RetirePremises:
    """Take a premises out of use. Its bookings still to come (ending after `now`) and its
    pending pop-up requests stand in the way unless `cancel_conflicting`; without a `now`
    every active booking does."""

    actor: Actor
    premises_id: str
    reason: str
    now: datetime | None = None
    cancel_conflicting: bool = False
    expected_version: int | None = None


@dataclass(frozen=True)
class AddClosure:
    actor: Actor
    premises_id: str
    closure_id: str
    slot: Slot
    reason: str
    cancel_conflicting: bool
    now: datetime
    expected_version: int | None = None  # If-Match: the premises' catalogue version


@dataclass(frozen=True)
class BookingRequest:
    """What one booking asks for; shared by single bookings and each series occurrence."""

    premises_id: str
    slot: Slot
    title: str
    attendees: int
    public: bool
    notes: str
    organisation_id: str | None


@dataclass(frozen=True)
class PlaceBooking:
    actor: Actor
    booking_id: str
    request: BookingRequest
    now: datetime


@dataclass(frozen=True)
class PlaceSeries:
    actor: Actor
    series_id: str
    request: BookingRequest  # the first occurrence
    rrule: str
    on_conflict: str  # skip | fail
    now: datetime


@dataclass(frozen=True)
class CancelBooking:
    actor: Actor
    booking_id: str
    reason: str
    now: datetime
    expected_version: int | None = None


@dataclass(frozen=True)
class CancelSeries:
    actor: Actor
    series_id: str
    reason: str
    now: datetime


@dataclass(frozen=True)
class DecideBooking:
    """Staff approve (`approve=True`) or reject a booking pending approval."""

    actor: Actor
    booking_id: str
    approve: bool
    reason: str
    now: datetime
