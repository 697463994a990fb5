"""/api/v1/organisations/{id}/membership-requests and /api/v1/membership-requests: people ask
to join an organisation, staff approve or reject (booking.memberships holds the rules)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy.engine import Connection

from booking import memberships
from booking.auth import require, signed_in
from booking.http import json_response, new_id, now, runtime, write
from booking.service import Outcome
from events.sql import read_transaction, write_transaction

blp = Blueprint("memberships", __name__, url_prefix="/api/v1", description="Joining organisations")
STAFF = ("staff", "admin")


class MembershipRequestIn(ma.Schema):
    message = fields.String(load_default="", validate=validate.Length(max=2000))


class DecisionIn(ma.Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class MembershipRequestOut(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": list(memberships.STATUSES)})
    organisation_id = fields.String()
    organisation_name = fields.String()
    user_id = fields.String()
    message = fields.String(allow_none=True, metadata={"description": "null once erased"})
    reason = fields.String(allow_none=True)
    created_at = fields.String()
    decided_at = fields.String(allow_none=True)


class MembershipRequestsOut(ma.Schema):
    membership_requests = fields.List(fields.Nested(MembershipRequestOut))


class StatusQuery(ma.Schema):
    status = fields.String(validate=validate.OneOf(memberships.STATUSES))


@blp.route("/organisations/<organisation_id>/membership-requests", methods=["POST"])
@require()
@blp.arguments(MembershipRequestIn)
@blp.response(201, MembershipRequestOut)
@blp.alt_response(404, description="No such organisation")
@blp.alt_response(409, description="Already a member, or already asking")
def ask(body: dict[str, Any], organisation_id: str) -> Response:
    """Ask to join an organisation (any signed-in person); staff decide."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        found = memberships.ask(
            conn, runtime().vault, user, organisation_id, body["message"], new_id(), now()
        )
        return Outcome(201, found, {"Location": f"/api/v1/membership-requests/{found['id']}"})

    return write(user.id, handle)


@blp.route("/membership-requests", methods=["GET"])
@require(*STAFF)
@blp.arguments(StatusQuery, location="query")
@blp.response(200, MembershipRequestsOut)
def listed(query: dict[str, Any]) -> Response:
    """Requests to join, oldest first (staff); `status` narrows them."""
    with read_transaction(runtime().engine) as conn:
        found = memberships.listed(conn, runtime().vault, query.get("status"))
    return json_response({"membership_requests": found})


def _decide(request_id: str, approve: bool, reason: str | None) -> Response:
    staff = signed_in()

    def handle(conn: Connection) -> Outcome:
        decided = memberships.decide(
            conn, runtime().vault, staff, request_id, approve, reason, now()
        )
        return Outcome(200, decided)

    return write(staff.id, handle)


@blp.route("/membership-requests/<request_id>/approve", methods=["POST"])
@require(*STAFF)
@blp.response(200, MembershipRequestOut)
@blp.alt_response(403, description="One's own request")
@blp.alt_response(409, description="Decided already")
def approve(request_id: str) -> Response:
    """Approve (staff, never the requester): the person joins; a resident becomes a booker."""
    return _decide(request_id, True, None)


@blp.route("/membership-requests/<request_id>/reject", methods=["POST"])
@require(*STAFF)
@blp.arguments(DecisionIn)
@blp.response(200, MembershipRequestOut)
@blp.alt_response(403, description="One's own request")
@blp.alt_response(409, description="Decided already")
def reject(body: dict[str, Any], request_id: str) -> Response:
    """Reject (staff, never the requester), with a reason the person sees."""
    return _decide(request_id, False, body["reason"])


@blp.route("/users/me/organisations/<organisation_id>", methods=["DELETE"])
@require()
@blp.response(204)
@blp.alt_response(404, description="Not a member through a request")
def leave(organisation_id: str) -> Response:
    """Leave an organisation one joined (a booker with none left is a resident again)."""
    user = signed_in()
    with write_transaction(runtime().engine) as conn:
        memberships.leave(conn, user, organisation_id)
    return Response(status=204)
