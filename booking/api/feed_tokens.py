"""/api/v1/feed-tokens: private iCalendar feed links (create, list own, revoke), and the
links of a premises' public feed.

A feed token is a long random secret that lives only in its URL; the service keeps its
sha256. Staff and admins may subscribe to premises (with details), a booker only to its own
organisation's bookings. Revoking a token makes its feed 404 at once. Every link comes as
`https://` and `webcal://` (which calendar apps open as a subscription); `url` uses the
scheme of BOOKING_PUBLIC_URL when that is set, else the request's (booking.public_url).

The URLs are shown in the response that creates the token and never kept: a replay of the
same `Idempotency-Key` returns the same body, URLs included, their secret derived again from
the key (booking.http.replayable_secret).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, url_for
from marshmallow import fields, validate
from sqlalchemy.engine import Connection

from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER, PageQuery, next_field, page_headers, page_request
from booking.auth import require, signed_in
from booking.domain.errors import NotFound
from booking.http import (
    iso,
    json_response,
    new_id,
    now,
    replayable_secret,
    respond,
    run_write,
    runtime,
)
from booking.public_url import public_url, with_scheme
from booking.queries.feed_tokens import feed_token_page, is_secret_of
from booking.queries.premises import premises_exists
from booking.service import Outcome
from booking.usecases import feed_tokens as handlers
from events.sql import read_transaction

blp = Blueprint(
    "feed_tokens",
    __name__,
    url_prefix="/api/v1",
    description="iCalendar feeds: public feed links and private feed tokens",
)
MAX_PREMISES = 100


class ScopeIn(ma.Schema):
    premises = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        validate=validate.Length(1, MAX_PREMISES),
        metadata={"description": "Premises ids (staff): their bookings with details"},
    )
    organisation = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "An organisation id: its own bookings with details"},
    )


class FeedTokenIn(ma.Schema):
    # One of the two, never both (the document says so as the check below does: issue 14.6).
    scope = fields.Nested(
        ScopeIn,
        required=True,
        metadata={"oneOf": [{"required": ["premises"]}, {"required": ["organisation"]}]},
    )

    @ma.validates_schema
    def _one_scope(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len(data.get("scope", {})) != 1:
            raise ma.ValidationError(
                'Give either {"premises": [ids]} or {"organisation": id}.', field_name="scope"
            )


class FeedLinksOut(ma.Schema):
    url = fields.String(allow_none=True, metadata={"description": "In the request's scheme"})
    https_url = fields.String(allow_none=True)
    webcal_url = fields.String(allow_none=True)


class FeedTokenOut(FeedLinksOut):
    id = fields.String()
    scope = fields.Dict()
    created_at = fields.String()


class FeedTokenSummary(ma.Schema):
    id = fields.String()
    scope = fields.Dict()
    created_at = fields.String()


class FeedTokenList(ma.Schema):
    feed_tokens = fields.List(fields.Nested(FeedTokenSummary))
    next = next_field()


class PremisesFeedOut(FeedLinksOut):
    premises_id = fields.String()


def links(path: str) -> dict[str, str]:
    """`path` on BOOKING_PUBLIC_URL when set, else on the request's scheme and host."""
    url = public_url(path)
    return {
        "url": url,
        "https_url": with_scheme(url, "https"),
        "webcal_url": with_scheme(url, "webcal"),
    }


NO_LINKS = {"url": None, "https_url": None, "webcal_url": None}


@blp.route("/feed-tokens", methods=["POST"])
@require("booker", "staff", "admin")
@blp.arguments(FeedTokenIn)
@blp.response(201, FeedTokenOut)
@blp.alt_response(403, description="Premises scope without staff role; another organisation")
@blp.alt_response(422, description="Unknown premises or organisation; no or two scopes")
def create_feed_token(body: dict[str, Any]) -> Response:
    """Create a private feed link. `url`, `https_url` and `webcal_url` hold the secret: they
    are shown in this response (and in a replay of its `Idempotency-Key`), never listed."""
    user = signed_in()
    token_id, at = new_id(), now()
    secret = replayable_secret("feed-token", user.id, token_id)

    def handle(conn: Connection) -> Outcome:
        issued = handlers.create_feed_token(conn, user, body["scope"], at, token_id, secret)
        summary = {"id": issued.id, "scope": issued.scope, "created_at": iso(issued.created_at)}
        location = {"Location": f"/api/v1/feed-tokens/{token_id}"}
        return Outcome(201, {**summary, **NO_LINKS}, location)

    outcome = run_write(user.id, handle)
    if isinstance(outcome, Response):
        return outcome
    if outcome.status == 201:
        shown = _secret_shown(user.id, outcome.body["id"], token_id, secret)
        if shown is not None:
            outcome.body.update(links(url_for("feeds.private_feed", token=shown)))
    return respond(outcome)


def _secret_shown(user_id: str, answered: str, made: str, secret: str) -> str | None:
    """The secret of the token the answer names: the one made now, or (a replay) the one the
    key derives again -- if it is that token's (an answer kept before secrets were derived
    keeps its null URLs rather than a link that never worked)."""
    if answered == made:
        return secret
    again = replayable_secret("feed-token", user_id, answered)
    with read_transaction(runtime().engine) as conn:
        return again if is_secret_of(conn, answered, again) else None


@blp.route("/feed-tokens", methods=["GET"])
@require()
@blp.arguments(PageQuery, location="query")
@blp.response(200, FeedTokenList, headers=LINK_HEADER)
def list_feed_tokens(query: dict[str, Any]) -> Response:
    """The caller's own feed tokens that are not revoked (without their secrets), oldest
    first. Paged: `limit` rows (default 100) after the cursor `after`; `next` and the
    `Link` header lead to the next page, `next` is null on the last."""
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        found = feed_token_page(conn, user.id, page_request(query))
    return json_response(
        {"feed_tokens": [token.as_json() for token in found.rows], "next": found.next},
        headers=page_headers(found),
    )


@blp.route("/feed-tokens/<token_id>", methods=["DELETE"])
@require()
@blp.response(204)
@blp.alt_response(404, description="No such live token of yours")
def revoke_feed_token(token_id: str) -> Response:
    """Revoke a feed token (your own; admins any): its feed answers 404 from now on."""
    user = signed_in()

    at = now()

    def handle(conn: Connection) -> Outcome:
        handlers.revoke_feed_token(conn, user, token_id, at)
        return Outcome(204, {})

    outcome = run_write(user.id, handle)
    if isinstance(outcome, Response):
        return outcome
    return Response(status=204) if outcome.status == 204 else respond(outcome)


@blp.route("/premises/<premises_id>/feed", methods=["GET"])
@blp.response(200, PremisesFeedOut)
def premises_feed_links(premises_id: str) -> Response:
    """The public feed of a premises, as `https://` and `webcal://` links."""
    with read_transaction(runtime().engine) as conn:
        found = premises_exists(conn, premises_id)
    if not found:
        raise NotFound(f"No premises {premises_id!r}.")
    path = url_for("feeds.premises_feed", premises_id=premises_id)
    return json_response({"premises_id": premises_id, **links(path)})
