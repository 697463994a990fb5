"""/api/v1/stats/usage: how much the premises are used, when and by whom — for analysts.

Figures come from the asynchronous usage projection (`projections.usage`); the response
carries the log position it reflects and honours `?min_position=N`. No figure names a person
or a booking; organisation types are shown only for groups of at least three organisations.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import Response, request
from marshmallow import fields, validate

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
    page_request,
)
from booking.api.schemas import local_date
from booking.auth import require
from booking.domain.errors import NotFound, RuleBroken
from booking.http import json_response, runtime
from booking.queries.paging import link_header
from booking.queries.stats import Period as CsvPeriod
from booking.queries.stats import usage_csv, usage_page
from events.sql import read_transaction
from projections.usage.query import GROUP_KEYS, UnknownPremises, usage

blp = Blueprint(
    "api_stats", __name__, url_prefix="/api/v1", description="Usage statistics (analysts, staff)"
)
handle_not_caught_up(blp)
MAX_DAYS = 3 * 366


# The most rows of one page of each period, and the default. The figures are worked out
# whole for every request anyway; the page only bounds the answer. Every grouping without
# `premises` or `district` has fewer rows (the most, `week,hour` over the longest period:
# 158 weeks x 24 hours = 3,792), and so has the Mikkeli demo's widest (47 premises x 158
# weeks = 7,426): only a larger catalogue, by premises or district, runs to a second page.
USAGE_LIMIT = 10_000


class UsageQuery(PageQuery):
    # Bounded as every other date of the API (a year from 1970 to 2199): year 1 or 9999 was
    # a 422 without `errors` from the calendar's overflow.
    from_ = local_date(data_key="from", required=True)
    to = local_date(required=True)
    group_by = fields.String(
        load_default="month",
        metadata={"description": f"one or two of {', '.join(GROUP_KEYS)}, comma-separated"},
    )
    premises_id = fields.List(fields.String(validate=validate.Length(1, 100)))
    format = csv_format_field("both periods")
    min_position = min_position_field()
    limit = fields.Integer(
        load_default=USAGE_LIMIT,
        validate=validate.Range(1, USAGE_LIMIT),
        metadata={
            "description": f"Rows per page of each period (1–{USAGE_LIMIT}, default "
            f"{USAGE_LIMIT}: every grouping without `premises` or `district` fits one page)."
        },
    )


class UsageRow(ma.Schema):
    key = fields.Dict()
    open_hours = fields.Float()
    booked_hours = fields.Float()
    blocked_hours = fields.Float(
        metadata={
            "description": "Time the premises could not be booked because a premises sharing "
            "a space with it (the whole hall, or one of its parts) was booked, and it was not "
            "booked itself."
        }
    )
    utilisation = fields.Float(allow_none=True)
    bookings = fields.Integer()
    cancellations = fields.Integer()
    late_cancellations = fields.Integer()
    popup_requests = fields.Integer()
    popup_approved = fields.Integer()
    popup_rejected = fields.Integer()
    popup_expired = fields.Integer()
    median_lead_time_hours = fields.Float(allow_none=True)
    mean_attendees_per_capacity = fields.Float(allow_none=True)


class Period(ma.Schema):
    from_ = fields.String(data_key="from")
    to = fields.String()
    rows = fields.List(fields.Nested(UsageRow))


class UsageOut(Period):
    group_by = fields.List(fields.String())
    premises_id = fields.List(fields.String(), allow_none=True)
    previous = fields.Nested(
        Period,
        metadata={"description": "The previous period's rows of the same groups as `rows`."},
    )
    log_position = fields.Integer()
    next = next_field()


def _group_by(raw: str) -> list[str]:
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    problems = []
    if not 1 <= len(keys) <= 2:
        problems.append("Give one or two keys, e.g. `month` or `weekday,hour`.")
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        problems.append(f"Unknown: {', '.join(unknown)}. Known: {', '.join(GROUP_KEYS)}.")
    if len(set(keys)) != len(keys):
        problems.append("A key may appear once.")
    if problems:
        raise RuleBroken({"group_by": problems})
    return keys


@blp.route("/stats/usage", methods=["GET"])
@require("analyst", "staff", "admin")
@blp.arguments(UsageQuery, location="query")
@blp.response(200, UsageOut, headers=LINK_HEADER)
@blp.doc(
    responses={
        "200": {
            "headers": LINK_HEADER,  # JSON only: the CSV is never paged
            "content": {
                "application/json": {"schema": UsageOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)  # ?format=csv
def usage_stats(query: dict[str, Any]) -> Response:
    """Open and booked hours, utilisation, bookings, cancellations, pop-up outcomes, lead
    times and attendance per group, for local dates `from`..`to` and the period of equal
    length just before it (`previous`). `format=csv` gives both periods as CSV.

    `open_hours` are the opening hours less closures (until a premises is retired);
    `booked_hours` count confirmed bookings; `bookings` count bookings placed and not
    rejected, by the hour they start; `median_lead_time_hours` (start - placed) is estimated
    from a histogram with buckets of 1 h up to 4 h, widening to months beyond a year. With
    `organisation_type`, a type with fewer than three organisations is pooled as `other`,
    and a group whose pool is still smaller is shown whole as `all`; `open_hours` is then
    that of the whole group.

    Why: a figure about one or two organisations would tell who booked what. The rule is
    applied to each group of the other keys separately and to the whole asked period: for
    example `group_by=month,organisation_type` over a period that includes December 2026,
    when fewer than three organisations of any one type booked, gives December a single row
    with `organisation_type: "all"`, and another month may show `association`, `company` and
    `other`. Ask for a longer period or fewer keys to see a breakdown. Without
    `organisation_type` among the keys nothing is suppressed (no figure names anybody).

    JSON is paged by group, in the rows' order: `limit` rows (default and most 10,000) of
    each period after the cursor `after`; `next` and the `Link` header lead on, null on the last
    page. A page's `previous.rows` are the previous period's rows of the page's groups, a
    month or week matched by its place in its period (the first month with the first), so
    the pages together give both periods whole. Groupings without `premises` or `district`
    (at most 3,792 rows) always fit the default page. `format=csv` is never paged.
    """
    csv = csv_is_whole(query)
    page = page_request(query)  # a bad cursor is 422 at once, before any wait
    first, last = query["from_"], query["to"]
    group_by = _group_by(query["group_by"])
    if last < first:
        raise RuleBroken({"to": ["`to` must not be before `from`."]})
    if (last - first).days >= MAX_DAYS:
        raise RuleBroken({"to": [f"Ask for at most {MAX_DAYS} days at a time."]})
    length = last - first + timedelta(days=1)
    before_first, before_last = first - length, first - timedelta(days=1)
    premises_ids = sorted(set(query["premises_id"])) if query.get("premises_id") else None
    position = reflected_position("usage", query.get("min_position"))
    try:
        with read_transaction(runtime().engine) as conn:
            rows = usage(conn, first, last, group_by, premises_ids)
            previous = usage(conn, before_first, before_last, group_by, premises_ids)
    except UnknownPremises as error:
        raise NotFound(f"No premises {', '.join(error.args[0])} in the statistics.") from None
    headers = {"X-Log-Position": str(position)}
    if csv:
        periods: list[CsvPeriod] = [
            ("current", first, last, rows),
            ("previous", before_first, before_last, previous),
        ]
        return Response(
            usage_csv(group_by, periods),
            mimetype="text/csv",
            headers={
                **headers,
                "Content-Disposition": f'attachment; filename="usage-{first}-{last}.csv"',
            },
        )
    found = usage_page(group_by, (first, rows), (before_first, previous), page)
    body = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "group_by": group_by,
        "premises_id": premises_ids,
        "rows": found.rows,
        "previous": {
            "from": before_first.isoformat(),
            "to": before_last.isoformat(),
            "rows": found.previous,
        },
        "log_position": position,
        "next": found.next,
    }
    return json_response(body, headers={**headers, **link_header(request.url, found.next)})
