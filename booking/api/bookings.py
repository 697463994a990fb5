"""/api/v1/bookings and /api/v1/booking-series: place, read, list, cancel, approve, reject."""

from __future__ import annotations

import uuid
from dataclasses import fields, replace
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app
from flask_smorest import Blueprint
from sqlalchemy import bindparam, literal, or_, select
from sqlalchemy.engine import Connection

from booking import reasons
from booking.accounts import User
from booking.api import schemas
from booking.api.premises import _slot
from booking.auth import require, signed_in
from booking.domain.commands import (
    BookingRequest,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceBooking,
    PlaceSeries,
)
from booking.domain.errors import NotAllowed, NotFound
from booking.http import (
    check_changed_once,
    check_if_match,
    expected_version,
    iso,
    json_response,
    request_metadata,
    runtime,
    write,
)
from booking.i18n import reader_language
from booking.privacy import current_vault
from booking.service import (
    Outcome,
    PremisesRepository,
    premises_of_series,
    premises_stream,
    run_premises_command,
)
from events.catalog import BookingApproved, BookingCancelled, BookingPlaced, BookingRejected
from events.sql import read_transaction
from events.store import RecordedEvent, events_table
from projections.bookings import bookings_table, changed_values
from projections.catalogue import premises_table

blp = Blueprint("bookings", __name__, url_prefix="/api/v1", description="Bookings")
BOOKERS = ("booker", "staff", "admin")


def booking_json(row: Any) -> dict[str, Any]:
    zone = ZoneInfo(row.timezone)
    return {
        "id": row.id,
        "status": row.status,
        "premises_id": row.premises_id,
        "organisation_id": row.organisation_id,
        "series_id": row.series_id,
        "start": iso(row.start, zone),
        "end": iso(row.end, zone),
        "title": row.title,
        "attendees": row.attendees,
        "public": row.public,
        "notes": row.notes,
        "version": row.version,
        "created_at": iso(row.created_at, zone),
        "updated_at": iso(row.updated_at, zone),
        "late": row.late,
        **reasons.answer(row.reason, getattr(row, "reason_code", None)),
    }


def _with_zone() -> Any:
    b, p = bookings_table, premises_table
    return select(b, p.c.timezone).join(p, p.c.id == b.c.premises_id)


def notes_opened(conn: Connection, rows: Any) -> list[Any]:
    """Booking rows with their notes opened (sealed with the booker's key; None once erased)."""
    personal = current_vault().reader(conn)
    return [SimpleNamespace(**{**r._asdict(), "notes": personal.open(r.notes)}) for r in rows]


def booking_rows(conn: Connection, ids: list[str]) -> list[Any]:
    order = {booking_id: n for n, booking_id in enumerate(ids)}
    rows = conn.execute(_with_zone().where(bookings_table.c.id.in_(ids))).all()
    return sorted(notes_opened(conn, rows), key=lambda r: order[r.id])


def visible_to(user: User, row: Any) -> bool:
    if user.role in ("staff", "admin"):
        return True
    return row.booked_by == user.id or (
        user.organisation_id is not None and row.organisation_id == user.organisation_id
    )


def _request(body: dict[str, Any], user: User) -> BookingRequest:
    organisation_id = user.organisation_id
    if body.get("organisation_id") and body["organisation_id"] != user.organisation_id:
        if user.role not in ("staff", "admin"):
            raise NotAllowed("You may book only for your own organisation.")
        organisation_id = body["organisation_id"]
    return BookingRequest(  # notes are sealed in the write transaction: `_sealed`
        premises_id=body["premises_id"],
        slot=_slot(body["start"], body["end"]),
        title=body["title"].strip(),
        attendees=body["attendees"],
        public=body["public"],
        notes=body["notes"],
        organisation_id=organisation_id,
    )


def _sealed(conn: Connection, user: User, request: BookingRequest) -> BookingRequest:
    """The request with its notes (free text, may hold contact details) under the booker's
    key: the log never holds them in clear (DESIGN.md invariant 5)."""
    return replace(request, notes=runtime().vault.seal_for(conn, user.id, request.notes))


def placed_outcome(placed: BookingPlaced, zone: ZoneInfo, notes: str) -> Outcome:
    """The 201 for a booking just placed, from its event: what the booking list's new row
    holds (version 1, nothing late or rejected yet), without reading it back."""
    row = SimpleNamespace(
        **{f.name: getattr(placed, f.name) for f in fields(placed)},
        id=placed.booking_id,
        timezone=zone.key,
        version=1,
        created_at=placed.placed_at,
        updated_at=placed.placed_at,
        late=None,
        reason=None,
    )
    row.notes = notes
    return Outcome(
        201,
        booking_json(row),
        {"ETag": '"1"', "Location": f"/api/v1/bookings/{placed.booking_id}"},
    )


def placed_in(
    conn: Connection, recorded: list[RecordedEvent], repository: PremisesRepository
) -> tuple[BookingPlaced, ZoneInfo]:
    """The BookingPlaced among a command's events, and its premises' zone."""
    placed = next(e for r in recorded if isinstance(e := r.to_event(), BookingPlaced))
    zone = repository.zone(placed.premises_id)
    if zone is None:  # the cached state was dropped meanwhile
        p = premises_table
        zone = ZoneInfo(
            conn.execute(select(p.c.timezone).where(p.c.id == placed.premises_id)).scalar_one()
        )
    return placed, zone


@blp.route("/bookings", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.BookingIn)
@blp.response(201, schemas.BookingOut)
@blp.alt_response(409, description="The slot is taken (`conflicts` lists what it meets)")
@blp.alt_response(422, description="A rule is broken (`errors` names the fields)")
def place(body: dict[str, Any]) -> Response:
    """Book a premises for an organisation: `confirmed`, or `pending_approval` where the
    premises requires approval (the slot is held until staff decide)."""
    user = signed_in()
    request = _request(body, user)
    booking_id = str(uuid.uuid4())

    def handle(conn: Connection) -> Outcome:
        command = PlaceBooking(
            user.actor, booking_id, _sealed(conn, user, request), datetime.now(UTC)
        )
        repository = runtime().premises
        recorded = run_premises_command(
            conn, repository, request.premises_id, command, request_metadata(user.id)
        )
        return placed_outcome(*placed_in(conn, recorded, repository), request.notes)

    return write(user.id, handle)


@blp.route("/bookings", methods=["GET"])
@require()
@blp.arguments(schemas.BookingQuery, location="query")
@blp.response(200, schemas.BookingList)
def list_bookings(query: dict[str, Any]) -> Response:
    """Bookings a person may see: a booker its organisation's, staff all."""
    user = signed_in()
    b = bookings_table
    sql = _with_zone().order_by(b.c.start).limit(query["limit"])
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    if "from_" in query:
        sql = sql.where(b.c.end > datetime.combine(query["from_"], time(), zone))
    if "to" in query:
        sql = sql.where(b.c.start < datetime.combine(query["to"] + timedelta(days=1), time(), zone))
    if "premises_id" in query:
        sql = sql.where(b.c.premises_id == query["premises_id"])
    if "status" in query:
        sql = sql.where(b.c.status == query["status"])
    if user.role not in ("staff", "admin"):
        mine = b.c.booked_by == user.id
        if user.organisation_id:
            mine = or_(mine, b.c.organisation_id == user.organisation_id)
        sql = sql.where(mine)
    with read_transaction(runtime().engine) as conn:
        rows = notes_opened(conn, conn.execute(sql).all())
    return json_response({"bookings": [booking_json(r) for r in rows]})


@blp.route("/bookings/<booking_id>", methods=["GET"])
@require()
@blp.response(200, schemas.BookingOut)
def get_booking(booking_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        rows = booking_rows(conn, [booking_id])
    if not rows:
        raise NotFound(f"No booking {booking_id!r}.")
    if not visible_to(user, rows[0]):
        raise NotAllowed("The booking belongs to another organisation.")
    return json_response(booking_json(rows[0]), headers={"ETag": f'"{rows[0].version}"'})


# The booking with its premises' zone, and the version of the premises' stream when it was
# read (`premises_stream` in SQL): one round trip, before the command locks the premises.
_BOOKING_BEFORE = (
    _with_zone()
    .add_columns(
        select(events_table.c.version)
        .where(events_table.c.stream == literal("premises-") + bookings_table.c.premises_id)
        .order_by(events_table.c.version.desc())
        .limit(1)
        .scalar_subquery()
        .label("stream_version")
    )
    .where(bookings_table.c.id == bindparam("id"))
)
assert premises_stream("x") == "premises-x"  # what `_BOOKING_BEFORE` spells in SQL
_CHANGES = (BookingApproved, BookingRejected, BookingCancelled)


def changed_row(before: Any, recorded: list[RecordedEvent]) -> SimpleNamespace | None:
    """The booking's row after `recorded`, from the row read before the command: what the
    bookings projection makes of it (`changed_values`, one version per change). None when
    the command was not decided on the stream version the row was read at (another command
    of the premises came between, and may have changed the booking too)."""
    if not recorded or recorded[0].version - 1 != before.stream_version:
        return None
    row = SimpleNamespace(**before._asdict())
    for event in (r.to_event() for r in recorded):
        if isinstance(event, _CHANGES) and event.booking_id == row.id:
            for name, value in changed_values(event).items():
                setattr(row, name, value)
            row.version += 1
    return row


def _booking_command(booking_id: str, make: Any, if_match: int | None = None) -> Response:
    """Run a command on one booking; `if_match` is checked here for the commands whose
    domain decision takes no version (approve, reject)."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        before = conn.execute(_BOOKING_BEFORE, {"id": booking_id}).first()
        if before is None:
            raise NotFound(f"No booking {booking_id!r}.")
        check_if_match(if_match, before.version)
        command = make(user, datetime.now(UTC))
        recorded = run_premises_command(
            conn, runtime().premises, before.premises_id, command, request_metadata(user.id)
        )
        row = changed_row(before, recorded)
        if row is None:
            (row,) = booking_rows(conn, [booking_id])
        else:
            row.notes = current_vault().reader(conn).open(row.notes)
        check_changed_once(if_match, row.version)
        return Outcome(200, booking_json(row), {"ETag": f'"{row.version}"'})

    return write(user.id, handle)


@blp.route("/bookings/<booking_id>/cancel", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.BookingOut)
@blp.alt_response(403, description="Another organisation's booking")
@blp.alt_response(409, description="Already cancelled, rejected or over")
@blp.alt_response(412, description="If-Match names an old version")
def cancel(body: dict[str, Any], booking_id: str) -> Response:
    """Cancel; `late` is true after the premises' cancellation deadline."""
    version = expected_version()
    return _booking_command(
        booking_id,
        lambda user, now: CancelBooking(user.actor, booking_id, body["reason"], now, version),
    )


@blp.route("/bookings/<booking_id>/approve", methods=["POST"])
@require("staff", "admin")
@blp.response(200, schemas.BookingOut)
@blp.alt_response(412, description="If-Match names an old version")
def approve(booking_id: str) -> Response:
    return _booking_command(
        booking_id,
        lambda user, now: DecideBooking(user.actor, booking_id, True, "", now),
        expected_version(),
    )


@blp.route("/bookings/<booking_id>/reject", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.BookingOut)
@blp.alt_response(412, description="If-Match names an old version")
def reject(body: dict[str, Any], booking_id: str) -> Response:
    return _booking_command(
        booking_id,
        lambda user, now: DecideBooking(user.actor, booking_id, False, body["reason"], now),
        expected_version(),
    )


@blp.route("/booking-series", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.SeriesIn)
@blp.response(201, schemas.SeriesOut)
@blp.alt_response(409, description='`on_conflict: "fail"` and an occurrence is taken (`conflicts`)')
@blp.alt_response(422, description="A rule is broken (`errors` names the fields)")
def place_series(body: dict[str, Any]) -> Response:
    """Book every occurrence of an RRULE (local wall-clock time kept across DST).
    `on_conflict: "fail"` books nothing if any occurrence fails; `"skip"` books the rest."""
    user = signed_in()
    request = _request(body, user)
    series_id = str(uuid.uuid4())

    def handle(conn: Connection) -> Outcome:
        command = PlaceSeries(
            user.actor,
            series_id,
            _sealed(conn, user, request),
            body["rrule"],
            body["on_conflict"],
            datetime.now(UTC),
        )
        recorded = run_premises_command(
            conn, runtime().premises, request.premises_id, command, request_metadata(user.id)
        )
        header = recorded[0].data
        ids = [r.data["booking_id"] for r in recorded if r.type == "BookingPlaced"]
        rows = booking_rows(conn, ids)
        zone = ZoneInfo(rows[0].timezone)
        return Outcome(
            201,
            {
                "series_id": series_id,
                "bookings": [booking_json(r) for r in rows],
                "skipped": [_in_zone(s, zone) for s in header["skipped"]],
            },
        )

    return write(user.id, handle)


def _in_zone(skipped: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A skipped occurrence with its instants in local time, like the bookings beside it."""
    return {
        **skipped,
        "start": iso(datetime.fromisoformat(skipped["start"]), zone),
        "end": iso(datetime.fromisoformat(skipped["end"]), zone),
        # The domain's refusal as a sentence in the reader's language (the token owner's).
        "reason_text": reasons.skipped_reason(str(skipped["reason"]), reader_language()),
    }


@blp.route("/booking-series/<series_id>/cancel", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.SeriesOut)
def cancel_series(body: dict[str, Any], series_id: str) -> Response:
    """Cancel the occurrences that have not started yet."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        premises_id = premises_of_series(conn, series_id)
        command = CancelSeries(user.actor, series_id, body["reason"], datetime.now(UTC))
        recorded = run_premises_command(
            conn, runtime().premises, premises_id, command, request_metadata(user.id)
        )
        ids = [r.data["booking_id"] for r in recorded if r.type == "BookingCancelled"]
        return Outcome(
            200,
            {
                "series_id": series_id,
                "bookings": [booking_json(r) for r in booking_rows(conn, ids)],
                "skipped": [],
            },
        )

    return write(user.id, handle)
