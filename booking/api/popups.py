"""/api/v1/popup-requests: short slots at short notice for any signed-in person.

Each view translates HTTP to a use-case handler (booking.usecases.popups) and its result
back; reads go through booking.queries.popups.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate
from sqlalchemy.engine import Connection

from booking import reasons
from booking.api.blueprint import Blueprint
from booking.api.bookings import stated
from booking.api.paging import LINK_HEADER, PageQuery, next_field, page_headers, page_request
from booking.api.schemas import ReasonIn, instant
from booking.auth import require, signed_in, signed_in_strongly
from booking.http import (
    expected_version,
    iso,
    json_response,
    new_id,
    now,
    runtime,
    unit_for,
    write,
)
from booking.privacy import PersonalData
from booking.queries.popups import PopupFilter, visible_popup
from booking.queries.popups import list_popups as popups_page
from booking.service import Outcome
from booking.usecases import popups as cases
from booking.usecases.popups import PopupInput, PopupResult
from events.sql import read_transaction

blp = Blueprint("popups", __name__, url_prefix="/api/v1", description="Pop-up requests")
STATUSES = ("pending", "approved", "rejected", "withdrawn", "expired")


class PopupIn(ma.Schema):
    premises_id = fields.String(required=True, validate=validate.Length(1, 100))
    start = instant(required=True)
    end = instant(required=True)
    title = fields.String(required=True, validate=validate.Length(1, 300))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    expected_attendees = fields.Integer(
        strict=True, load_default=1, validate=validate.Range(1, 100_000)
    )


class PopupOut(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    premises_id = fields.String()
    start = fields.String()
    end = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True, metadata={"description": "null once erased"})
    expected_attendees = fields.Integer()
    decision_deadline = fields.String()
    booking_id = fields.String(allow_none=True)
    reason = fields.String(
        allow_none=True,
        metadata={"description": "the canceller's or decider's own words; null when never given"},
    )
    reason_code = fields.String(
        allow_none=True,
        metadata={
            "description": "why the system cancelled or turned it down, as a code; null when "
            "a person did it with their own words",
            "enum": ["premises_closed", "popup_withdrawn", "premises_retired", None],
        },
    )
    reason_text = fields.String(
        allow_none=True,
        metadata={
            "description": "the whole reason as a sentence in the reader's language (the "
            "token owner's, else Accept-Language: fi, sv, en)"
        },
    )
    requested_by = fields.String()
    version = fields.Integer()
    created_at = fields.String()


class PopupList(ma.Schema):
    popup_requests = fields.List(fields.Nested(PopupOut))
    next = next_field()


class PopupQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    premises_id = fields.String()


def popup_json(row: Any, personal: PersonalData) -> dict[str, Any]:
    zone = ZoneInfo(row.timezone)
    return {
        "id": row.id,
        "status": row.status,
        "premises_id": row.premises_id,
        "start": iso(row.start, zone),
        "end": iso(row.end, zone),
        "title": row.title,
        "description": personal.open(row.description),
        "expected_attendees": row.expected_attendees,
        "decision_deadline": iso(row.decision_deadline, zone),
        "booking_id": row.booking_id,
        **reasons.answer(row.reason, row.reason_code),
        "requested_by": row.requested_by,
        "version": row.version,
        "created_at": iso(row.created_at, zone),
    }


def _input(body: dict[str, Any]) -> PopupInput:
    return PopupInput(
        premises_id=body["premises_id"],
        start=stated(body, "start"),
        end=stated(body, "end"),
        title=body["title"],
        description=body["description"],
        expected_attendees=body["expected_attendees"],
    )


def _answer(result: PopupResult, conn: Connection, status: int = 200) -> Outcome:
    row = result.row
    headers = {"Location": f"/api/v1/popup-requests/{row.id}"} if status == 201 else {}
    return Outcome(status, popup_json(row, runtime().vault.reader(conn)), headers)


@blp.route("/popup-requests", methods=["POST"])
@require()
@blp.arguments(PopupIn)
@blp.response(201, PopupOut)
@blp.alt_response(409, description="The slot is taken (`conflicts`)")
@blp.alt_response(422, description="Not allowed here, too long, too far ahead…")
def request_popup(body: dict[str, Any]) -> Response:
    """Ask for a short slot. Pending requests hold their slot until decided or expired. A
    local time that does not exist (the hour skipped in spring) is refused with 422."""
    user = signed_in()
    given, request_id, booking_id = _input(body), new_id(), new_id()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        found = cases.request_popup(
            unit, user.actor, given, request_id, booking_id, now(), signed_in_strongly()
        )
        return _answer(found, conn, 201)

    return write(user.id, handle)


@blp.route("/popup-requests", methods=["GET"])
@require()
@blp.arguments(PopupQuery, location="query")
@blp.response(200, PopupList, headers=LINK_HEADER)
def list_popups(query: dict[str, Any]) -> Response:
    """Staff see every request; others see their own. Paged by decision deadline: `limit`
    rows (default 100) after the cursor `after`; `next` and the `Link` header lead on."""
    user = signed_in()
    wanted = PopupFilter(query.get("status"), query.get("premises_id"))
    with read_transaction(runtime().engine) as conn:
        found = popups_page(conn, user.actor, wanted, page_request(query))
        personal = runtime().vault.reader(conn)
        rows = [popup_json(r, personal) for r in found.rows]
    return json_response({"popup_requests": rows, "next": found.next}, headers=page_headers(found))


@blp.route("/popup-requests/<request_id>", methods=["GET"])
@require()
@blp.response(200, PopupOut)
def get_popup(request_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        row = visible_popup(conn, user.actor, request_id)
        return json_response(popup_json(row, runtime().vault.reader(conn)))


@blp.route("/popup-requests/<request_id>/approve", methods=["POST"])
@require("staff", "admin")
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def approve_popup(request_id: str) -> Response:
    """Approve (staff): a booking is placed for the slot in the same step."""
    user, version, booking_id = signed_in(), expected_version(), new_id()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        decided = cases.decide_popup(
            unit, user.actor, request_id, True, "", booking_id, now(), version
        )
        return _answer(decided, conn)

    return write(user.id, handle)


@blp.route("/popup-requests/<request_id>/reject", methods=["POST"])
@require("staff", "admin")
@blp.arguments(ReasonIn)
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def reject_popup(body: dict[str, Any], request_id: str) -> Response:
    user, version = signed_in(), expected_version()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        decided = cases.decide_popup(
            unit, user.actor, request_id, False, body["reason"], "", now(), version
        )
        return _answer(decided, conn)

    return write(user.id, handle)


@blp.route("/popup-requests/<request_id>/withdraw", methods=["POST"])
@require()
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def withdraw_popup(request_id: str) -> Response:
    """Withdraw (the requester): a pending request lets its slot go; an approved one also
    cancels its booking."""
    user, version = signed_in(), expected_version()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        return _answer(cases.withdraw_popup(unit, user.actor, request_id, now(), version), conn)

    return write(user.id, handle)
