"""Bookings and booking series: place, cancel, approve, reject.

Every handler: seal personal data (the notes, under the booker's key) → load what the
command is about → decide (booking.domain.decide, through `record`) → record; and returns
the booking(s) as they now read, which the API and the pages answer with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking import memberships, notifications, strong_identity
from booking.domain.commands import (
    Actor,
    BookingRequest,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceBooking,
    PlaceSeries,
)
from booking.domain.errors import NotFound, RuleBroken, StaleVersion
from booking.queries.bookings import (
    BookingRow,
    booking_rows,
    opened,
    premises_and_version,
    premises_of_series,
    row_ahead,
)
from booking.service import premises_locks_ahead, premises_stream
from booking.usecases.times import check_stated_times
from booking.usecases.unit import Unit, known_zone, record, zone_of
from events import pipeline
from events.catalog import BookingCancelled, BookingPlaced, BookingSeriesPlaced
from events.slot import Slot
from events.store import ConcurrencyError, RecordedEvent


@dataclass(frozen=True)
class BookingInput:
    """What a person asks to book. `start`/`end` are aware, in the offset the person wrote
    (a local time that does not exist is refused); `organisation_id` None means the
    actor's own; `notes` in clear (sealed by the handler)."""

    premises_id: str
    start: datetime
    end: datetime
    title: str
    attendees: int = 1
    public: bool = False
    notes: str = ""
    organisation_id: str | None = None


@dataclass(frozen=True)
class Placed:
    booking: BookingRow


@dataclass(frozen=True)
class Skipped:
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class SeriesPlaced:
    series_id: str
    bookings: list[BookingRow]
    skipped: list[Skipped]


@dataclass(frozen=True)
class Changed:
    """A booking after a cancellation or a decision."""

    booking: BookingRow


@dataclass(frozen=True)
class SeriesCancelled:
    series_id: str
    bookings: list[BookingRow]  # the occurrences this cancelled


def _request(
    unit: Unit, actor: Actor, given: BookingInput, strong: bool
) -> tuple[Actor, BookingRequest]:
    """The actor as a member of the organisation the booking is for, and the domain's
    request: organisation resolved (one of the booker's: booking.memberships), strong
    identity checked where the premises asks for it (booking.strong_identity), times
    checked, notes sealed."""
    organisation_id = memberships.organisation_for_booking(unit.conn, actor, given.organisation_id)
    strong_identity.check(unit.conn, given.premises_id, actor, strong)
    actor = memberships.acting_for(actor, organisation_id)
    if given.end <= given.start:
        raise RuleBroken({"end": ["The end must be after the start."]})
    zone = known_zone(unit, given.premises_id)
    if zone is not None:
        check_stated_times({"start": given.start, "end": given.end}, zone)
    return actor, BookingRequest(
        premises_id=given.premises_id,
        slot=Slot(given.start, given.end),
        title=given.title.strip(),
        attendees=given.attendees,
        public=given.public,
        # Notes may hold contact details: the log never holds them in clear.
        notes=unit.vault.seal_for(unit.conn, actor.user_id, given.notes),
        organisation_id=organisation_id,
    )


def place_booking(
    unit: Unit,
    actor: Actor,
    given: BookingInput,
    booking_id: str,
    now: datetime,
    strong: bool = True,
) -> Placed:
    """Book once: `confirmed`, or `pending_approval` where the premises asks for it.
    `strong` says the person signed in with strong identification (the API and the pages
    pass the session's; jobs, the CLI and the demo act for people already vouched for)."""
    _read_ahead(unit, actor, given, booking_id, now, strong)
    actor, request = _request(unit, actor, given, strong)
    recorded = record(unit, given.premises_id, PlaceBooking(actor, booking_id, request, now))
    zone = zone_of(unit, given.premises_id)
    placed = next(e for e in _events(recorded) if isinstance(e, BookingPlaced))
    return Placed(BookingRow.placed(placed, zone, given.notes))


def _read_ahead(
    unit: Unit,
    actor: Actor,
    given: BookingInput,
    booking_id: str,
    now: datetime,
    strong: bool = True,
) -> None:
    """Everything a booking reads, in one round trip with the BEGIN, when the service holds
    the transaction's writes for the commit's (`events.pipeline`): the booker's
    organisations, whether the premises asks for strong identification, the locks of the
    premises' spaces, the stream's tail, what other premises hold there, and the mail's
    names and language. Each reader finds its answer there (`pipeline.remembered`) or,
    where the foresight missed, reads it as before."""
    if not pipeline.holding(unit.conn):
        return
    if given.end <= given.start:
        return  # refused anyway (`_request`)
    reads = [] if actor.is_staff else [memberships.organisations_ahead(actor.user_id)]
    if not (actor.is_staff or strong):
        reads.append(strong_identity.read_ahead(given.premises_id))
    foreseen = BookingRequest(
        given.premises_id, Slot(given.start, given.end), "", 1, False, "", None
    )
    command = PlaceBooking(actor, booking_id, foreseen, now)
    reads += unit.premises.reads_ahead(unit.conn, given.premises_id, command)
    if unit.notify:
        statement, params, key = notifications.read_ahead(actor.user_id, given.premises_id)
        reads.append(pipeline.Ahead(statement, params, key, lambda rows: rows[0] if rows else None))
    pipeline.read_ahead(unit.conn, reads)


def place_series(
    unit: Unit,
    actor: Actor,
    given: BookingInput,
    rrule: str,
    on_conflict: str,
    series_id: str,
    now: datetime,
    strong: bool = True,
) -> SeriesPlaced:
    """Book every occurrence of `rrule` (`on_conflict`: "skip" the ones that fail, or
    "fail" and book none). `strong`: as for `place_booking`."""
    actor, request = _request(unit, actor, given, strong)
    command = PlaceSeries(actor, series_id, request, rrule, on_conflict, now)
    events = _events(record(unit, given.premises_id, command))
    zone = zone_of(unit, given.premises_id)
    header = next(e for e in events if isinstance(e, BookingSeriesPlaced))
    return SeriesPlaced(
        series_id,
        [BookingRow.placed(e, zone, given.notes) for e in events if isinstance(e, BookingPlaced)],
        [
            Skipped(
                datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]), s["reason"]
            )
            for s in header.skipped
        ],
    )


def cancel_booking(
    unit: Unit,
    actor: Actor,
    booking_id: str,
    reason: str,
    now: datetime,
    expected_version: int | None = None,
) -> Changed:
    """Cancel one booking; `late` says whether it was after the cancellation deadline."""
    command = CancelBooking(actor, booking_id, reason, now, expected_version)
    before = _cancel_read_ahead(unit, booking_id)
    if before is None:  # writes not held: statement by statement, the row read back
        premises_id, _version = premises_and_version(unit.conn, booking_id)
        record(unit, premises_id, command)
        return Changed(_row(unit, booking_id))
    recorded = record(unit, before.premises_id, command)
    decided_on = unit.premises.booking_version(before.premises_id, booking_id)
    if decided_on != before.version:  # an earlier command of this transaction changed it
        return Changed(_row(unit, booking_id))
    cancelled = next(e for e in _events(recorded) if isinstance(e, BookingCancelled))
    (row,) = opened(unit.conn, unit.vault, [before])
    return Changed(row.after(cancelled))


def _cancel_read_ahead(unit: Unit, booking_id: str) -> Any:
    """Everything a cancellation reads, in one round trip with the BEGIN, when the service
    holds the transaction's writes for the commit's (`events.pipeline`): the premises'
    lock, the stream's tail, the booking's row (read after them: what the decision and the
    answer start from) and the mail's names and language. The premises comes from the
    kept states (a booking never moves); when none knows the booking, a first round trip
    reads its row to find it. The row as it was before the cancellation, or None when the
    writes are not held; NotFound when there is no such booking; a ConcurrencyError (the
    service decides again) when a kept state named the wrong premises.

    The row is read under the lock after the tail: a change to it after the tail was read
    appends to the stream too, and the cancellation's append then meets that version and
    the service decides again (`booking.service.execute`)."""
    conn = unit.conn
    if not pipeline.holding(conn):
        return None
    premises_id = unit.premises.premises_of_booking(booking_id)
    booker = None if premises_id is None else unit.premises.booker_of(premises_id, booking_id)
    if premises_id is None:
        pipeline.read_ahead(conn, [row_ahead(booking_id, "booking-found")])
        found = pipeline.remembered(conn, ("booking-found", booking_id))
        if found is None:
            raise NotFound(f"No booking {booking_id!r}.")
        premises_id, booker = found.premises_id, found.booked_by
    reads = premises_locks_ahead([premises_id]) if conn.dialect.name == "postgresql" else []
    reads += unit.premises.tails_ahead([premises_id])
    reads.append(row_ahead(booking_id))
    if unit.notify and booker is not None:
        statement, params, key = notifications.read_ahead(booker, premises_id)
        reads.append(pipeline.Ahead(statement, params, key, lambda rows: rows[0] if rows else None))
    pipeline.read_ahead(conn, reads)
    before = pipeline.remembered(conn, ("booking", booking_id))
    if before is None:
        raise NotFound(f"No booking {booking_id!r}.")
    if before.premises_id != premises_id:
        # A kept state ahead of the log (what it took in never committed): the lock taken
        # is another premises'. Forget it and decide again.
        unit.premises.forget(premises_id)
        raise ConcurrencyError(premises_stream(premises_id), 0)
    return before


def decide_booking(
    unit: Unit,
    actor: Actor,
    booking_id: str,
    approve: bool,
    reason: str,
    now: datetime,
    expected_version: int | None = None,
) -> Changed:
    """Staff approve or reject a booking waiting for approval. The domain's decision takes
    no version, so `expected_version` (If-Match) is checked here, before and after."""
    premises_id, version = premises_and_version(unit.conn, booking_id)
    if expected_version is not None and version != expected_version:
        raise StaleVersion(version)
    record(unit, premises_id, DecideBooking(actor, booking_id, approve, reason, now))
    after = _row(unit, booking_id)
    if expected_version is not None and after.version != expected_version + 1:
        raise StaleVersion(after.version - 1)  # another write came between: roll back
    return Changed(after)


def approve_booking(
    unit: Unit, actor: Actor, booking_id: str, now: datetime, expected_version: int | None = None
) -> Changed:
    return decide_booking(unit, actor, booking_id, True, "", now, expected_version)


def reject_booking(
    unit: Unit,
    actor: Actor,
    booking_id: str,
    reason: str,
    now: datetime,
    expected_version: int | None = None,
) -> Changed:
    return decide_booking(unit, actor, booking_id, False, reason, now, expected_version)


def cancel_series(
    unit: Unit, actor: Actor, series_id: str, reason: str, now: datetime
) -> SeriesCancelled:
    """Cancel the occurrences of a series that have not started yet."""
    premises_id = premises_of_series(unit.conn, series_id)
    recorded = record(unit, premises_id, CancelSeries(actor, series_id, reason, now))
    ids = [r.data["booking_id"] for r in recorded if r.type == "BookingCancelled"]
    return SeriesCancelled(series_id, booking_rows(unit.conn, unit.vault, ids))


def _row(unit: Unit, booking_id: str) -> BookingRow:
    (row,) = booking_rows(unit.conn, unit.vault, [booking_id])
    return row


def _events(recorded: list[RecordedEvent]) -> list[object]:
    return [r.to_event() for r in recorded]
