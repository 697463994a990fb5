"""Public pages: search by time and needs, the premises list, a premises with its week view,
and the free-premises registry (with CSV download). Nobody needs to sign in for these."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from booking.http import now, runtime
from booking.pages.common import Form, all_features, local_span, page_user
from booking.pages.week import monday_of, week_of
from booking.queries.premises import matching_premises, premises_row
from booking.queries.registry import catalogue_registry_rows
from events.opening import WEEKDAYS, OpeningHours
from events.slot import Slot
from events.sql import read_transaction
from projections.availability import busy_between, free_for_whole
from projections.catalogue import premises_table

bp = Blueprint("public", __name__)
MAX_SEARCH_HOURS = 14 * 24


def _districts(conn: Any) -> list[str]:
    t = premises_table
    return sorted(
        conn.execute(select(t.c.district).distinct().where(t.c.retired.is_(False))).scalars()
    )


def _filters(form: Form) -> dict[str, Any]:
    """The catalogue filters a form asks for, in the shape `matching_premises` takes."""
    query: dict[str, Any] = {}
    if form.get("district"):
        query["district"] = form.get("district")
    capacity = form.integer("min_capacity", 1, 100_000, required=False)
    if capacity:
        query["min_capacity"] = capacity
    if form.getlist("feature"):
        query["feature"] = form.getlist("feature")
    if form.checked("free"):
        query["free_of_charge"] = True
    if form.get("q"):
        query["q"] = form.text("q", 200)
    return query


def _choices(conn: Any) -> dict[str, Any]:
    rows = conn.execute(select(premises_table).where(premises_table.c.retired.is_(False))).all()
    access, equipment = all_features(rows)
    return {"districts": _districts(conn), "access_features": access, "equipment": equipment}


@bp.route("/")
def search() -> str:
    """Find premises free for a whole time window, with the size and features asked for."""
    form = Form(request.args)
    results = None
    window = None
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    with read_transaction(runtime().engine) as conn:
        choices = _choices(conn)
        if request.args.get("date"):
            day = form.date("date")
            start = form.clock("start")
            end = form.clock("end")
            query = _filters(form)
            if form.ok and day and start and end is not None:
                first, last = local_span(day, start, end, zone)
                if (last - first) > timedelta(hours=MAX_SEARCH_HOURS):
                    form.error("end", _("Search at most 14 days at a time."))
                else:
                    window = Slot(first, last)
            if form.ok and window is not None:
                candidates = matching_premises(conn, query)
                busy = busy_between(conn, [r.id for r in candidates], window) if candidates else {}
                results = [
                    row
                    for row in candidates
                    if free_for_whole(
                        OpeningHours.parse(row.opening_hours),
                        ZoneInfo(row.timezone),
                        window,
                        busy[row.id],
                    )
                ]
    return render_template(
        "public/search.html", form=form, results=results, window=window, zone=zone, **choices
    )


@bp.route("/premises")
def premises_list() -> str:
    form = Form(request.args)
    with read_transaction(runtime().engine) as conn:
        choices = _choices(conn)
        query = _filters(form)
        rows = matching_premises(conn, query) if form.ok else []
    return render_template("public/premises_list.html", form=form, rows=rows, **choices)


@bp.route("/premises/<premises_id>")
def premises_page(premises_id: str) -> str:
    at = now()
    form = Form(request.args)
    with read_transaction(runtime().engine) as conn:
        row = premises_row(conn, premises_id)
        zone = ZoneInfo(row.timezone)
        today = at.astimezone(zone).date()
        asked = form.date("week", required=False) if form.get("week") else None
        monday = monday_of(asked or today)
        week = week_of(conn, row, monday, at)
    return render_template(
        "public/premises.html",
        row=row,
        week=week,
        zone=zone,
        now=at,
        form=form,
        this_week=monday_of(today),
        weekdays=WEEKDAYS,
        slot_url=slot_url_for(row),
    )


def slot_url_for(row: Any) -> Any:
    """Where a free slot leads: the booking form, or the pop-up form for residents."""
    user = page_user()
    resident = user is not None and user.role == "resident"

    def url(start: datetime, end: datetime) -> str:
        zone = ZoneInfo(row.timezone)
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        values = {
            "premises_id": row.id,
            "date": local_start.date().isoformat(),
            "start": f"{local_start:%H:%M}",
            "end": f"{local_end:%H:%M}",
        }
        if resident:
            return url_for("popup.new", **values)
        return url_for("member.new_booking", **values)

    return url


@bp.route("/accessibility")
def accessibility() -> str:
    return render_template("public/accessibility.html")


# --- the free-premises registry --------------------------------------------------------
# The page reads the catalogue (inline, so a change shows at once); the CSV download is the
# open-data file of GET /api/v1/registry/free-premises, from the registry projection.


@bp.route("/registry")
def registry() -> WerkzeugResponse | str:
    if request.args.get("format") == "csv":
        return registry_download()
    at = now()
    with read_transaction(runtime().engine) as conn:
        rows = catalogue_registry_rows(conn, at)
    return render_template("public/registry.html", rows=rows, now=at)


@bp.route("/registry.csv")
def registry_download() -> WerkzeugResponse:
    """The open data itself is served by the API, in one format for everyone."""
    return redirect(url_for("api_registry.free_premises", format="csv"), code=303)
