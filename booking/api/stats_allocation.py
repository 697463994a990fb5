"""/api/v1/stats/allocation: allocated against requested weekly hours of the published
allocation rounds, by organisation type, age group or purpose — for analysts. No personal
data; a group of fewer than three organisations shows no figures (booking.queries.allocation).
The rounds' tables are written inline, so the figures are current at once."""

# flask-smorest and our `require` decorator are untyped; everything else here is strict.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate

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
from booking.auth import require
from booking.http import json_response, runtime
from booking.queries.allocation import (
    STATS_KEYS,
    allocation_stats,
    allocation_stats_page,
    stats_csv,
)
from booking.queries.paging import MAX_LIMIT
from events.sql import read_transaction

blp = Blueprint(
    "api_stats_allocation",
    __name__,
    url_prefix="/api/v1",
    description="Allocation round statistics (analysts, staff)",
)


class AllocationStatsQuery(PageQuery):
    group_by = fields.String(load_default="organisation_type", validate=validate.OneOf(STATS_KEYS))
    round_id = fields.List(fields.String(validate=validate.Length(1, 64)))
    format = csv_format_field("every row")
    # Purposes are free text: a round's groups by purpose grow with its applications.
    limit = limit_field(MAX_LIMIT)


class AllocationStatsRow(ma.Schema):
    round_id = fields.String()
    key = fields.Dict(metadata={"description": "{<group_by>: value}"})
    suppressed = fields.Boolean(
        metadata={"description": "fewer than three organisations: no figures (all null)"}
    )
    organisations = fields.Integer(allow_none=True)
    applications = fields.Integer(allow_none=True)
    requested_hours = fields.Float(allow_none=True, metadata={"description": "a week"})
    allocated_hours = fields.Float(allow_none=True, metadata={"description": "a week"})
    accepted_hours = fields.Float(allow_none=True, metadata={"description": "a week"})
    allocated_share = fields.Float(allow_none=True)


class AllocationStatsOut(ma.Schema):
    group_by = fields.String()
    rows = fields.List(fields.Nested(AllocationStatsRow))
    next = next_field()


@blp.route("/stats/allocation", methods=["GET"])
@require("analyst", "staff", "admin")
@blp.arguments(AllocationStatsQuery, location="query")
@blp.response(200, AllocationStatsOut, headers=LINK_HEADER)
@blp.doc(
    responses={
        "200": {
            "headers": LINK_HEADER,  # JSON only: the CSV is never paged
            "content": {
                "application/json": {"schema": AllocationStatsOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)
def allocation_statistics(query: dict[str, Any]) -> Response:
    """Per published round (`round_id`, repeatable; default all, newest season first) and
    group of `group_by` (`organisation_type`, `age_group` or `purpose`, the purpose's text
    in lower case): the organisations and applications in it, `requested_hours` (the
    submitted applications' slots a week × duration), `allocated_hours` (what publication
    offered), `accepted_hours` and `allocated_share` (allocated / requested), all a week.

    A group of fewer than three organisations is `suppressed: true` with its figures null;
    where that would leave a round with exactly one suppressed group, the next smallest is
    suppressed as well, so that no hidden figure follows from the others. Unpublished
    rounds are not counted.

    JSON is paged: `limit` rows (default and most 1000) after the cursor `after`, in the
    rows' order; `next` and the `Link` header lead on, null on the last page. `format=csv`
    gives every row as one CSV file, never paged."""
    group_by = query["group_by"]
    csv = csv_is_whole(query)
    page = page_request(query)  # a bad cursor is 422 at once
    with read_transaction(runtime().engine) as conn:
        rows = allocation_stats(conn, group_by, query.get("round_id"))
    if csv:
        return Response(
            stats_csv(group_by, rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="allocation-{group_by}.csv"'},
        )
    found = allocation_stats_page(rows, group_by, page)
    return json_response(
        {"group_by": group_by, "rows": found.rows, "next": found.next},
        headers=page_headers(found),
    )
