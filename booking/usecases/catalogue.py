"""Handlers for the premises catalogue: register, update, close for a period, retire.

POST/PATCH /api/v1/premises, the closures and retire endpoints, the staff premises pages and
the demo loader call these. Each loads the premises (the repository keeps its state caught
up with the log), decides with booking.domain.decide, and records the events with their
inline projections and mail (booking.service.run_premises_command), all in the caller's
transaction. Catalogue data holds no personal data, so nothing is sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from booking.domain.commands import (
    Actor,
    AddClosure,
    RegisterPremises,
    RetirePremises,
    UpdatePremises,
)
from booking.queries.premises import free_slug, premises_row
from booking.service import PremisesRepository, run_premises_command
from events.slot import Slot
from events.store import Metadata, RecordedEvent


@dataclass(frozen=True)
class Acting:
    """Who acts, at what time, and what the log records with their events."""

    actor: Actor
    now: datetime
    metadata: Metadata


@dataclass(frozen=True)
class PremisesChanged:
    """The premises after a change, as the catalogue reads it now, and what the change
    cancelled or turned down on the way."""

    premises: Any  # the catalogue row (booking.queries.premises.premises_row)
    cancelled_bookings: list[str]
    rejected_popups: list[str]

    @property
    def version(self) -> int:
        return int(self.premises.version)


@dataclass(frozen=True)
class ClosureMade:
    id: str
    premises_id: str
    slot: Slot
    zone: ZoneInfo
    reason: str
    cancelled_bookings: list[str]
    rejected_popups: list[str]


def with_defaults(profile: dict[str, Any], timezone: str) -> dict[str, Any]:
    """A new premises' catalogue data with the optional parts filled in (API.md)."""
    found = {k: v for k, v in profile.items() if k != "id"}
    found.setdefault("description", {})
    found.setdefault("free_of_charge", False)
    found.setdefault("hourly_price_cents", None)
    found.setdefault("free_use_conditions", {})
    found.setdefault("accessibility", [])
    found.setdefault("equipment", [])
    found.setdefault("timezone", timezone)
    found.setdefault("rules", {})
    return found


def register_premises(
    conn: Connection,
    repository: PremisesRepository,
    acting: Acting,
    profile: dict[str, Any],
    premises_id: str | None = None,
    notify: bool = True,
) -> PremisesChanged:
    """Register premises; without an id, one is made from the name."""
    premises_id = premises_id or free_slug(conn, profile["name"])
    command = RegisterPremises(acting.actor, premises_id, profile)
    recorded = run_premises_command(
        conn, repository, premises_id, command, acting.metadata, notify=notify, now=acting.now
    )
    return _changed(conn, premises_id, recorded)


def update_premises(
    conn: Connection,
    repository: PremisesRepository,
    acting: Acting,
    premises_id: str,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> PremisesChanged:
    command = UpdatePremises(acting.actor, premises_id, changes, expected_version, acting.now)
    recorded = run_premises_command(
        conn, repository, premises_id, command, acting.metadata, now=acting.now
    )
    return _changed(conn, premises_id, recorded)


def add_closure(
    conn: Connection,
    repository: PremisesRepository,
    acting: Acting,
    premises_id: str,
    closure_id: str,
    slot: Slot,
    reason: str,
    cancel_conflicting: bool = False,
    expected_version: int | None = None,
) -> ClosureMade:
    """Close the premises for `slot`; bookings and holds there are a conflict (SlotTaken)
    unless `cancel_conflicting`, which cancels them and tells each booker why. With
    `expected_version` (If-Match), premises of another version are StaleVersion."""
    command = AddClosure(
        acting.actor,
        premises_id,
        closure_id,
        slot,
        reason,
        cancel_conflicting,
        acting.now,
        expected_version,
    )
    recorded = run_premises_command(
        conn, repository, premises_id, command, acting.metadata, now=acting.now
    )
    zone = ZoneInfo(premises_row(conn, premises_id).timezone)
    return ClosureMade(
        closure_id,
        premises_id,
        slot,
        zone,
        reason,
        _ids(recorded, "BookingCancelled", "booking_id"),
        _ids(recorded, "PopupRejected", "request_id"),
    )


def retire_premises(
    conn: Connection,
    repository: PremisesRepository,
    acting: Acting,
    premises_id: str,
    reason: str,
    cancel_conflicting: bool = False,
    expected_version: int | None = None,
) -> PremisesChanged:
    """Take the premises out of use. Bookings still to come and pending pop-up requests are
    a conflict (SlotTaken, listing them) unless `cancel_conflicting`, which cancels them and
    tells each booker why, in their language (issue 14.9)."""
    command = RetirePremises(
        acting.actor, premises_id, reason, acting.now, cancel_conflicting, expected_version
    )
    recorded = run_premises_command(
        conn, repository, premises_id, command, acting.metadata, now=acting.now
    )
    return _changed(conn, premises_id, recorded)


def _changed(conn: Connection, premises_id: str, recorded: list[RecordedEvent]) -> PremisesChanged:
    return PremisesChanged(
        premises_row(conn, premises_id),
        _ids(recorded, "BookingCancelled", "booking_id"),
        _ids(recorded, "PopupRejected", "request_id"),
    )


def _ids(recorded: list[RecordedEvent], type_: str, field: str) -> list[str]:
    return [str(r.data[field]) for r in recorded if r.type == type_]
