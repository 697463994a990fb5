"""/api/v1/{bookings|popup-requests}/{id}/messages: the two-way channel with staff.

A thread is readable by staff and by the booking's organisation (or booker) or the
pop-up's requester; no one else. Each message is an event on the thread's own stream; its
body is sealed with the author's key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.accounts import User
from booking.api import bookings as bookings_api
from booking.api import popups as popups_api
from booking.auth import require, signed_in
from booking.domain.errors import NotAllowed, NotFound, RuleBroken
from booking.http import iso, json_response, request_metadata, runtime, write
from booking.notifications import notify
from booking.privacy import PersonalData
from booking.service import Outcome
from events.catalog import MessagePosted
from events.sql import read_transaction
from events.store import append, stream_version
from projections.bookings import bookings_table
from projections.messages import messages_table
from projections.runner import project_inline

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


def _check_access(conn: Connection, user: User, kind: str, thread_id: str) -> None:
    if kind == "booking":
        row = conn.execute(select(bookings_table).where(bookings_table.c.id == thread_id)).first()
        if row is None:
            raise NotFound(f"No booking {thread_id!r}.")
        allowed = bookings_api.visible_to(user, row)
    else:
        allowed = popups_api.visible_to(user, popups_api.popup_row(conn, thread_id))
    if not allowed:
        raise NotAllowed("Only the booker's side and staff read this thread.")


def message_json(row: Any, personal: PersonalData) -> dict[str, Any]:
    return {
        "id": row.id,
        "author_id": row.author_id,
        "author_role": row.author_role,
        "body": personal.open(row.body),
        "created_at": iso(row.posted_at),
    }


def _list(kind: str, thread_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        _check_access(conn, user, kind, thread_id)
        m = messages_table
        rows = conn.execute(
            select(m)
            .where(m.c.thread_kind == kind, m.c.thread_id == thread_id)
            .order_by(m.c.posted_at, m.c.id)
        )
        personal = runtime().vault.reader(conn)
        return json_response({"messages": [message_json(r, personal) for r in rows]})


def _post(kind: str, thread_id: str, body: dict[str, Any]) -> Response:
    user = signed_in()
    text = body["body"].strip()
    if not text:
        raise RuleBroken({"body": ["Write a message."]})
    rt = runtime()
    message_id = str(uuid.uuid4())

    def handle(conn: Connection) -> Outcome:
        _check_access(conn, user, kind, thread_id)
        rt.vault.ensure_key(conn, user.id)
        personal = rt.vault.reader(conn)
        now = datetime.now(UTC)
        event = MessagePosted(
            kind, thread_id, message_id, user.id, user.role, personal.seal(user.id, text), now
        )
        stream = f"thread-{kind}-{thread_id}"
        recorded = append(
            conn, stream, [event], stream_version(conn, stream), request_metadata(user.id), now=now
        )
        project_inline(conn, [(event, recorded[0])])
        notify(conn, [(event, recorded[0])], now)
        row = conn.execute(select(messages_table).where(messages_table.c.id == message_id)).one()
        return Outcome(201, message_json(row, personal))

    return write(user.id, handle)


@blp.route("/bookings/<booking_id>/messages", methods=["GET"])
@require()
@blp.response(200, MessageList)
def booking_messages(booking_id: str) -> Response:
    return _list("booking", booking_id)


@blp.route("/bookings/<booking_id>/messages", methods=["POST"])
@require()
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
def post_booking_message(body: dict[str, Any], booking_id: str) -> Response:
    return _post("booking", booking_id, body)


@blp.route("/popup-requests/<request_id>/messages", methods=["GET"])
@require()
@blp.response(200, MessageList)
def popup_messages(request_id: str) -> Response:
    return _list("popup", request_id)


@blp.route("/popup-requests/<request_id>/messages", methods=["POST"])
@require()
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
def post_popup_message(body: dict[str, Any], request_id: str) -> Response:
    return _post("popup", request_id, body)
