"""/api/v1/popup-requests: short slots at short notice for any signed-in person."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking import reasons
from booking.accounts import User
from booking.api.premises import _slot
from booking.api.schemas import ReasonIn, instant
from booking.auth import require, signed_in
from booking.domain.errors import NotAllowed, NotFound
from booking.domain.popups import DecidePopup, RequestPopup, WithdrawPopup
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
from booking.privacy import PersonalData
from booking.service import Outcome, run_premises_command
from events.sql import read_transaction
from projections.catalogue import premises_table
from projections.popups import popups_table

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


class PopupQuery(ma.Schema):
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
        **reasons.answer(row.reason, getattr(row, "reason_code", None)),
        "requested_by": row.requested_by,
        "version": row.version,
        "created_at": iso(row.created_at, zone),
    }


def _rows() -> Any:
    p, c = popups_table, premises_table
    return select(p, c.c.timezone).join(c, c.c.id == p.c.premises_id)


def popup_row(conn: Connection, request_id: str) -> Any:
    row = conn.execute(_rows().where(popups_table.c.id == request_id)).first()
    if row is None:
        raise NotFound(f"No pop-up request {request_id!r}.")
    return row


def visible_to(user: User, row: Any) -> bool:
    return user.role in ("staff", "admin") or row.requested_by == user.id


@blp.route("/popup-requests", methods=["POST"])
@require()
@blp.arguments(PopupIn)
@blp.response(201, PopupOut)
@blp.alt_response(409, description="The slot is taken (`conflicts`)")
@blp.alt_response(422, description="Not allowed here, too long, too far ahead…")
def request_popup(body: dict[str, Any]) -> Response:
    """Ask for a short slot. Pending requests hold their slot until decided or expired."""
    user = signed_in()
    slot = _slot(body["start"], body["end"])
    request_id, booking_id = str(uuid.uuid4()), str(uuid.uuid4())
    rt = runtime()

    def handle(conn: Connection) -> Outcome:
        rt.vault.ensure_key(conn, user.id)
        personal = rt.vault.reader(conn)
        description = body["description"]
        sealed = personal.seal(user.id, description) if description else ""
        command = RequestPopup(
            user.actor,
            request_id,
            booking_id,
            body["premises_id"],
            slot,
            body["title"].strip(),
            sealed,
            body["expected_attendees"],
            datetime.now(UTC),
        )
        run_premises_command(
            conn, rt.premises, body["premises_id"], command, request_metadata(user.id)
        )
        return Outcome(
            201,
            popup_json(popup_row(conn, request_id), personal),
            {"Location": f"/api/v1/popup-requests/{request_id}"},
        )

    return write(user.id, handle)


@blp.route("/popup-requests", methods=["GET"])
@require()
@blp.arguments(PopupQuery, location="query")
@blp.response(200, PopupList)
def list_popups(query: dict[str, Any]) -> Response:
    """Staff see every request; others see their own."""
    user = signed_in()
    p = popups_table
    sql = _rows().order_by(p.c.decision_deadline)
    if "status" in query:
        sql = sql.where(p.c.status == query["status"])
    if "premises_id" in query:
        sql = sql.where(p.c.premises_id == query["premises_id"])
    if user.role not in ("staff", "admin"):
        sql = sql.where(p.c.requested_by == user.id)
    with read_transaction(runtime().engine) as conn:
        personal = runtime().vault.reader(conn)
        found = [popup_json(r, personal) for r in conn.execute(sql.limit(1000))]
    return json_response({"popup_requests": found})


@blp.route("/popup-requests/<request_id>", methods=["GET"])
@require()
@blp.response(200, PopupOut)
def get_popup(request_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        row = popup_row(conn, request_id)
        if not visible_to(user, row):
            raise NotAllowed("The request is someone else's.")
        return json_response(popup_json(row, runtime().vault.reader(conn)))


def _popup_command(request_id: str, make: Any) -> Response:
    """Decide or withdraw a request; If-Match is checked here, as the domain's decision takes
    no version (someone else's request is refused by the domain first: 403, not 412)."""
    user = signed_in()
    rt = runtime()
    version = expected_version()

    def handle(conn: Connection) -> Outcome:
        row = popup_row(conn, request_id)
        if visible_to(user, row):
            check_if_match(version, row.version)
        command = make(user, datetime.now(UTC))
        run_premises_command(conn, rt.premises, row.premises_id, command, request_metadata(user.id))
        after = popup_row(conn, request_id)
        check_changed_once(version, after.version)
        return Outcome(200, popup_json(after, rt.vault.reader(conn)))

    return write(user.id, handle)


@blp.route("/popup-requests/<request_id>/approve", methods=["POST"])
@require("staff", "admin")
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def approve_popup(request_id: str) -> Response:
    """Approve (staff): a booking is placed for the slot in the same step."""
    booking_id = str(uuid.uuid4())
    return _popup_command(
        request_id,
        lambda user, now: DecidePopup(user.actor, request_id, True, booking_id, "", now),
    )


@blp.route("/popup-requests/<request_id>/reject", methods=["POST"])
@require("staff", "admin")
@blp.arguments(ReasonIn)
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def reject_popup(body: dict[str, Any], request_id: str) -> Response:
    return _popup_command(
        request_id,
        lambda user, now: DecidePopup(user.actor, request_id, False, "", body["reason"], now),
    )


@blp.route("/popup-requests/<request_id>/withdraw", methods=["POST"])
@require()
@blp.response(200, PopupOut)
@blp.alt_response(412, description="If-Match names an old version")
def withdraw_popup(request_id: str) -> Response:
    """Withdraw (the requester): a pending request lets its slot go; an approved one also
    cancels its booking."""
    return _popup_command(request_id, lambda user, now: WithdrawPopup(user.actor, request_id, now))
