"""/api/v1/organisations/{id}/membership-requests and /api/v1/membership-requests: people ask
to join an organisation; staff, and the organisation's contact person where staff named one
(`PUT /api/v1/organisations/{id}/contact`), approve or reject (booking.memberships holds the
rules). Staff retire an organisation (`POST /api/v1/organisations/{id}/retire`): it takes no
new members."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking import memberships
from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER, PageQuery, next_field, page_headers, page_request
from booking.auth import require, signed_in
from booking.domain.errors import NotAllowed
from booking.http import (
    expected_version,
    json_response,
    new_id,
    now,
    request_metadata,
    runtime,
    write,
    write_no_content,
)
from booking.queries.memberships import membership_request_page
from booking.service import Outcome
from booking.tables import organisations
from booking.usecases import accounts as handlers
from events.sql import read_transaction

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
    version = fields.Integer(
        metadata={"description": "1 while pending, 2 once decided; send it as If-Match"}
    )


class MembershipRequestsOut(ma.Schema):
    membership_requests = fields.List(fields.Nested(MembershipRequestOut))
    next = next_field()


class StatusQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(memberships.STATUSES))


class ContactIn(ma.Schema):
    user_id = fields.String(
        required=True,
        allow_none=True,
        validate=validate.Length(1, 64),
        metadata={"description": "a member of the organisation; null: no contact person"},
    )


class OrganisationStateOut(ma.Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String()
    business_id = fields.String(allow_none=True)
    contact_user_id = fields.String(
        allow_none=True,
        metadata={"description": "who decides its membership requests beside staff"},
    )
    retired_at = fields.String(allow_none=True, metadata={"description": "UTC; null: in use"})


@blp.route("/organisations/<organisation_id>/membership-requests", methods=["POST"])
@require()
@blp.arguments(MembershipRequestIn)
@blp.response(201, MembershipRequestOut)
@blp.alt_response(404, description="No such organisation")
@blp.alt_response(409, description="Retired, already a member, or already asking")
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
@require()
@blp.arguments(StatusQuery, location="query")
@blp.response(200, MembershipRequestsOut, headers=LINK_HEADER)
@blp.alt_response(403, description="Neither staff nor an organisation's contact person")
def listed(query: dict[str, Any]) -> Response:
    """Requests to join, oldest first: staff see all, an organisation's contact person
    those of their organisations; `status` narrows them. Paged: `limit` rows (default 100)
    after the cursor `after`; `next` and the `Link` header lead on, null on the last page."""
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        mine = None if user.role in STAFF else memberships.contact_of(conn, user.id)
        if mine == []:
            raise NotAllowed("Staff and organisations' contact persons see requests to join.")
        found = membership_request_page(
            conn, runtime().vault, page_request(query), query.get("status"), mine
        )
    return json_response(
        {"membership_requests": found.rows, "next": found.next}, headers=page_headers(found)
    )


def _decide(request_id: str, approve: bool, reason: str | None) -> Response:
    staff = signed_in()
    version = expected_version()

    def handle(conn: Connection) -> Outcome:
        decided = memberships.decide(
            conn, runtime().vault, staff, request_id, approve, reason, now(), version
        )
        return Outcome(200, decided, {"ETag": f'"{decided["version"]}"'})

    return write(staff.id, handle)


@blp.route("/membership-requests/<request_id>/approve", methods=["POST"])
@require()
@blp.response(200, MembershipRequestOut)
@blp.alt_response(403, description="One's own request; neither staff nor the contact person")
@blp.alt_response(409, description="Decided already; the organisation is retired")
@blp.alt_response(412, description="If-Match names an old version")
def approve(request_id: str) -> Response:
    """Approve (staff or the organisation's contact person, never the requester): the person
    joins; a resident becomes a booker."""
    return _decide(request_id, True, None)


@blp.route("/membership-requests/<request_id>/reject", methods=["POST"])
@require()
@blp.arguments(DecisionIn)
@blp.response(200, MembershipRequestOut)
@blp.alt_response(403, description="One's own request; neither staff nor the contact person")
@blp.alt_response(409, description="Decided already")
@blp.alt_response(412, description="If-Match names an old version")
def reject(body: dict[str, Any], request_id: str) -> Response:
    """Reject (staff or the organisation's contact person, never the requester), with a
    reason the person sees."""
    return _decide(request_id, False, body["reason"])


@blp.route("/users/me/organisations/<organisation_id>", methods=["DELETE"])
@require()
@blp.response(204)
@blp.alt_response(404, description="Not a member through a request")
def leave(organisation_id: str) -> Response:
    """Leave an organisation one joined (a booker with none left is a resident again)."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        memberships.leave(conn, user, organisation_id)
        return Outcome(204, {})

    return write_no_content(user.id, handle)


# --- an organisation's contact person and retirement (staff) ---------------------------------


def organisation_json(conn: Connection, organisation_id: str) -> dict[str, Any]:
    row = conn.execute(select(organisations).where(organisations.c.id == organisation_id)).one()
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "business_id": row.business_id,
        "contact_user_id": row.contact_user_id,
        "retired_at": row.retired_at.isoformat().replace("+00:00", "Z") if row.retired_at else None,
    }


@blp.route("/organisations/<organisation_id>/contact", methods=["PUT"])
@require(*STAFF)
@blp.arguments(ContactIn)
@blp.response(200, OrganisationStateOut)
@blp.alt_response(404, description="No such organisation")
@blp.alt_response(409, description="The organisation is retired")
@blp.alt_response(422, description="The person is not a member of the organisation")
def name_contact(body: dict[str, Any], organisation_id: str) -> Response:
    """Name the organisation's contact person (staff): a member, who may then list and decide
    the organisation's membership requests (never their own); `user_id: null` names none."""
    staff = signed_in()
    at = now()

    def handle(conn: Connection) -> Outcome:
        handlers.name_contact(
            conn, staff.actor, organisation_id, body["user_id"], at, request_metadata(staff.id)
        )
        return Outcome(200, organisation_json(conn, organisation_id))

    return write(staff.id, handle)


@blp.route("/organisations/<organisation_id>/retire", methods=["POST"])
@require(*STAFF)
@blp.response(200, OrganisationStateOut)
@blp.alt_response(404, description="No such organisation")
def retire(organisation_id: str) -> Response:
    """Retire an organisation (staff): no one may ask to join it or be let in any more (409);
    its members and bookings stay. Retiring again answers the same."""
    staff = signed_in()
    at = now()

    def handle(conn: Connection) -> Outcome:
        handlers.retire_organisation(
            conn, staff.actor, organisation_id, at, request_metadata(staff.id)
        )
        return Outcome(200, organisation_json(conn, organisation_id))

    return write(staff.id, handle)
