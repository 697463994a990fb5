"""Pop-up requests: any signed-in person asks for a short slot at short notice.

A pending request holds its slot on the premises' stream, under the same no-overlap
guarantee as bookings. Staff approve (a booking is placed in the same append), reject or
let it expire at its decision deadline; the requester may withdraw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from booking.domain.commands import Actor
from booking.domain.errors import (
    Conflict,
    InvalidState,
    NotAllowed,
    NotFound,
    RuleBroken,
    SlotTaken,
)
from booking.domain.premises import PopupRecord, PremisesState
from booking.domain.rules import Problems, conflicts_with
from booking.domain.spaces import NOTHING_SHARED, Shared, conflict_of
from events.catalog import (
    POPUP_WITHDRAWN,
    BookingCancelled,
    BookingPlaced,
    Event,
    PopupApproved,
    PopupExpired,
    PopupRejected,
    PopupRequested,
    PopupWithdrawn,
)
from events.slot import Slot

HORIZON = timedelta(days=30)  # a pop-up starts within the next 30 days
DECISION_TIME = timedelta(hours=48)  # staff have 48 h to decide…
DECISION_MARGIN = timedelta(hours=1)  # …but at the latest 1 h before the start


@dataclass(frozen=True)
class RequestPopup:
    actor: Actor
    request_id: str
    booking_id: str  # used when the premises approves free slots at once
    premises_id: str
    slot: Slot
    title: str
    description: str  # already sealed by the caller
    expected_attendees: int
    now: datetime


@dataclass(frozen=True)
class DecidePopup:
    """Staff approve (`approve=True`, placing `booking_id`) or reject a pending request."""

    actor: Actor
    request_id: str
    approve: bool
    booking_id: str
    reason: str
    now: datetime


@dataclass(frozen=True)
class WithdrawPopup:
    actor: Actor
    request_id: str
    now: datetime


@dataclass(frozen=True)
class ExpirePopups:
    """Expire every pending request of the premises whose decision deadline has passed."""

    premises_id: str
    now: datetime


PopupCommand = RequestPopup | DecidePopup | WithdrawPopup | ExpirePopups


def decision_deadline(requested_at: datetime, start: datetime) -> datetime:
    return min(requested_at + DECISION_TIME, start - DECISION_MARGIN)


def _problems(cmd: RequestPopup, premises: PremisesState) -> Problems:
    problems: Problems = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    rules, slot = premises.rules, cmd.slot
    if premises.retired:
        add("premises_id", "The premises is no longer in use.")
        return problems
    if not rules.popup_allowed:
        add("premises_id", "These premises take no pop-up requests.")
        return problems
    if slot.minutes > rules.popup_max_duration_minutes:
        add("end", f"A pop-up lasts at most {rules.popup_max_duration_minutes} minutes.")
    if slot.start < cmd.now + timedelta(minutes=rules.min_notice_minutes):
        add("start", f"Ask at least {rules.min_notice_minutes} minutes ahead.")
    elif slot.start > cmd.now + HORIZON:
        add("start", "A pop-up starts within the next 30 days.")
    elif not rules.popup_auto_approve and decision_deadline(cmd.now, slot.start) <= cmd.now:
        add("start", "Too close to the start for staff to decide; ask at least an hour ahead.")
    if not premises.opening.covers(slot, premises.zone):
        add("start", "The premises is not open for the whole slot.")
    if cmd.expected_attendees > premises.capacity:
        add("expected_attendees", f"The premises holds at most {premises.capacity} people.")
    if premises.closures_overlapping(slot):
        add("start", "The premises is closed at that time.")
    return problems


def _booking_for(
    premises: PremisesState, popup: PopupRecord, booking_id: str, now: datetime
) -> BookingPlaced:
    return BookingPlaced(
        premises_id=premises.premises_id,
        booking_id=booking_id,
        organisation_id=None,
        booked_by=popup.requested_by,
        start=popup.slot.start,
        end=popup.slot.end,
        title=popup.title,
        attendees=popup.expected_attendees,
        public=True,  # a pop-up is an activity open to the public
        notes="",
        status="confirmed",
        placed_at=now,
        series_id=None,
    )


def _popup(premises: PremisesState, request_id: str) -> PopupRecord:
    try:
        return premises.popups[request_id]
    except KeyError:
        raise NotFound(f"No pop-up request {request_id!r}.") from None


def decide_popup(
    command: PopupCommand, premises: PremisesState, shared: Shared = NOTHING_SHARED
) -> list[Event]:
    match command:
        case RequestPopup():
            return _request(command, premises, shared)
        case DecidePopup():
            return _decide(command, premises)
        case WithdrawPopup():
            return _withdraw(command, premises)
        case ExpirePopups():
            return _expire(command, premises)


def _request(cmd: RequestPopup, premises: PremisesState, shared: Shared) -> list[Event]:
    if not premises.exists:
        raise NotFound(f"No premises {cmd.premises_id!r}.")
    problems = _problems(cmd, premises)
    if premises.rules.popup_allowed and not premises.retired and shared.closed(cmd.slot):
        problems.setdefault("start", []).append(
            "The premises shares its floor with premises closed at that time."
        )
    if problems:
        raise RuleBroken(problems)
    found = [Conflict(slot, kind) for slot, kind in conflicts_with(premises, cmd.slot)]
    found += [
        conflict_of(o, premises.premises_id)
        for o in shared.holding(cmd.slot, premises.rules.buffer)
    ]
    if found:
        raise SlotTaken(sorted(found, key=lambda c: (c.slot.start, c.via or "")), premises.zone)
    asked = PopupRequested(
        premises_id=cmd.premises_id,
        request_id=cmd.request_id,
        requested_by=cmd.actor.user_id,
        start=cmd.slot.start,
        end=cmd.slot.end,
        title=cmd.title,
        description=cmd.description,
        expected_attendees=cmd.expected_attendees,
        requested_at=cmd.now,
        decision_deadline=decision_deadline(cmd.now, cmd.slot.start),
    )
    if not premises.rules.popup_auto_approve:
        return [asked]
    record = PopupRecord(
        cmd.request_id,
        cmd.actor.user_id,
        cmd.slot,
        cmd.title,
        cmd.expected_attendees,
        asked.decision_deadline,
    )
    return [
        asked,
        PopupApproved(cmd.premises_id, cmd.request_id, cmd.booking_id, "auto", cmd.now),
        _booking_for(premises, record, cmd.booking_id, cmd.now),
    ]


def _decide(cmd: DecidePopup, premises: PremisesState) -> list[Event]:
    if not cmd.actor.is_staff:
        raise NotAllowed("Only staff approve or reject pop-up requests.")
    popup = _popup(premises, cmd.request_id)
    if not popup.pending:
        raise InvalidState(f"The request is {popup.status}, not pending.")
    if cmd.now >= popup.decision_deadline:
        raise InvalidState("The decision deadline has passed; the request is expiring.")
    if not cmd.approve:
        return [
            PopupRejected(
                premises.premises_id, popup.request_id, cmd.actor.user_id, cmd.reason, cmd.now
            )
        ]
    if premises.closures_overlapping(popup.slot):
        raise RuleBroken({"start": ["The premises is closed at that time."]})
    return [
        PopupApproved(
            premises.premises_id, popup.request_id, cmd.booking_id, cmd.actor.user_id, cmd.now
        ),
        _booking_for(premises, popup, cmd.booking_id, cmd.now),
    ]


def _withdraw(cmd: WithdrawPopup, premises: PremisesState) -> list[Event]:
    popup = _popup(premises, cmd.request_id)
    if popup.requested_by != cmd.actor.user_id and not cmd.actor.is_staff:
        raise NotAllowed("Only the requester may withdraw the request.")
    withdrawn = PopupWithdrawn(premises.premises_id, popup.request_id, cmd.actor.user_id, cmd.now)
    if popup.pending:
        return [withdrawn]
    booking = premises.bookings.get(popup.booking_id or "")
    if popup.status == "approved" and booking is not None and booking.active:
        if booking.slot.end <= cmd.now:
            raise InvalidState("The pop-up is over.")
        # Withdrawing an approved pop-up gives its slot back: its booking is cancelled.
        return [
            withdrawn,
            BookingCancelled(
                premises.premises_id,
                booking.booking_id,
                cmd.actor.user_id,
                "",
                False,
                cmd.now,
                cause=POPUP_WITHDRAWN,
            ),
        ]
    raise InvalidState(f"The request is {popup.status}.")


def _expire(cmd: ExpirePopups, premises: PremisesState) -> list[Event]:
    # The due ones, then sorted (stable: the order of sorting them all and then choosing):
    # a premises' decided requests stay in its state for good.
    due = [p for p in premises.popups.values() if p.pending and p.decision_deadline <= cmd.now]
    due.sort(key=_DEADLINE)
    return [PopupExpired(premises.premises_id, popup.request_id, cmd.now) for popup in due]


_DEADLINE = attrgetter("decision_deadline")
