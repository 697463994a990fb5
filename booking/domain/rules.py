"""Every rule a booking must keep, as one function from (request, premises, now) to problems.

Problems are field → messages, the shape of a 422 `errors` object. Overlap is not checked
here: a taken slot is a conflict (409), not a broken rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.commands import Actor, BookingRequest
from booking.domain.premises import PremisesState
from events.slot import Slot

Problems = dict[str, list[str]]

# Farther than any week or calendar month reaches from one of its instants.
PERIOD_REACH = timedelta(days=32)


def check_booking(
    request: BookingRequest, actor: Actor, premises: PremisesState, now: datetime
) -> Problems:
    problems: Problems = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    rules, slot, zone = premises.rules, request.slot, premises.zone
    if premises.retired:
        add("premises_id", "The premises is no longer in use.")
        return problems
    if rules.bookable_by == "organisations" and request.organisation_id is None:
        add("organisation_id", "Only organisations can book these premises.")
    minutes = slot.minutes
    if minutes < rules.min_duration_minutes:
        add("end", f"A booking lasts at least {rules.min_duration_minutes} minutes.")
    if minutes > rules.max_duration_minutes:
        add("end", f"A booking lasts at most {rules.max_duration_minutes} minutes.")
    if slot.start < now + timedelta(minutes=rules.min_notice_minutes):
        add("start", f"Book at least {rules.min_notice_minutes} minutes ahead.")
    if slot.start > now + timedelta(days=rules.max_advance_days):
        add("start", f"Book at most {rules.max_advance_days} days ahead.")
    if not premises.opening.covers(slot, zone):
        add("start", "The premises is not open for the whole booking.")
    if request.attendees > premises.capacity:
        add("attendees", f"The premises holds at most {premises.capacity} people.")
    if premises.closures_overlapping(slot):
        add("start", "The premises is closed at that time.")
    if request.organisation_id is not None and not actor.is_staff:
        for message in _quota_problems(request, premises):
            add("end", message)
    return problems


def _period(instant: datetime, zone: ZoneInfo, name: str) -> tuple[int, int]:
    local = instant.astimezone(zone)
    return local.isocalendar()[:2] if name == "week" else (local.year, local.month)


def _quota_problems(request: BookingRequest, premises: PremisesState) -> list[str]:
    """Per-organisation quota on these premises, per local ISO week and calendar month."""
    rules, zone = premises.rules, premises.zone
    # Every booking starting in the request's week or month, whatever the zone: the
    # candidates, which the period test below then sorts out.
    near = Slot.of_utc(request.slot.start - PERIOD_REACH, request.slot.start + PERIOD_REACH)
    found = []
    for quota, name in (
        (rules.quota_hours_per_week, "week"),
        (rules.quota_hours_per_month, "month"),
    ):
        if quota is None:
            continue
        period = _period(request.slot.start, zone, name)
        used = sum(
            (
                b.slot.duration
                for b in premises.active_bookings_meeting(near)
                if b.organisation_id == request.organisation_id
                and _period(b.slot.start, zone, name) == period
            ),
            timedelta(),
        )
        if (used + request.slot.duration).total_seconds() / 3600 > quota:
            found.append(f"Over the organisation's quota of {quota:g} hours per {name}.")
    return found


def conflicts_with(premises: PremisesState, slot: Slot) -> list[tuple[Slot, str]]:
    """Active bookings, holds and pending pop-up requests that meet `slot`, buffer
    included. Closures are a rule, not a conflict."""
    found = [(b.slot, b.kind) for b in premises.bookings_overlapping(slot)]
    found += [(p.slot, "hold") for p in premises.holds_overlapping(slot)]
    return sorted(found)
