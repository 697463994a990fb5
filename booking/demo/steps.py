"""Running the demo's planned history (booking.demo.history) step by step through the
same use-case handlers the API and the pages call, each at the step's simulated `now`."""

from __future__ import annotations

from dataclasses import dataclass, field

from booking.demo.history import Step
from booking.domain.commands import (
    AddClosure,
    BookingRequest,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceBooking,
    PlaceSeries,
)
from booking.queries.bookings import BookingRow
from booking.usecases import bookings as cases
from booking.usecases.unit import Unit, record


@dataclass
class Done:
    """What one step did, as the tally counts it."""

    placed: list[BookingRow] = field(default_factory=list)
    series: int = 0
    skipped: int = 0
    cancelled: list[BookingRow] = field(default_factory=list)
    approved: int = 0
    rejected: int = 0


def run_step(unit: Unit, step: Step) -> Done:
    """Run a planned step through the use case the person would have used (the API's and
    the pages' handlers), at the step's own `now`. Refusals propagate as domain errors."""
    command, done = step.command, Done()
    match command:
        case PlaceBooking():
            given = _input(command.request)
            placed = cases.place_booking(
                unit, command.actor, given, command.booking_id, command.now
            )
            done.placed.append(placed.booking)
        case PlaceSeries():
            series = cases.place_series(
                unit,
                command.actor,
                _input(command.request),
                command.rrule,
                command.on_conflict,
                command.series_id,
                command.now,
            )
            done.placed += series.bookings
            done.series, done.skipped = 1, len(series.skipped)
        case CancelBooking():
            changed = cases.cancel_booking(
                unit, command.actor, command.booking_id, command.reason, command.now
            )
            done.cancelled.append(changed.booking)
        case CancelSeries():
            over = cases.cancel_series(
                unit, command.actor, command.series_id, command.reason, command.now
            )
            done.cancelled += over.bookings
        case DecideBooking():
            cases.decide_booking(
                unit,
                command.actor,
                command.booking_id,
                command.approve,
                command.reason,
                command.now,
            )
            done.approved, done.rejected = (1, 0) if command.approve else (0, 1)
        case AddClosure():
            # The catalogue's own command; no use case of the booking side.
            record(unit, step.premises_id, command)
    return done


def _input(request: BookingRequest) -> cases.BookingInput:
    return cases.BookingInput(
        premises_id=request.premises_id,
        start=request.slot.start,
        end=request.slot.end,
        title=request.title,
        attendees=request.attendees,
        public=request.public,
        notes=request.notes,
        organisation_id=request.organisation_id,
    )
