"""/api/v1/registry/free-premises: the public register of free-of-charge premises (open data).

The list comes from the asynchronous registry projection (hence `X-Log-Position` and
`?min_position=N`); the next free hour of each premises is worked out at the moment of
asking from the inline availability table, which is always current. The JSON list is paged
like every list that can grow (`limit`, `after`, `next`, `Link`); the CSV download is the
whole register in one file, as open-data users expect of a file to fetch by its address, so
paging parameters with `format=csv` are refused (422) rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields

from booking.api.blueprint import Blueprint
from booking.api.consistency import (
    handle_not_caught_up,
    min_position_field,
    reflected_position,
)
from booking.api.paging import (
    LINK_HEADER,
    PageQuery,
    csv_format_field,
    csv_is_whole,
    next_field,
    page_headers,
    page_request,
)
from booking.http import json_response, now, runtime
from booking.queries.registry import registry_csv, registry_entries, registry_page
from events.sql import read_transaction

blp = Blueprint(
    "api_registry",
    __name__,
    url_prefix="/api/v1",
    description="The free-premises registry (public)",
)
handle_not_caught_up(blp)


class RegistryQuery(PageQuery):
    format = csv_format_field("the whole registry")
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
    next = next_field()


@blp.route("/registry/free-premises", methods=["GET"])
@blp.arguments(RegistryQuery, location="query")
@blp.response(200, RegistryOut, headers=LINK_HEADER)
@blp.doc(
    responses={
        "200": {
            "headers": LINK_HEADER,  # JSON only: the CSV is never paged
            "content": {
                "application/json": {"schema": RegistryOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)  # ?format=csv
def free_premises(query: dict[str, Any]) -> Response:
    """Every free-of-charge premises in use, with where it is, what it has, when it is open,
    on what terms, and its next free hour, by id. JSON is paged: `limit` rows (default 100)
    after the cursor `after`; `next` and the `Link` header lead on, null on the last page.
    `format=csv` gives the whole registry as one CSV file (UTF-8), never paged."""
    csv = csv_is_whole(query)
    page = page_request(query)  # a bad cursor is 422 at once, before any wait
    position = reflected_position("registry", query.get("min_position"))
    headers = {"X-Log-Position": str(position)}
    if csv:
        with read_transaction(runtime().engine) as conn:
            entries = registry_entries(conn, now())
        return Response(
            registry_csv(entries),
            mimetype="text/csv",
            headers={**headers, "Content-Disposition": 'attachment; filename="free-premises.csv"'},
        )
    with read_transaction(runtime().engine) as conn:
        found = registry_page(conn, now(), page)
    body = {"premises": found.rows, "log_position": position, "next": found.next}
    return json_response(body, headers={**headers, **page_headers(found)})
