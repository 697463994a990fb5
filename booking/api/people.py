"""/api/v1/users and /api/v1/organisations: accounts (admins create them, anyone reads own)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from sqlalchemy.engine import Connection

from booking import accounts
from booking.api import schemas
from booking.auth import require, signed_in
from booking.http import json_response, write
from booking.service import Outcome

blp = Blueprint("people", __name__, url_prefix="/api/v1", description="Users and organisations")


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
    return json_response(user_json(signed_in()))


@blp.route("/users", methods=["POST"])
@require("admin")
@blp.arguments(schemas.UserIn)
@blp.response(201, schemas.UserOut)
def create_user(body: dict[str, Any]) -> Response:
    """Create a user (admin); the response carries its API token, shown this once."""
    admin = signed_in()

    def handle(conn: Connection) -> Outcome:
        created = accounts.create_user(
            conn,
            email=body["email"],
            name=body["name"],
            role=body["role"],
            organisation_id=body.get("organisation_id"),
            password=body.get("password"),
            language=body["language"],
            actor=admin.id,
        )
        user = accounts.user_by_id(conn, created.user_id)
        return Outcome(201, {**user_json(user), "token": created.token})

    return write(admin.id, handle)


@blp.route("/organisations", methods=["POST"])
@require("admin", "staff")
@blp.arguments(schemas.OrganisationIn)
@blp.response(201, schemas.OrganisationOut)
def create_organisation(body: dict[str, Any]) -> Response:
    actor = signed_in()

    def handle(conn: Connection) -> Outcome:
        organisation_id = accounts.create_organisation(
            conn, body["name"], body["type"], body.get("business_id"), actor.id
        )
        return Outcome(201, {"id": organisation_id, **body})

    return write(actor.id, handle)
