"""/api/v1/bookings and /api/v1/booking-series: place, read, list, cancel, approve, reject.

Each view translates HTTP to a use-case handler (booking.usecases.bookings) and its result
back; reads go through booking.queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app
from marshmallow import validate
from sqlalchemy.engine import Connection

from booking import reasons
from booking.api import schemas
from booking.api.blueprint import Blueprint
from booking.api.paging import AFTER_DOC, LINK_HEADER, next_field, page_headers, page_request
from booking.auth import require, signed_in, signed_in_strongly
from booking.http import (
    expected_version,
    iso,
    json_body,
    json_response,
    new_id,
    now,
    runtime,
    unit_for,
    write,
)
from booking.i18n import reader_language
from booking.queries.bookings import BookingFilter, BookingRow, visible_booking
from booking.queries.bookings import list_bookings as bookings_page
from booking.service import Outcome
from booking.usecases import bookings as cases
from events.sql import read_transaction

blp = Blueprint("bookings", __name__, url_prefix="/api/v1", description="Bookings")
BOOKERS = ("booker", "staff", "admin")


class BookingPageQuery(schemas.BookingQuery):
    after = schemas.Text(validate=validate.Length(1, 500), metadata={"description": AFTER_DOC})


class BookingPage(schemas.BookingList):
    next = next_field()


def booking_json(row: BookingRow) -> dict[str, Any]:
    zone = row.zone
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
        **reasons.answer(row.reason, row.reason_code),
    }


def stated(body: dict[str, Any], name: str) -> datetime:
    """The instant `name` in the offset the client wrote it in (the schema's value is in
    UTC): a local time that does not exist is told apart by its offset."""
    raw = (json_body() or {}).get(name)
    try:
        written = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        written = None
    value: datetime = body[name]
    return written if written is not None and written == value else value


def booking_input(body: dict[str, Any]) -> cases.BookingInput:
    return cases.BookingInput(
        premises_id=body["premises_id"],
        start=stated(body, "start"),
        end=stated(body, "end"),
        title=body["title"],
        attendees=body["attendees"],
        public=body["public"],
        notes=body["notes"],
        organisation_id=body.get("organisation_id") or None,
    )


def _changed(changed: cases.Changed) -> Outcome:
    row = changed.booking
    return Outcome(200, booking_json(row), {"ETag": f'"{row.version}"'})


@blp.route("/bookings", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.BookingIn)
@blp.response(201, schemas.BookingOut)
@blp.alt_response(409, description="The slot is taken (`conflicts` lists what it meets)")
@blp.alt_response(422, description="A rule is broken (`errors` names the fields)")
def place(body: dict[str, Any]) -> Response:
    """Book a premises for an organisation: `confirmed`, or `pending_approval` where the
    premises requires approval (the slot is held until staff decide). A local time that
    does not exist (the hour skipped when clocks spring forward, written in the premises'
    standard offset) is refused with 422 naming the field."""
    user = signed_in()
    given, booking_id = booking_input(body), new_id()

    def handle(conn: Connection) -> Outcome:
        placed = cases.place_booking(
            unit_for(conn, user.id), user.actor, given, booking_id, now(), signed_in_strongly()
        )
        return Outcome(
            201,
            booking_json(placed.booking),
            {"ETag": '"1"', "Location": f"/api/v1/bookings/{booking_id}"},
        )

    return write(user.id, handle)


@blp.route("/bookings", methods=["GET"])
@require()
@blp.arguments(BookingPageQuery, location="query")
@blp.response(200, BookingPage, headers=LINK_HEADER)
def list_bookings(query: dict[str, Any]) -> Response:
    """Bookings a person may see: a booker its organisation's, staff all. Paged by start:
    `limit` rows (default 500) after the cursor `after`; `next` and the `Link` header
    lead to the next page."""
    user = signed_in()
    wanted = BookingFilter(
        query.get("from_"), query.get("to"), query.get("premises_id"), query.get("status")
    )
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    page = page_request(query)
    rt = runtime()
    with read_transaction(rt.engine) as conn:
        found = bookings_page(conn, rt.vault, user.actor, wanted, zone, page)
    return json_response(
        {"bookings": [booking_json(r) for r in found.rows], "next": found.next},
        headers=page_headers(found),
    )


@blp.route("/bookings/<booking_id>", methods=["GET"])
@require()
@blp.response(200, schemas.BookingOut)
def get_booking(booking_id: str) -> Response:
    user = signed_in()
    rt = runtime()
    with read_transaction(rt.engine) as conn:
        row = visible_booking(conn, rt.vault, user.actor, booking_id)
    return json_response(booking_json(row), headers={"ETag": f'"{row.version}"'})


@blp.route("/bookings/<booking_id>/cancel", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.BookingOut)
@blp.alt_response(403, description="Another organisation's booking")
@blp.alt_response(409, description="Already cancelled, rejected or over")
@blp.alt_response(412, description="If-Match names an old version")
def cancel(body: dict[str, Any], booking_id: str) -> Response:
    """Cancel; `late` is true after the premises' cancellation deadline."""
    user, version = signed_in(), expected_version()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        return _changed(
            cases.cancel_booking(unit, user.actor, booking_id, body["reason"], now(), version)
        )

    return write(user.id, handle)


@blp.route("/bookings/<booking_id>/approve", methods=["POST"])
@require("staff", "admin")
@blp.response(200, schemas.BookingOut)
@blp.alt_response(412, description="If-Match names an old version")
def approve(booking_id: str) -> Response:
    user, version = signed_in(), expected_version()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        return _changed(cases.approve_booking(unit, user.actor, booking_id, now(), version))

    return write(user.id, handle)


@blp.route("/bookings/<booking_id>/reject", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.BookingOut)
@blp.alt_response(412, description="If-Match names an old version")
def reject(body: dict[str, Any], booking_id: str) -> Response:
    user, version = signed_in(), expected_version()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        return _changed(
            cases.reject_booking(unit, user.actor, booking_id, body["reason"], now(), version)
        )

    return write(user.id, handle)


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
    given, series_id = booking_input(body), new_id()

    def handle(conn: Connection) -> Outcome:
        placed = cases.place_series(
            unit_for(conn, user.id),
            user.actor,
            given,
            body["rrule"],
            body["on_conflict"],
            series_id,
            now(),
            signed_in_strongly(),
        )
        zone = placed.bookings[0].zone
        skipped = [
            {
                "start": iso(s.start, zone),
                "end": iso(s.end, zone),
                "reason": s.reason,
                # The domain's refusal as a sentence in the reader's language (token owner's).
                "reason_text": reasons.skipped_reason(s.reason, reader_language()),
            }
            for s in placed.skipped
        ]
        return Outcome(
            201,
            {
                "series_id": series_id,
                "bookings": [booking_json(r) for r in placed.bookings],
                "skipped": skipped,
            },
        )

    return write(user.id, handle)


@blp.route("/booking-series/<series_id>/cancel", methods=["POST"])
@require(*BOOKERS)
@blp.arguments(schemas.ReasonIn)
@blp.response(200, schemas.SeriesOut)
def cancel_series(body: dict[str, Any], series_id: str) -> Response:
    """Cancel the occurrences that have not started yet."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        done = cases.cancel_series(unit, user.actor, series_id, body["reason"], now())
        return Outcome(
            200,
            {
                "series_id": series_id,
                "bookings": [booking_json(r) for r in done.bookings],
                "skipped": [],
            },
        )

    return write(user.id, handle)
