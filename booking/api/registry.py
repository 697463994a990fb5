"""/api/v1/registry/free-premises: the public register of free-of-charge premises (open data).

The list comes from the asynchronous registry projection (hence `X-Log-Position` and
`?min_position=N`); the next free hour of each premises is worked out at the moment of
asking from the inline availability table, which is always current.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate

from booking.api.blueprint import Blueprint
from booking.api.consistency import (
    handle_not_caught_up,
    min_position_field,
    reflected_position,
)
from booking.http import json_response, now, runtime
from booking.queries.registry import registry_csv, registry_entries
from events.sql import read_transaction

blp = Blueprint(
    "api_registry",
    __name__,
    url_prefix="/api/v1",
    description="The free-premises registry (public)",
)
handle_not_caught_up(blp)


class RegistryQuery(ma.Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    min_position = min_position_field()


class RegistryEntry(ma.Schema):
    id = fields.String()
    name = fields.Dict()
    address = fields.String()
    district = fields.String()
    capacity = fields.Integer()
    accessibility = fields.List(fields.String())
    equipment = fields.List(fields.String())
    opening_hours = fields.Dict()
    free_use_conditions = fields.Dict()
    timezone = fields.String()
    next_free_hour = fields.String(
        allow_none=True,
        metadata={"description": "start of the next whole free hour within 14 days, or null"},
    )


class RegistryOut(ma.Schema):
    premises = fields.List(fields.Nested(RegistryEntry))
    log_position = fields.Integer()


@blp.route("/registry/free-premises", methods=["GET"])
@blp.arguments(RegistryQuery, location="query")
@blp.response(200, RegistryOut)
@blp.doc(
    responses={
        "200": {
            "content": {
                "application/json": {"schema": RegistryOut},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    }
)  # ?format=csv
def free_premises(query: dict[str, Any]) -> Response:
    """Every free-of-charge premises in use, with where it is, what it has, when it is open,
    on what terms, and its next free hour. `format=csv` gives the same as CSV (UTF-8)."""
    position = reflected_position("registry", query.get("min_position"))
    with read_transaction(runtime().engine) as conn:
        entries = registry_entries(conn, now())
    headers = {"X-Log-Position": str(position)}
    if query["format"] == "csv":
        return Response(
            registry_csv(entries),
            mimetype="text/csv",
            headers={**headers, "Content-Disposition": 'attachment; filename="free-premises.csv"'},
        )
    return json_response({"premises": entries, "log_position": position}, headers=headers)
