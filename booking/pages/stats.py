"""Analysts' page: utilisation over time, a weekday × hour heatmap and utilisation by
district, drawn as accessible SVG with data tables, and the same figures as CSV; and a
published allocation round's allocated against requested hours by organisation type, age
group and purpose (booking.queries.allocation, the three-organisation rule kept).

Figures come from the asynchronous usage projection (projections/usage/query.py), the same
source as GET /api/v1/stats/usage; the page names the log position they reflect.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from booking.http import now, runtime
from booking.i18n import current_language
from booking.pages.charts import Point, bar_chart, column_chart, heatmap
from booking.pages.common import Form, day_name, signed_in_as
from booking.queries.allocation import STATS_KEYS, allocation_stats, published_rounds
from booking.queries.stats import usage_csv
from events.sql import read_transaction
from projections import runner
from projections.usage.query import usage

bp = Blueprint("stats", __name__)
ANALYSTS = ("analyst", "staff", "admin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 366
GROUPINGS = {"week": ["week"], "heatmap": ["weekday", "hour"], "district": ["district"]}


def _period(form: Form) -> tuple[date, date]:
    """The asked dates, or the last twelve weeks up to the end of this week."""
    today = now().astimezone(ZoneInfo(current_app.config["BOOKING_TIMEZONE"])).date()
    sunday = today + timedelta(days=6 - today.weekday())
    first = form.date("from", required=False) or sunday - timedelta(days=7 * 12 - 1)
    last = form.date("to", required=False) or sunday
    if form.ok and last < first:
        form.error("to", _("The end must not be before the start."))
    elif form.ok and (last - first).days >= MAX_DAYS:
        form.error("to", _("Ask for at most %(n)d days at a time.", n=MAX_DAYS))
    return first, last


def _organisation_type(value: str) -> str:
    names = {
        "association": _("Associations"),
        "company": _("Companies"),
        "other": _("Other organisations"),
    }
    return str(names.get(value, value))


def _allocation(asked: str | None) -> dict[str, Any]:
    """The allocation round section: the published rounds to choose from, and the chosen
    one's (the newest by default) rows per grouping with a chart of allocated shares."""
    language = current_language()
    with read_transaction(runtime().engine) as conn:
        rounds = [
            {"id": r.id, "name": r.name.get(language) or r.name.get("fi") or r.id}
            for r in published_rounds(conn)
        ]
        chosen = next((r for r in rounds if r["id"] == asked), rounds[0] if rounds else None)
        tables = {
            key: allocation_stats(conn, key, [chosen["id"]]) if chosen else [] for key in STATS_KEYS
        }
    for row in tables["organisation_type"]:
        row["label"] = _organisation_type(row["key"]["organisation_type"])
    for key in ("age_group", "purpose"):
        for row in tables[key]:
            row["label"] = str(row["key"][key]).capitalize()
    chart = None
    if chosen and tables["age_group"]:
        chart = bar_chart(
            "chart-allocation",
            _("Share of requested hours allocated, by age group"),
            _(
                "Allocated weekly hours as a share of those requested in %(round)s. Groups "
                "of fewer than three organisations show no figure.",
                round=chosen["name"],
            ),
            [Point(r["label"], r["allocated_share"]) for r in tables["age_group"]],
        )
    return {"rounds": rounds, "chosen": chosen, "tables": tables, "chart": chart}


@bp.route("/stats")
@signed_in_as(*ANALYSTS)
def index() -> Any:
    form = Form(request.args)
    first, last = _period(form)
    form.data.setdefault("from", first.isoformat())
    form.data.setdefault("to", last.isoformat())
    allocation = _allocation(request.args.get("round"))
    if not form.ok:
        return render_template(
            "stats/index.html", form=form, charts=None, allocation=allocation
        ), 422
    with read_transaction(runtime().engine) as conn:
        weeks = usage(conn, first, last, GROUPINGS["week"])
        cells = usage(conn, first, last, GROUPINGS["heatmap"])
        districts = usage(conn, first, last, GROUPINGS["district"])
    position = runner.position_of(runtime().engine, "usage")
    names = {key: day_name(date(2024, 1, 1) + timedelta(days=n)) for n, key in enumerate(WEEKDAYS)}
    week_points = [Point(r["key"]["week"], r["utilisation"]) for r in weeks]
    district_points = [
        Point(str(r["key"]["district"]).capitalize(), r["utilisation"]) for r in districts
    ]
    values = {(r["key"]["weekday"], int(r["key"]["hour"])): r["utilisation"] for r in cells}
    hours = sorted({h for _, h in values}) or list(range(8, 22))
    busiest = max(week_points, key=lambda p: p.value or 0.0, default=None)
    charts = {
        "weeks": column_chart(
            "chart-weeks",
            _("Utilisation by week"),
            _(
                "Share of opening hours booked, per week, %(first)s – %(last)s. Highest: %(best)s.",
                first=first.isoformat(),
                last=last.isoformat(),
                best=f"{busiest.label} {round((busiest.value or 0) * 100)} %" if busiest else "–",
            ),
            week_points,
        ),
        "heatmap": heatmap(
            "chart-heatmap",
            _("Utilisation by weekday and hour"),
            _("Darker cells are busier hours. The table below gives every value."),
            WEEKDAYS,
            hours,
            values,
            names,
        ),
        "districts": bar_chart(
            "chart-districts",
            _("Utilisation by district"),
            _("Share of opening hours booked in each district."),
            district_points,
        ),
    }
    return render_template(
        "stats/index.html",
        form=form,
        charts=charts,
        weeks=weeks,
        cells=cells,
        districts=districts,
        weekday_names=names,
        position=position,
        first=first,
        last=last,
        allocation=allocation,
    )


@bp.route("/stats/usage.csv")
@signed_in_as(*ANALYSTS)
def download() -> Response:
    form = Form(request.args)
    first, last = _period(form)
    group_by = GROUPINGS.get(form.get("group_by"), ["week"])
    if not form.ok:
        problems = " ".join(m for messages in form.errors.values() for m in messages)
        return Response(problems, status=422, mimetype="text/plain")
    length = last - first + timedelta(days=1)
    before_first, before_last = first - length, first - timedelta(days=1)
    with read_transaction(runtime().engine) as conn:
        rows = usage(conn, first, last, group_by)
        previous = usage(conn, before_first, before_last, group_by)
    body = usage_csv(
        group_by,
        [("current", first, last, rows), ("previous", before_first, before_last, previous)],
    )
    name = "-".join(group_by)
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="usage-{name}-{first}-{last}.csv"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )
