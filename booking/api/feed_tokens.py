"""/api/v1/feed-tokens: private iCalendar feed links (create, list own, revoke), and the
links of a premises' public feed.

A feed token is a long random secret that lives only in its URL; the service keeps its
sha256. Staff and admins may subscribe to premises (with details), a booker only to its own
organisation's bookings. Revoking a token makes its feed 404 at once. Every link comes as
`https://` and `webcal://` (which calendar apps open as a subscription); `url` uses the
scheme of the request.

The URLs are shown once, in the response that creates the token: a replay of the same
`Idempotency-Key` returns the first response with the URLs as null (we never store them).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import Response, request, url_for
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from booking.accounts import User, token_hash
from booking.auth import require, signed_in
from booking.domain.errors import NotAllowed, NotFound, RuleBroken
from booking.http import iso, json_response, respond, run_write, runtime
from booking.service import Outcome
from booking.tables import feed_token_keys, feed_tokens, organisations
from events.sql import read_transaction
from projections.catalogue import premises_table

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
    scope = fields.Nested(ScopeIn, required=True)

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


class PremisesFeedOut(FeedLinksOut):
    premises_id = fields.String()


def links(path: str) -> dict[str, str]:
    return {
        "url": request.host_url.rstrip("/") + path,
        "https_url": f"https://{request.host}{path}",
        "webcal_url": f"webcal://{request.host}{path}",
    }


NO_LINKS = {"url": None, "https_url": None, "webcal_url": None}


def checked_scope(conn: Connection, user: User, scope: dict[str, Any]) -> dict[str, Any]:
    """The scope as stored, or NotAllowed (403) / RuleBroken (422)."""
    staff = user.role in ("staff", "admin")
    if "premises" in scope:
        if not staff:
            raise NotAllowed("Only staff may subscribe to premises with booking details.")
        ids = list(dict.fromkeys(scope["premises"]))
        known = set(
            conn.execute(select(premises_table.c.id).where(premises_table.c.id.in_(ids)))
            .scalars()
            .all()
        )
        if unknown := [i for i in ids if i not in known]:
            raise RuleBroken({"scope": [f"No such premises: {', '.join(unknown)}."]})
        return {"premises": ids}
    organisation_id = scope["organisation"]
    if not staff and organisation_id != user.organisation_id:
        raise NotAllowed("You may subscribe only to your own organisation's bookings.")
    found = conn.execute(
        select(organisations.c.id).where(organisations.c.id == organisation_id)
    ).first()
    if found is None:
        raise RuleBroken({"scope": ["No such organisation."]})
    return {"organisation": organisation_id}


def issue(conn: Connection, user: User, scope: dict[str, Any], token_id: str, token: str) -> Any:
    """Store a feed token (its hash) for `scope` after the role checks; the stored scope and
    the creation instant. Shared by this API and the /feeds page."""
    checked = checked_scope(conn, user, scope)
    kind, now = next(iter(checked)), datetime.now(UTC)
    conn.execute(
        insert(feed_tokens).values(
            id=token_id, token_hash=token_hash(token), user_id=user.id, scope=kind, created_at=now
        )
    )
    keys = checked["premises"] if kind == "premises" else [checked["organisation"]]
    conn.execute(
        insert(feed_token_keys),
        [{"token_id": token_id, "key": key, "ordinal": n} for n, key in enumerate(keys)],
    )
    return checked, now


def revoke(conn: Connection, user: User, token_id: str) -> None:
    """Revoke a live token of `user` (an admin: anyone's), or NotFound."""
    t = feed_tokens
    mine = t.c.user_id == user.id if user.role != "admin" else t.c.id == token_id
    done = conn.execute(
        update(t)
        .where(t.c.id == token_id, t.c.revoked_at.is_(None), mine)
        .values(revoked_at=datetime.now(UTC))
    )
    if not done.rowcount:
        raise NotFound(f"No live feed token {token_id!r} of yours.")


@blp.route("/feed-tokens", methods=["POST"])
@require("booker", "staff", "admin")
@blp.arguments(FeedTokenIn)
@blp.response(201, FeedTokenOut)
@blp.alt_response(403, description="Premises scope without staff role; another organisation")
@blp.alt_response(422, description="Unknown premises or organisation; no or two scopes")
def create_feed_token(body: dict[str, Any]) -> Response:
    """Create a private feed link. `url`, `https_url` and `webcal_url` hold the secret and
    are shown only in this response."""
    user = signed_in()
    token, token_id = secrets.token_urlsafe(32), str(uuid.uuid4())

    def handle(conn: Connection) -> Outcome:
        scope, now = issue(conn, user, body["scope"], token_id, token)
        summary = {"id": token_id, "scope": scope, "created_at": iso(now)}
        location = {"Location": f"/api/v1/feed-tokens/{token_id}"}
        return Outcome(201, {**summary, **NO_LINKS}, location)

    outcome = run_write(user.id, handle)
    if isinstance(outcome, Response):
        return outcome
    if outcome.body.get("id") == token_id:  # created now, not a replay: show the secret once
        outcome.body.update(links(url_for("feeds.private_feed", token=token)))
    return respond(outcome)


@blp.route("/feed-tokens", methods=["GET"])
@require()
@blp.response(200, FeedTokenList)
def list_feed_tokens() -> Response:
    """The caller's own feed tokens that are not revoked (without their secrets)."""
    user = signed_in()
    t, k = feed_tokens, feed_token_keys
    with read_transaction(runtime().engine) as conn:
        rows = conn.execute(
            select(t.c.id, t.c.scope, t.c.created_at, k.c.key)
            .join(k, k.c.token_id == t.c.id)
            .where(t.c.user_id == user.id, t.c.revoked_at.is_(None))
            .order_by(t.c.created_at, t.c.id, k.c.ordinal)
        ).all()
    tokens: dict[str, dict[str, Any]] = {}
    for row in rows:
        token = tokens.setdefault(
            row.id, {"id": row.id, "scope": {}, "created_at": iso(row.created_at)}
        )
        if row.scope == "premises":
            token["scope"].setdefault("premises", []).append(row.key)
        else:
            token["scope"]["organisation"] = row.key
    return json_response({"feed_tokens": list(tokens.values())})


@blp.route("/feed-tokens/<token_id>", methods=["DELETE"])
@require()
@blp.response(204)
@blp.alt_response(404, description="No such live token of yours")
def revoke_feed_token(token_id: str) -> Response:
    """Revoke a feed token (your own; admins any): its feed answers 404 from now on."""
    user = signed_in()

    def handle(conn: Connection) -> Outcome:
        revoke(conn, user, token_id)
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
        found = conn.execute(
            select(premises_table.c.id).where(premises_table.c.id == premises_id)
        ).first()
    if found is None:
        raise NotFound(f"No premises {premises_id!r}.")
    path = url_for("feeds.premises_feed", premises_id=premises_id)
    return json_response({"premises_id": premises_id, **links(path)})
