"""/api/v1/users and /api/v1/organisations: accounts (admins create them, anyone reads own),
a person's data export and their erasure (GDPR; DESIGN.md invariant 5)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking import accounts, held_identity, memberships
from booking.api import bookings as bookings_api
from booking.api import popups as popups_api
from booking.api import schemas
from booking.api.blueprint import Blueprint
from booking.api.messages import MessageOut, message_json
from booking.api.popups import PopupOut
from booking.auth import require, signed_in
from booking.domain.accounts import ErasePerson, may_erase
from booking.domain.commands import ROLES
from booking.domain.errors import NotAllowed, NotFound
from booking.http import (
    iso,
    json_response,
    new_id,
    now,
    replayable_secret,
    request_metadata,
    respond,
    run_write,
    runtime,
    write,
)
from booking.outbox import outbox
from booking.queries.bookings import booking_rows
from booking.queries.feed_tokens import tokens_of
from booking.queries.popups import with_zone as popups_with_zone
from booking.service import Outcome
from booking.tables import api_tokens, organisations, users
from booking.usecases import accounts as handlers
from booking.usecases.privacy import erase_person
from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.messages import messages_table
from projections.popups import popups_table

blp = Blueprint("people", __name__, url_prefix="/api/v1", description="Users and organisations")
log = logging.getLogger(__name__)


def user_json(user: accounts.User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "organisation_id": user.organisation_id,
        "language": user.language,
    }


@blp.route("/users/me", methods=["GET"])
@require()
@blp.response(200, schemas.UserOut)
def me() -> Response:
    """The caller, with `organisations: [{id, name}]` they belong to (booking.memberships)."""
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        joined = memberships.organisations_of(conn, user.id)
    return json_response(
        {**user_json(user), "organisations": [{"id": o.id, "name": o.name} for o in joined]}
    )


@blp.route("/users", methods=["POST"])
@require("admin")
@blp.arguments(schemas.UserIn)
@blp.response(201, schemas.UserOut)
def create_user(body: dict[str, Any]) -> Response:
    """Create a user (admin); the response carries its API token. Tokens are kept only as
    hashes; a replay of the same Idempotency-Key answers the same body, token included,
    derived again from the key (booking.http.replayable_secret), not kept."""
    admin = signed_in()
    given = handlers.NewAccount(
        email=body["email"],
        name=body["name"],
        role=body["role"],
        organisation_id=body.get("organisation_id"),
        password=body.get("password"),
        language=body["language"],
    )
    at, user_id = now(), new_id()
    token = replayable_secret("api-token", admin.id, user_id)

    def handle(conn: Connection) -> Outcome:
        rt = runtime()
        metadata = request_metadata(admin.id)
        created = handlers.create_user(
            conn, rt.vault, admin.actor, given, at, user_id, metadata, token
        )
        user = accounts.user_by_id(conn, created.user_id, rt.vault)
        return Outcome(201, {**user_json(user), "token": None})

    outcome = run_write(admin.id, handle)
    if isinstance(outcome, Response):
        return outcome
    if outcome.status == 201:
        outcome.body["token"] = _token_shown(admin.id, outcome.body["id"], user_id, token)
    return respond(outcome)


def _token_shown(admin_id: str, answered: str, made: str, token: str) -> str | None:
    """The token of the user the answer names: the one made now, or (a replay) the one the
    key derives again -- if it is that user's (an answer kept before tokens were derived
    shows null rather than a token that never worked)."""
    if answered == made:
        return token
    again = replayable_secret("api-token", admin_id, answered)
    with read_transaction(runtime().engine) as conn:
        return again if accounts.is_token_of(conn, answered, again) else None


@blp.route("/organisations", methods=["POST"])
@require("admin", "staff")
@blp.arguments(schemas.OrganisationIn)
@blp.response(201, schemas.OrganisationOut)
def create_organisation(body: dict[str, Any]) -> Response:
    actor = signed_in()

    given = handlers.NewOrganisation(body["name"], body["type"], body.get("business_id"))
    at, organisation_id = now(), new_id()

    def handle(conn: Connection) -> Outcome:
        metadata = request_metadata(actor.id)
        created = handlers.create_organisation(
            conn, actor.actor, given, at, organisation_id, metadata
        )
        return Outcome(201, {"id": created.id, **body})

    return write(actor.id, handle)


class RoleIn(ma.Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    organisation_id = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "the organisation a booker acts for; omitted: unchanged"},
    )


class RoleOut(ma.Schema):
    id = fields.String()
    role = fields.String()
    organisation_id = fields.String(allow_none=True)


@blp.route("/users/<user_id>/role", methods=["PUT"])
@require("admin")
@blp.arguments(RoleIn)
@blp.response(200, RoleOut)
@blp.alt_response(404, description="No such user")
@blp.alt_response(409, description="An admin cannot change their own role")
def assign_role(body: dict[str, Any], user_id: str) -> Response:
    """Assign a person's role (admin): how staff, analysts and admins who sign in through the
    identity provider get theirs where no provider claim maps to roles. Where one does
    (BOOKING_OIDC_ROLE_MAP), the claim decides again at the person's next sign-in whenever it
    maps to a role."""
    admin = signed_in()
    at = now()

    def handle(conn: Connection) -> Outcome:
        done = handlers.assign_role(
            conn,
            admin.actor,
            user_id,
            body["role"],
            body["organisation_id"],
            at,
            request_metadata(admin.id),
        )
        log.info("user %s is %s now, by %s", user_id, done.role, admin.id)
        return Outcome(
            200, {"id": done.user_id, "role": done.role, "organisation_id": done.organisation_id}
        )

    return write(admin.id, handle)


# --- a person's data: export and erasure ---------------------------------------------------


class ErasedOut(ma.Schema):
    id = fields.String()
    erased = fields.Boolean()
    erased_at = fields.String()


class HeldAccountOut(ma.Schema):
    id = fields.String()
    email = fields.String(allow_none=True, metadata={"description": "null once erased"})
    name = fields.String(allow_none=True, metadata={"description": "null once erased"})
    role = fields.String()
    organisation_id = fields.String(allow_none=True)
    organisation_name = fields.String(allow_none=True)
    language = fields.String()
    created_at = fields.String()
    erased_at = fields.String(allow_none=True)


class HeldMessageOut(MessageOut):
    thread_kind = fields.String(metadata={"enum": ["booking", "popup"]})
    thread_id = fields.String()


class HeldApiTokenOut(ma.Schema):
    created_at = fields.String()
    revoked_at = fields.String(allow_none=True)


class HeldFeedTokenOut(HeldApiTokenOut):
    id = fields.String(metadata={"description": "never the secret"})
    scope = fields.Dict()


class HeldMailOut(ma.Schema):
    id = fields.Integer()
    language = fields.String()
    subject = fields.String()
    body = fields.String()
    created_at = fields.String()
    sent_at = fields.String(allow_none=True)


class PersonalDataOut(ma.Schema):
    account = fields.Nested(HeldAccountOut)
    bookings = fields.List(fields.Nested(schemas.BookingOut))
    popup_requests = fields.List(fields.Nested(PopupOut))
    messages = fields.List(fields.Nested(HeldMessageOut))
    feed_tokens = fields.List(fields.Nested(HeldFeedTokenOut))
    api_tokens = fields.List(fields.Nested(HeldApiTokenOut))
    outbox = fields.List(fields.Nested(HeldMailOut, metadata={"description": "sent or waiting"}))
    sessions = fields.List(fields.Dict(), metadata={"description": "sign-ins (no secrets)"})
    identities = fields.List(fields.Dict(), metadata={"description": "(issuer, sub) pairs"})
    membership_requests = fields.List(fields.Dict())


@blp.route("/users/<user_id>/erase", methods=["POST"])
@require("admin")
@blp.response(200, ErasedOut)
@blp.alt_response(404, description="No such user")
@blp.alt_response(409, description="An admin cannot erase themself")
def erase_user(user_id: str) -> Response:
    """Crypto-shred a person (admin): their data key is deleted, so their e-mail, name,
    booking notes, pop-up descriptions and messages read as null everywhere — API, pages,
    feeds, mail and exports of the log alike; their tokens stop working, unsent mail to them
    is dropped. Their bookings stay and count in the statistics. Erasing twice is a no-op."""
    admin = signed_in()
    may_erase(ErasePerson(admin.actor, user_id))  # refused before any write
    at = now()

    def handle(conn: Connection) -> Outcome:
        erased = erase_person(conn, runtime().vault, admin.actor, user_id, at)
        log.info("user %s erased by %s", user_id, admin.id)
        return Outcome(
            200, {"id": erased.person_id, "erased": True, "erased_at": iso(erased.erased_at)}
        )

    return write(admin.id, handle)


@blp.route("/users/<user_id>/data", methods=["GET"])
@require()
@blp.response(200, PersonalDataOut)
@blp.alt_response(403, description="Someone else's data (only the person or an admin)")
@blp.alt_response(404, description="No such user")
def personal_data(user_id: str) -> Response:
    """Everything held about a person (the person or an admin), personal texts opened:
    account, bookings they placed, pop-up requests, messages they wrote, feed and API tokens
    (never their secrets) and the mail sent or waiting for them."""
    user = signed_in()
    if user.id != user_id and user.role != "admin":
        raise NotAllowed("Only the person themself or an admin reads a person's data.")
    with read_transaction(runtime().engine) as conn:
        return json_response(export(conn, user_id))


def export(conn: Connection, user_id: str) -> dict[str, Any]:
    u, o = users, organisations
    row = conn.execute(
        select(u, o.c.name.label("organisation_name"))
        .outerjoin(o, o.c.id == u.c.organisation_id)
        .where(u.c.id == user_id)
    ).first()
    if row is None:
        raise NotFound(f"No user {user_id!r}.")
    personal = runtime().vault.reader(conn)
    b, p, m, t = bookings_table, popups_table, messages_table, outbox
    booking_ids = list(
        conn.execute(select(b.c.id).where(b.c.booked_by == user_id).order_by(b.c.start)).scalars()
    )
    popups = conn.execute(popups_with_zone().where(p.c.requested_by == user_id).order_by(p.c.start))
    messages = conn.execute(
        select(m).where(m.c.author_id == user_id).order_by(m.c.posted_at, m.c.id)
    )
    mails = conn.execute(select(t).where(t.c.recipient_id == user_id).order_by(t.c.id))
    return {
        "account": {
            "id": row.id,
            "email": personal.open(row.email),
            "name": personal.open(row.name),
            "role": row.role,
            "organisation_id": row.organisation_id,
            "organisation_name": row.organisation_name,
            "language": row.language,
            "created_at": iso(row.created_at),
            "erased_at": iso(row.erased_at) if row.erased_at else None,
        },
        "bookings": [
            bookings_api.booking_json(r) for r in booking_rows(conn, runtime().vault, booking_ids)
        ],
        "popup_requests": [popups_api.popup_json(r, personal) for r in popups],
        "messages": [
            {**message_json(r, personal), "thread_kind": r.thread_kind, "thread_id": r.thread_id}
            for r in messages
        ],
        "feed_tokens": [
            {**token, "revoked_at": _iso_or_none(token["revoked_at"])}
            for token in tokens_of(conn, user_id, with_revoked=True)
        ],
        "api_tokens": [
            {"created_at": iso(r.created_at), "revoked_at": _iso_or_none(r.revoked_at)}
            for r in conn.execute(
                select(api_tokens)
                .where(api_tokens.c.user_id == user_id)
                .order_by(api_tokens.c.created_at)
            )
        ],
        **held_identity.held(conn, runtime().vault, user_id),
        "outbox": [
            {
                "id": r.id,
                "language": r.language,
                "subject": r.subject,
                "body": r.body,
                "created_at": iso(r.created_at),
                "sent_at": _iso_or_none(r.sent_at),
            }
            for r in mails
        ],
    }


def _iso_or_none(instant: datetime | None) -> str | None:
    return iso(instant) if instant else None
