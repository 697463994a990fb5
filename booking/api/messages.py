"""/api/v1/{bookings|popup-requests}/{id}/messages: the two-way channel with staff.

A thread is readable by staff and by the booking's organisation (or booker) or the
pop-up's requester; no one else (booking.queries.access). Each message is an event on the
thread's own stream; its body is sealed with the author's key. Posting is the use case
booking.usecases.messages.post_message; the lists are paged (`limit`, `after`, `next`).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate
from sqlalchemy.engine import Connection

from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER, PageQuery, next_field, page_headers, page_request
from booking.auth import require, signed_in
from booking.http import iso, json_response, new_id, now, runtime, unit_for, write
from booking.privacy import PersonalData
from booking.queries.messages import messages, open_thread
from booking.service import Outcome
from booking.usecases.messages import post_message
from events.sql import read_transaction

blp = Blueprint("messages", __name__, url_prefix="/api/v1", description="Message threads")


class MessageIn(ma.Schema):
    body = fields.String(required=True, validate=validate.Length(1, 5000))


class MessageOut(ma.Schema):
    id = fields.String()
    author_id = fields.String()
    author_role = fields.String()
    body = fields.String(allow_none=True, metadata={"description": "null once erased"})
    created_at = fields.String()


class MessageList(ma.Schema):
    messages = fields.List(fields.Nested(MessageOut))
    next = next_field()


def message_json(row: Any, personal: PersonalData) -> dict[str, Any]:
    return {
        "id": row.id,
        "author_id": row.author_id,
        "author_role": row.author_role,
        "body": personal.open(row.body),
        "created_at": iso(row.posted_at),
    }


def _list(kind: str, thread_id: str, query: dict[str, Any]) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        thread = open_thread(conn, user.actor, kind, thread_id)
        found = messages(conn, thread, page_request(query))
        personal = runtime().vault.reader(conn)
        body = {"messages": [message_json(r, personal) for r in found.rows], "next": found.next}
    return json_response(body, headers=page_headers(found))


def _post(kind: str, thread_id: str, body: dict[str, Any]) -> Response:
    user = signed_in()
    message_id = new_id()

    def handle(conn: Connection) -> Outcome:
        unit = unit_for(conn, user.id)
        posted = post_message(unit, user.actor, kind, thread_id, body["body"], message_id, now())
        return Outcome(201, message_json(posted.row, runtime().vault.reader(conn)))

    return write(user.id, handle)


@blp.route("/bookings/<booking_id>/messages", methods=["GET"])
@require()
@blp.arguments(PageQuery, location="query")
@blp.response(200, MessageList, headers=LINK_HEADER)
def booking_messages(query: dict[str, Any], booking_id: str) -> Response:
    """The booking's thread, oldest first, paged (`limit` default 100)."""
    return _list("booking", booking_id, query)


@blp.route("/bookings/<booking_id>/messages", methods=["POST"])
@require()
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
def post_booking_message(body: dict[str, Any], booking_id: str) -> Response:
    return _post("booking", booking_id, body)


@blp.route("/popup-requests/<request_id>/messages", methods=["GET"])
@require()
@blp.arguments(PageQuery, location="query")
@blp.response(200, MessageList, headers=LINK_HEADER)
def popup_messages(query: dict[str, Any], request_id: str) -> Response:
    """The request's thread, oldest first, paged (`limit` default 100)."""
    return _list("popup", request_id, query)


@blp.route("/popup-requests/<request_id>/messages", methods=["POST"])
@require()
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
def post_popup_message(body: dict[str, Any], request_id: str) -> Response:
    return _post("popup", request_id, body)
