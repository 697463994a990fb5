"""/api/v1/allocation-rounds/{id}/result: a published round's result, public and without
names of people (open data, JSON or CSV). The read is booking.queries.allocation's."""

# flask-smorest is untyped; everything else here is strict.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields

from booking.api.blueprint import Blueprint
from booking.api.paging import (
    LINK_HEADER,
    PageQuery,
    csv_format_field,
    csv_is_whole,
    limit_field,
    next_field,
    page_headers,
    page_request,
)
from booking.http import json_response, runtime
from booking.i18n import reader_language
from booking.queries.allocation import published_result, result_csv
from booking.queries.paging import MAX_LIMIT
from events.sql import read_transaction

blp = Blueprint(
    "allocation_result",
    __name__,
    url_prefix="/api/v1",
    description="Seasonal allocation rounds: published results (public)",
)


class ResultQuery(PageQuery):
    # A season's result of a whole city fits the default page: clients that never page get all.
    limit = limit_field(MAX_LIMIT)
    format = csv_format_field("the whole result")


class ResultRow(ma.Schema):
    premises_id = fields.String()
    premises_name = fields.Dict(metadata={"description": "{fi, sv, en}"})
    weekday = fields.String(metadata={"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    start_time = fields.String(metadata={"description": "HH:MM, the premises' local time"})
    end_time = fields.String()
    organisation_id = fields.String()
    organisation_name = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": ["offered", "accepted", "declined", "lapsed"]})


class ResultOut(ma.Schema):
    round_id = fields.String()
    name = fields.Dict()
    season_start = fields.String()
    season_end = fields.String()
    published_at = fields.String()
    confirm_by = fields.String()
    result = fields.List(fields.Nested(ResultRow))
    next = next_field()


@blp.route("/allocation-rounds/<round_id>/result", methods=["GET"])
@blp.arguments(ResultQuery, location="query")
@blp.response(200, ResultOut, headers=LINK_HEADER)
@blp.alt_response(404, description="No such round, or it is not published yet")
@blp.doc(
    responses={
        "200": {
            "headers": LINK_HEADER,  # JSON only: the CSV is never paged
            "content": {
                "application/json": {"schema": ResultOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)
def round_result(query: dict[str, Any], round_id: str) -> Response:
    """A published round's result for anyone (404 until it is published): every weekly slot
    offered, by premises, weekday and local time, with the organisation it went to and the
    offer's status now (`offered`, `accepted`, `declined`, `lapsed`). No person is named:
    no applicant, no contact, not the sections' or applications' own texts. JSON is paged:
    `limit` rows (default and most 1000) after the cursor `after`, by premises, weekday,
    local start and id; `next` and the `Link` header lead on, null on the last page.
    `format=csv` gives the whole result as one CSV file, never paged, the premises named in
    the reader's language."""
    csv = csv_is_whole(query)
    page = None if csv else page_request(query)
    with read_transaction(runtime().engine) as conn:
        body, found = published_result(conn, round_id, page)
    if found is None:
        return Response(
            result_csv(body, reader_language()),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="allocation-{round_id}.csv"',
            },
        )
    return json_response({**body, "next": found.next}, headers=page_headers(found))
