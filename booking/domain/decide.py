"""decide(command, premises, shared) -> events: every decision about a premises, as a pure
function. `shared` is what other premises hold on the spaces this one occupies (or will
occupy): see booking/domain/spaces.py."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from booking.domain.commands import (
    Actor,
    AddClosure,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceBooking,
    PlaceSeries,
    RegisterPremises,
    RetirePremises,
    UpdatePremises,
)
from booking.domain.errors import (
    Conflict,
    InvalidState,
    NotAllowed,
    NotFound,
    RuleBroken,
    SlotTaken,
    StaleVersion,
)
from booking.domain.popups import (
    DecidePopup,
    ExpirePopups,
    PopupCommand,
    RequestPopup,
    WithdrawPopup,
    decide_popup,
)
from booking.domain.premises import BookingRecord, PremisesState, Rules
from booking.domain.recurrence import BadRecurrence, expand
from booking.domain.rules import Problems, check_booking, conflicts_with
from booking.domain.spaces import (
    NOTHING_SHARED,
    OFFER,
    Occupied,
    Shared,
    conflict_of,
    reach,
    series_reach,
    space_problems,
)
from events.catalog import (
    PREMISES_CLOSED,
    PREMISES_RETIRED,
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    BookingSeriesCancelled,
    BookingSeriesPlaced,
    ClosureAdded,
    Event,
    PopupRejected,
    PremisesRegistered,
    PremisesRetired,
    PremisesUpdated,
)
from events.opening import OpeningHours
from events.slot import LONGEST_BOOKING, LONGEST_BUFFER, Slot

Command = (
    PopupCommand
    | RegisterPremises
    | UpdatePremises
    | RetirePremises
    | AddClosure
    | PlaceBooking
    | PlaceSeries
    | CancelBooking
    | CancelSeries
    | DecideBooking
)


def decide(
    command: Command, premises: PremisesState, shared: Shared = NOTHING_SHARED
) -> list[Event]:
    match command:
        case RegisterPremises():
            return _register(command, premises)
        case UpdatePremises():
            return _update(command, premises, shared)
        case RetirePremises():
            return _retire(command, premises)
        case AddClosure():
            return _close(command, premises, shared)
        case PlaceBooking():
            return _place(command, premises, shared)
        case PlaceSeries():
            return _place_series(command, premises, shared)
        case CancelBooking():
            return _cancel(command, premises)
        case CancelSeries():
            return _cancel_series(command, premises)
        case DecideBooking():
            return _decide_pending(command, premises)
        case RequestPopup() | DecidePopup() | WithdrawPopup() | ExpirePopups():
            return decide_popup(command, premises, shared)


def shared_window(command: Command, premises: PremisesState) -> Slot | None:
    """The span of time in which what other premises hold on shared spaces can change the
    decision (None: nothing they hold matters — cancellations, decisions, expiry). The
    caller reads `Shared` for it under the guard of the spaces (booking/service.py)."""
    match command:
        case PlaceBooking():
            return reach(command.request.slot)
        case PlaceSeries():
            return series_reach(command.request.slot, premises.rules.max_advance_days)
        case RequestPopup():
            return reach(command.slot)
        case AddClosure():
            return reach(command.slot)
        case UpdatePremises() if "spaces" in command.changes:
            return Slot(command.now or EARLIEST, FAR_FUTURE).padded(LONGEST_BUFFER)
        case _:
            return None


def spaces_touched(command: Command, premises: PremisesState) -> tuple[str, ...]:
    """Every space the command may occupy: the premises' own and any it is to occupy."""
    match command:
        case RegisterPremises():
            return tuple(command.profile.get("spaces") or [command.premises_id])
        case UpdatePremises() if isinstance(command.changes.get("spaces"), list):
            return (*premises.spaces, *command.changes["spaces"])
        case _:
            return premises.spaces or (premises.premises_id,)


def spaces_after(command: Command, premises: PremisesState) -> tuple[str, ...]:
    """The spaces the premises occupies once the command is done."""
    match command:
        case UpdatePremises() if isinstance(command.changes.get("spaces"), list):
            return tuple(command.changes["spaces"])
        case _:
            return spaces_touched(command, premises)


def close_elsewhere(cmd: AddClosure, premises: PremisesState) -> list[Event]:
    """What the closure of another premises sharing a space with this one does here (with
    `cancel_conflicting`): its bookings and pending requests in the period that are not over
    are cancelled or turned down, each booker told why."""
    reason = f"A hall sharing its floor with these premises is closed: {cmd.reason}"
    events: list[Event] = [
        PopupRejected(premises.premises_id, p.request_id, cmd.actor.user_id, reason, cmd.now)
        for p in premises.pending_popups_meeting(cmd.slot)
    ]
    events += [
        BookingCancelled(
            premises_id=premises.premises_id,
            booking_id=b.booking_id,
            cancelled_by=cmd.actor.user_id,
            reason=reason,
            late=False,
            cancelled_at=cmd.now,
        )
        for b in sorted(premises.active_bookings_meeting(cmd.slot), key=_by_start)
        if b.slot.end > cmd.now
    ]
    return events


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


# --- the catalogue ----------------------------------------------------------------------


def profile_problems(profile: dict[str, Any], spaces_kept: tuple[str, ...] = ()) -> Problems:
    """What is wrong with a premises' catalogue data beyond its JSON shape (`spaces_kept`:
    the spaces the premises occupies already, which keep their ids as they are)."""
    problems: Problems = {}
    if "timezone" in profile and profile["timezone"] not in _KNOWN_ZONES:
        problems["timezone"] = ["Not a known IANA time zone."]
    if "opening_hours" in profile:
        try:
            OpeningHours.parse(profile["opening_hours"])
        except (ValueError, TypeError) as error:
            problems["opening_hours"] = [str(error)]
    if "rules" in profile:
        rules = Rules.from_json(profile["rules"])
        wrong = []
        if rules.min_duration_minutes > rules.max_duration_minutes:
            wrong.append("min_duration_minutes is more than max_duration_minutes.")
        longest = int(LONGEST_BOOKING.total_seconds() // 60)
        if max(rules.max_duration_minutes, rules.popup_max_duration_minutes) > longest:
            wrong.append(f"A booking or pop-up lasts at most {longest} minutes.")
        if rules.buffer_minutes > LONGEST_BUFFER.total_seconds() // 60:
            wrong.append(f"buffer_minutes is at most {int(LONGEST_BUFFER.total_seconds() // 60)}.")
        if wrong:
            problems["rules"] = wrong
    if "name" in profile and not any((profile["name"] or {}).values()):
        problems["name"] = ["Give a name in at least one language."]
    if "spaces" in profile and (wrong_spaces := space_problems(profile["spaces"], spaces_kept)):
        problems["spaces"] = wrong_spaces
    return problems


# IANA names only: "localtime" or "Factory" are files of the server, not places.
_KNOWN_ZONES = frozenset(available_timezones()) - {"localtime", "Factory"}


def _staff_only(actor_is_staff: bool) -> None:
    if not actor_is_staff:
        raise NotAllowed("Only staff may change the premises catalogue.")


def _existing(premises: PremisesState) -> PremisesState:
    if not premises.exists:
        raise NotFound(f"No premises {premises.premises_id!r}.")
    return premises


def _register(cmd: RegisterPremises, premises: PremisesState) -> list[Event]:
    _staff_only(cmd.actor.is_staff)
    if premises.exists:
        raise InvalidState(f"Premises {cmd.premises_id!r} already exists.")
    if problems := profile_problems(cmd.profile):
        raise RuleBroken(problems)
    profile = {**cmd.profile, "rules": Rules.from_json(cmd.profile.get("rules", {})).as_json()}
    profile["spaces"] = list(profile.get("spaces") or [cmd.premises_id])
    return [PremisesRegistered(premises_id=cmd.premises_id, **profile)]


def _update(cmd: UpdatePremises, premises: PremisesState, shared: Shared) -> list[Event]:
    _staff_only(cmd.actor.is_staff)
    _existing(premises)
    if cmd.expected_version is not None and cmd.expected_version != premises.catalogue_version:
        raise StaleVersion(premises.catalogue_version)
    if premises.retired:
        raise InvalidState("A retired premises cannot be changed.")
    # Changed rules are checked merged with the current ones, as evolve will apply them.
    changes = dict(cmd.changes)
    if "rules" in changes:
        changes["rules"] = {**premises.rules.as_json(), **changes["rules"]}
    if problems := profile_problems(changes, premises.spaces):
        raise RuleBroken(problems)
    if "spaces" in changes and (clashes := _respacing_conflicts(cmd, premises, shared)):
        raise SlotTaken(clashes, premises.zone)
    return [PremisesUpdated(premises_id=cmd.premises_id, changes=cmd.changes)]


def _respacing_conflicts(
    cmd: UpdatePremises, premises: PremisesState, shared: Shared
) -> list[Conflict]:
    """What the premises' future bookings and holds would meet on its new spaces: others'
    bookings, holds and closures (`shared` was read for the new spaces from `cmd.now`)."""
    buffer, since = premises.rules.buffer, cmd.now or EARLIEST
    mine = [b.slot for b in premises.active_bookings() if b.slot.end > since]
    mine += [p.slot for p in premises.popups.values() if p.pending and p.slot.end > since]
    found: dict[tuple[Any, ...], Conflict] = {}
    for slot in mine:
        for other in (*shared.holding(slot, buffer), *shared.closed(slot)):
            found[(other.slot, other.kind, other.premises_id)] = _conflict(other)
    return sorted(found.values(), key=lambda c: (c.slot.start, c.via or ""))


def _conflict(other: Occupied, viewer: str | None = None) -> Conflict:
    return conflict_of(other, viewer)


def _retire(cmd: RetirePremises, premises: PremisesState) -> list[Event]:
    _staff_only(cmd.actor.is_staff)
    if _existing(premises).retired:
        raise InvalidState("The premises is already retired.")
    if cmd.expected_version is not None and cmd.expected_version != premises.catalogue_version:
        raise StaleVersion(premises.catalogue_version)
    # Like a closure that never ends: what is still to come meets it (issue 14.9).
    coming = [b for b in premises.active_bookings() if cmd.now is None or b.slot.end > cmd.now]
    held = [p for p in premises.popups.values() if p.pending]
    if not (coming or held):
        return [PremisesRetired(premises_id=cmd.premises_id, reason=cmd.reason)]
    if not cmd.cancel_conflicting or cmd.now is None:  # cancelling needs the time it happens
        conflicts = [Conflict(b.slot, b.kind) for b in coming]
        conflicts += [Conflict(p.slot, "hold") for p in held]
        raise SlotTaken(sorted(conflicts, key=lambda c: c.slot.start), premises.zone)
    now = cmd.now
    # The reason stored is the staff's own words; each mail says in its reader's language
    # that the premises was taken out of use (booking.notifications, kind "retired").
    events: list[Event] = [
        PopupRejected(
            premises.premises_id,
            p.request_id,
            cmd.actor.user_id,
            cmd.reason,
            now,
            cause=PREMISES_RETIRED,
        )
        for p in sorted(held, key=lambda p: p.slot.start)
    ]
    events += [
        BookingCancelled(
            premises_id=cmd.premises_id,
            booking_id=b.booking_id,
            cancelled_by=cmd.actor.user_id,
            reason=cmd.reason,
            late=False,
            cancelled_at=now,
            cause=PREMISES_RETIRED,
        )
        for b in sorted(coming, key=_by_start)
    ]
    events.append(PremisesRetired(premises_id=cmd.premises_id, reason=cmd.reason))
    return events


def _close(cmd: AddClosure, premises: PremisesState, shared: Shared) -> list[Event]:
    _staff_only(cmd.actor.is_staff)
    _existing(premises)
    if cmd.expected_version is not None and cmd.expected_version != premises.catalogue_version:
        raise StaleVersion(premises.catalogue_version)
    # Bookings already over are history: a closure neither conflicts with nor cancels them.
    clashing = [b for b in premises.active_bookings_meeting(cmd.slot) if b.slot.end > cmd.now]
    held = premises.pending_popups_meeting(cmd.slot)
    # Closing the premises closes its floor: what others sharing a space hold in the period
    # conflicts too (with `cancel_conflicting` the service cancels it on their streams).
    # Allocation offers do not: staff may close a hall on an offered date, which the
    # offer's series then skips.
    elsewhere = [
        o
        for o in shared.items
        if o.kind not in ("closure", OFFER) and o.slot.overlaps(cmd.slot) and o.slot.end > cmd.now
    ]
    if (clashing or held or elsewhere) and not cmd.cancel_conflicting:
        conflicts = [Conflict(b.slot, b.kind) for b in clashing]
        conflicts += [Conflict(p.slot, "hold") for p in held]
        conflicts += [_conflict(o) for o in elsewhere]
        raise SlotTaken(sorted(conflicts, key=lambda c: c.slot.start), premises.zone)
    # Pending pop-up requests in a closed period are turned down, with the reason.
    events: list[Event] = [
        PopupRejected(
            premises.premises_id,
            p.request_id,
            cmd.actor.user_id,
            cmd.reason,
            cmd.now,
            cause=PREMISES_CLOSED,
        )
        for p in held
    ]
    events += [
        BookingCancelled(
            premises_id=cmd.premises_id,
            booking_id=b.booking_id,
            cancelled_by=cmd.actor.user_id,
            reason=cmd.reason,
            late=False,
            cancelled_at=cmd.now,
            cause=PREMISES_CLOSED,
        )
        for b in sorted(clashing, key=_by_start)
    ]
    events.append(
        ClosureAdded(
            premises_id=cmd.premises_id,
            closure_id=cmd.closure_id,
            start=cmd.slot.start,
            end=cmd.slot.end,
            reason=cmd.reason,
        )
    )
    return events


def _by_start(booking: BookingRecord) -> Any:
    return booking.slot.start


# --- bookings ---------------------------------------------------------------------------


def _may_book(cmd: PlaceBooking | PlaceSeries) -> None:
    actor = cmd.actor
    if actor.role not in ("booker", "staff", "admin"):
        raise NotAllowed("Residents may ask for pop-up slots; bookings are for organisations.")
    if not actor.is_staff and cmd.request.organisation_id != actor.organisation_id:
        raise NotAllowed("You may book only for your own organisation.")


def _placed(cmd: PlaceBooking, premises: PremisesState, series_id: str | None) -> BookingPlaced:
    request = cmd.request
    needs_approval = premises.rules.requires_approval and not cmd.actor.is_staff
    return BookingPlaced(
        premises_id=request.premises_id,
        booking_id=cmd.booking_id,
        organisation_id=request.organisation_id,
        booked_by=cmd.actor.user_id,
        start=request.slot.start,
        end=request.slot.end,
        title=request.title,
        attendees=request.attendees,
        public=request.public,
        notes=request.notes,
        status="pending_approval" if needs_approval else "confirmed",
        placed_at=cmd.now,
        series_id=series_id,
    )


def _check_one(cmd: PlaceBooking, premises: PremisesState, shared: Shared) -> None:
    problems = check_booking(cmd.request, cmd.actor, premises, cmd.now)
    if not premises.retired and shared.closed(cmd.request.slot):
        problems.setdefault("start", []).append(PART_CLOSED)
    if problems:
        raise RuleBroken(problems)
    if clashes := shared_conflicts(premises, shared, cmd.request.slot):
        raise SlotTaken(clashes, premises.zone)


PART_CLOSED = "The premises shares its floor with premises closed at that time."


def shared_conflicts(premises: PremisesState, shared: Shared, slot: Slot) -> list[Conflict]:
    """The premises' own bookings and holds that `slot` meets, and others' on its spaces."""
    found = [Conflict(s, kind) for s, kind in conflicts_with(premises, slot)]
    holding = shared.holding(slot, premises.rules.buffer)
    found += [_conflict(o, premises.premises_id) for o in holding]
    return sorted(found, key=lambda c: (c.slot.start, c.via or ""))


def _place(cmd: PlaceBooking, premises: PremisesState, shared: Shared) -> list[Event]:
    _may_book(cmd)
    _existing(premises)
    _check_one(cmd, premises, shared)
    return [_placed(cmd, premises, None)]


def occurrence_id(series_id: str, index: int) -> str:
    """Occurrence ids derive from the series id, so deciding twice gives the same ids."""
    return str(uuid.uuid5(uuid.UUID(series_id), str(index)))


def _place_series(cmd: PlaceSeries, premises: PremisesState, shared: Shared) -> list[Event]:
    _may_book(cmd)
    _existing(premises)
    try:
        slots = expand(cmd.request.slot, cmd.rrule, premises.zone)
    except BadRecurrence as error:
        raise RuleBroken({"rrule": [str(error)]}) from None
    if not slots:
        raise RuleBroken({"rrule": ["The rule gives no occurrences."]})
    placed: list[Event] = []
    skipped: list[dict[str, Any]] = []
    # Later occurrences are checked against earlier ones of the same series, as if placed.
    for index, slot in enumerate(slots):
        occurrence = PlaceBooking(
            actor=cmd.actor,
            booking_id=occurrence_id(cmd.series_id, index),
            request=replace(cmd.request, slot=slot),
            now=cmd.now,
        )
        try:
            _check_one(occurrence, premises, shared)
        except (RuleBroken, SlotTaken) as error:
            if cmd.on_conflict == "fail":
                raise
            reason = "conflict" if isinstance(error, SlotTaken) else str(error)
            skipped.append(
                {"start": slot.start.isoformat(), "end": slot.end.isoformat(), "reason": reason}
            )
            continue
        event = _placed(occurrence, premises, cmd.series_id)
        placed.append(event)
        premises = _with_tentative(premises, event)
    if not placed:
        raise RuleBroken({"rrule": ["No occurrence of the series can be booked."]})
    header = BookingSeriesPlaced(
        premises_id=cmd.request.premises_id,
        series_id=cmd.series_id,
        rrule=cmd.rrule,
        organisation_id=cmd.request.organisation_id,
        booked_by=cmd.actor.user_id,
        placed_at=cmd.now,
        skipped=skipped,
    )
    return [header, *placed]


def _with_tentative(premises: PremisesState, event: BookingPlaced) -> PremisesState:
    """A shallow copy that also holds `event`'s booking; the caller's state stays untouched."""
    copy = replace(
        premises,
        bookings=dict(premises.bookings),
        bookings_by_start=premises.bookings_by_start.copy(),
    )
    copy.add_booking(BookingRecord.of(event))
    return copy


def _booking(premises: PremisesState, booking_id: str) -> BookingRecord:
    try:
        return premises.bookings[booking_id]
    except KeyError:
        raise NotFound(f"No booking {booking_id!r}.") from None


def _may_touch(actor: Actor, booking: BookingRecord) -> None:
    if not actor.is_staff and (
        actor.organisation_id is None or actor.organisation_id != booking.organisation_id
    ):
        raise NotAllowed("The booking belongs to another organisation.")


def _cancel(cmd: CancelBooking, premises: PremisesState) -> list[Event]:
    booking = _booking(premises, cmd.booking_id)
    _may_touch(cmd.actor, booking)
    if cmd.expected_version is not None and cmd.expected_version != booking.version:
        raise StaleVersion(booking.version)
    if not booking.active:
        raise InvalidState(f"The booking is already {booking.status}.")
    if booking.slot.end <= cmd.now:
        raise InvalidState("The booking is over.")
    deadline = booking.slot.start - timedelta(minutes=premises.rules.cancellation_deadline_minutes)
    return [
        BookingCancelled(
            premises_id=premises.premises_id,
            booking_id=booking.booking_id,
            cancelled_by=cmd.actor.user_id,
            reason=cmd.reason,
            late=cmd.now > deadline,
            cancelled_at=cmd.now,
        )
    ]


def _cancel_series(cmd: CancelSeries, premises: PremisesState) -> list[Event]:
    series = premises.series.get(cmd.series_id)
    if series is None:
        raise NotFound(f"No booking series {cmd.series_id!r}.")
    if not cmd.actor.is_staff and cmd.actor.organisation_id != series.organisation_id:
        raise NotAllowed("The series belongs to another organisation.")
    if series.cancelled:
        raise InvalidState("The series is already cancelled.")
    events: list[Event] = []
    for booking in (premises.bookings[b] for b in series.booking_ids):
        if booking.active and booking.slot.start > cmd.now:
            events += _cancel(
                CancelBooking(cmd.actor, booking.booking_id, cmd.reason, cmd.now), premises
            )
    events.append(
        BookingSeriesCancelled(
            premises_id=premises.premises_id,
            series_id=cmd.series_id,
            cancelled_by=cmd.actor.user_id,
            reason=cmd.reason,
            cancelled_at=cmd.now,
        )
    )
    return events


def _decide_pending(cmd: DecideBooking, premises: PremisesState) -> list[Event]:
    if not cmd.actor.is_staff:
        raise NotAllowed("Only staff approve or reject bookings.")
    booking = _booking(premises, cmd.booking_id)
    if booking.status != "pending_approval":
        raise InvalidState(f"The booking is {booking.status}, not pending approval.")
    if cmd.approve:
        return [
            BookingApproved(premises.premises_id, booking.booking_id, cmd.actor.user_id, cmd.now)
        ]
    return [
        BookingRejected(
            premises.premises_id, booking.booking_id, cmd.actor.user_id, cmd.reason, cmd.now
        )
    ]
