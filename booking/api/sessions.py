"""/api/v1/users/me/sessions and /api/v1/users/{id}/disable: seeing and ending sign-ins.

A person lists their live browser sessions and ends one or all but the current; an admin
disables a person, which ends every session of theirs and revokes their API and feed tokens
at once (erasure does the same). A session is `strong` when its sign-in was (an `acr` the
deployment lists in BOOKING_OIDC_STRONG_ACR).
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields
from sqlalchemy.engine import Connection

from booking import sessions
from booking.accounts import user_by_id
from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER, PageQuery, next_field, page_headers, page_request
from booking.auth import current_session, require, signed_in
from booking.domain.errors import InvalidState, NotFound
from booking.http import iso, json_response, now, runtime, write, write_no_content
from booking.service import Outcome
from events.sql import read_transaction

blp = Blueprint(
    "sessions", __name__, url_prefix="/api/v1", description="Sign-in sessions; disabling people"
)
log = logging.getLogger(__name__)


class SessionOut(ma.Schema):
    id = fields.String()
    created_at = fields.String(metadata={"description": "when the person signed in (UTC)"})
    last_seen_at = fields.String(metadata={"description": "its last request (within a minute)"})
    current = fields.Boolean(metadata={"description": "the session making this request"})
    strong = fields.Boolean(metadata={"description": "signed in with a strong identity"})


class SessionsOut(ma.Schema):
    sessions = fields.List(fields.Nested(SessionOut))
    next = next_field()


class DisabledOut(ma.Schema):
    id = fields.String()
    disabled = fields.Boolean()
    disabled_at = fields.String()


@blp.route("/users/me/sessions", methods=["GET"])
@require()
@blp.arguments(PageQuery, location="query")
@blp.response(200, SessionsOut, headers=LINK_HEADER)
def list_sessions(query: dict[str, Any]) -> Response:
    """The caller's live sessions, newest first (`current` marks the one asking; a bearer
    token is no session, so with one none is current). Paged: `limit` rows (default 100)
    after the cursor `after`; `next` and the `Link` header lead to the next page, `next` is
    null on the last."""
    user = signed_in()
    current = current_session()
    with read_transaction(runtime().engine) as conn:
        found = sessions.page_of_user(conn, user.id, now(), page_request(query))
    return json_response(
        {
            "sessions": [
                {
                    "id": s.id,
                    "created_at": iso(s.created_at),
                    "last_seen_at": iso(s.last_seen_at),
                    "current": current is not None and s.id == current.id,
                    "strong": s.strong,
                }
                for s in found.rows
            ],
            "next": found.next,
        },
        headers=page_headers(found),
    )


@blp.route("/users/me/sessions/<session_id>", methods=["DELETE"])
@require()
@blp.response(204)
@blp.alt_response(404, description="No live session of the caller's with that id")
def end_session(session_id: str) -> Response:
    """End one of the caller's sessions at once (its cookie stops working)."""
    user = signed_in()
    at = now()

    def handle(conn: Connection) -> Outcome:
        if not sessions.end(conn, session_id, at, user_id=user.id):
            raise NotFound(f"No session {session_id!r} of yours.")
        return Outcome(204, {})

    return write_no_content(user.id, handle)


@blp.route("/users/me/sessions", methods=["DELETE"])
@require()
@blp.response(204)
def end_other_sessions() -> Response:
    """End all the caller's sessions but the current one (with a bearer token: all)."""
    user = signed_in()
    current = current_session()
    at = now()

    def handle(conn: Connection) -> Outcome:
        sessions.end_all(conn, user.id, at, keep=current.id if current else None)
        return Outcome(204, {})

    return write_no_content(user.id, handle)


@blp.route("/users/<user_id>/disable", methods=["POST"])
@require("admin")
@blp.response(200, DisabledOut)
@blp.alt_response(404, description="No such user")
@blp.alt_response(409, description="An admin cannot disable themself")
def disable_user(user_id: str) -> Response:
    """Disable a person (admin): every session of theirs ends and every API and feed token
    of theirs is revoked at once; they cannot sign in again. Their data stays (unlike
    erasure). Disabling twice is a no-op."""
    admin = signed_in()
    if user_id == admin.id:
        raise InvalidState("Ask another admin to disable your own account.")

    def handle(conn: Connection) -> Outcome:
        user_by_id(conn, user_id)  # NotFound for no one (or an erased person)
        disabled_at = sessions.disable(conn, user_id, now(), admin.id)
        log.info("user %s disabled by %s", user_id, admin.id)
        return Outcome(200, {"id": user_id, "disabled": True, "disabled_at": iso(disabled_at)})

    return write(admin.id, handle)
