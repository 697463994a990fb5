"""Plain-value builders for the pure domain tests: a premises state evolved from real events.

Nothing here touches a database or a clock; every instant is written out in the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain.commands import Actor, BookingRequest, PlaceBooking
from booking.domain.decide import Command, decide
from booking.domain.premises import PremisesState, evolve
from events.catalog import Event, PremisesRegistered
from events.slot import Slot

HELSINKI = ZoneInfo("Europe/Helsinki")
PREMISES = "room"
ORG = "org-a"
OTHER_ORG = "org-b"

BOOKER = Actor("u-booker", "booker", ORG)
OTHER_BOOKER = Actor("u-other", "booker", OTHER_ORG)
STAFF = Actor("u-staff", "staff")
ADMIN = Actor("u-admin", "admin")
RESIDENT = Actor("u-resident", "resident")

# A Monday in winter (UTC+2), well inside the default 180-day advance window from NOW.
MONDAY = date(2027, 1, 11)
NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
EVERY_DAY = {d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def local(day: date, hh: int, mm: int = 0, fold: int = 0) -> datetime:
    """An aware Helsinki wall-clock time, converted to UTC as the API would give it."""
    return datetime.combine(day, time(hh, mm), tzinfo=HELSINKI).replace(fold=fold).astimezone(UTC)


def slot(
    day: date, start: tuple[int, int], end: tuple[int, int], end_day: date | None = None
) -> Slot:
    return Slot(local(day, *start), local(end_day or day, *end))


def profile(**overrides: Any) -> dict[str, Any]:
    """A complete catalogue entry; `rules` overrides merge into permissive test defaults."""
    body: dict[str, Any] = {
        "name": {"fi": "Kokoushuone", "en": "Meeting room"},
        "description": {},
        "address": "Raatihuoneenkatu 6, 50100 Mikkeli",
        "district": "keskusta",
        "capacity": 12,
        "free_of_charge": True,
        "hourly_price_cents": None,
        "free_use_conditions": {},
        "accessibility": [],
        "equipment": [],
        "timezone": "Europe/Helsinki",
        "opening_hours": EVERY_DAY,
        "rules": {"min_notice_minutes": 0, "max_advance_days": 365},
    }
    rules = overrides.pop("rules", {})
    body.update(overrides)
    body["rules"] = {**body["rules"], **rules}
    return body


def premises(*events: Event, **overrides: Any) -> PremisesState:
    """A registered premises (built by evolving a real `PremisesRegistered`), then `events`."""
    state = PremisesState(PREMISES)
    evolve(state, PremisesRegistered(premises_id=PREMISES, **profile(**overrides)))
    return apply(state, events)


def apply(state: PremisesState, events: Iterable[Event]) -> PremisesState:
    for event in events:
        evolve(state, event)
    return state


def run(state: PremisesState, command: Command) -> list[Event]:
    """Decide and evolve, as the service does after a successful append."""
    events = decide(command, state)
    apply(state, events)
    return events


def request(
    when: Slot,
    *,
    organisation_id: str | None = ORG,
    attendees: int = 5,
    title: str = "Kerhoilta",
    public: bool = False,
) -> BookingRequest:
    return BookingRequest(PREMISES, when, title, attendees, public, "", organisation_id)


def place(
    when: Slot,
    *,
    actor: Actor = BOOKER,
    now: datetime = NOW,
    booking_id: str | None = None,
    **request_fields: Any,
) -> PlaceBooking:
    request_fields.setdefault("organisation_id", actor.organisation_id)
    return PlaceBooking(
        actor=actor,
        booking_id=booking_id or str(uuid.uuid4()),
        request=request(when, **request_fields),
        now=now,
    )
