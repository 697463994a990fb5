"""Pages for association members (bookers) and staff booking for them: book a slot once or
weekly, see the organisation's bookings, cancel with a reason, and the calendar feed links."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import or_, select
from werkzeug.exceptions import Forbidden, NotFound

from booking.api.bookings import booking_rows, visible_to
from booking.api.premises import premises_row
from booking.domain.commands import (
    BookingRequest,
    CancelBooking,
    CancelSeries,
    PlaceBooking,
    PlaceSeries,
)
from booking.domain.errors import DomainError
from booking.http import runtime
from booking.pages.common import (
    BOOKERS,
    STAFF,
    Form,
    local_span,
    metadata,
    page_user,
    redirect_to,
    run,
    signed_in_as,
    span_text,
)
from booking.pages.threads import post_to_thread, read_thread
from booking.reasons import skipped_reason
from booking.service import premises_of_booking, premises_of_series, run_premises_command
from booking.tables import organisations
from events.slot import Slot
from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.catalogue import premises_table

bp = Blueprint("member", __name__)
# Which form field shows a refusal about which part of the booking.
FIELDS = {
    "premises_id": "premises_id",
    "start": "start",
    "end": "end",
    "attendees": "attendees",
    "title": "title",
    "organisation_id": "organisation_id",
    "rrule": "repeat_until",
}


@bp.route("/my")
@signed_in_as()
def home() -> str:
    return render_template("member/home.html")


def _premises_choices(conn: Any) -> list[Any]:
    t = premises_table
    return conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all()


def _organisation_choices(conn: Any) -> list[Any]:
    t = organisations
    return conn.execute(select(t.c.id, t.c.name).order_by(t.c.name)).all()


@bp.route("/bookings/new", methods=["GET", "POST"])
@signed_in_as(*BOOKERS)
def new_booking() -> Any:
    user = page_user()
    assert user is not None
    posted = request.method == "POST"
    form = Form(request.form if posted else request.args, attendees="1", repeat="none")
    with read_transaction(runtime().engine) as conn:
        choices = _premises_choices(conn)
        organisations_ = _organisation_choices(conn) if user.role in STAFF else []
        row = None
        if form.get("premises_id"):
            row = next((r for r in choices if r.id == form.get("premises_id")), None)
    context = {"form": form, "choices": choices, "organisations": organisations_, "row": row}
    if not posted:
        return render_template("member/new_booking.html", **context)

    if row is None:
        form.error("premises_id", _("Choose the premises."))
    day = form.date("date")
    start = form.clock("start")
    end = form.clock("end")
    title = form.text("title", 300, required=True)
    attendees = form.integer("attendees", 1, 100_000)
    notes = form.text("notes", 5000)
    weekly = form.get("repeat") == "weekly"
    until = form.date("repeat_until") if weekly else None
    organisation_id = user.organisation_id
    if user.role in STAFF:
        organisation_id = form.get("organisation_id") or None
    if not form.ok or row is None or day is None or start is None or end is None:
        return render_template("member/new_booking.html", **context), 422
    zone = ZoneInfo(row.timezone)
    first, last = local_span(day, start, end, zone)
    if until is not None and until < day:
        form.error("repeat_until", _("The last date must not be before the first."))
        return render_template("member/new_booking.html", **context), 422
    booking_request = BookingRequest(
        premises_id=row.id,
        slot=Slot(first, last),
        title=title,
        attendees=attendees or 1,
        public=form.checked("public"),
        notes=notes,
        organisation_id=organisation_id,
    )
    now = datetime.now(UTC)
    new_id = str(uuid.uuid4())
    command: PlaceBooking | PlaceSeries
    if weekly and until is not None:
        command = PlaceSeries(
            user.actor, new_id, booking_request, f"FREQ=WEEKLY;UNTIL={until:%Y%m%d}", "skip", now
        )
    else:
        command = PlaceBooking(user.actor, new_id, booking_request, now)

    def place(conn: Any) -> Any:
        # Notes may hold contact details: sealed with the booker's key before the log sees them.
        sealed = replace(command, request=_sealed(conn, user.id, booking_request))
        return run_premises_command(conn, runtime().premises, row.id, sealed, metadata())

    try:
        recorded = run(place)
    except DomainError as error:
        form.take_domain_error(error, FIELDS, zone)
        return render_template("member/new_booking.html", **context), 422
    placed = [r for r in recorded if r.type == "BookingPlaced"]
    if isinstance(command, PlaceSeries):
        skipped = recorded[0].data["skipped"]
        made = ngettext(
            "%(num)d weekly booking made.", "%(num)d weekly bookings made.", len(placed)
        )
        if skipped:
            made += " " + ngettext(
                "%(num)d date could not be booked:",
                "%(num)d dates could not be booked:",
                len(skipped),
            )
        flash(made, "success")
        # Each date that was not booked, and why, in the page's language.
        for item in skipped:
            when = span_text(
                datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"]), zone
            )
            flash(f"{when}: {skipped_reason(str(item.get('reason', '')))}", "info")
        return redirect_to("member.my_bookings")
    if placed[0].data["status"] == "pending_approval":
        flash(_("Booking sent. Staff will approve or reject it."), "success")
    else:
        flash(_("Booking confirmed."), "success")
    return redirect_to("member.booking_page", booking_id=new_id)


@bp.route("/my/bookings")
@signed_in_as(*BOOKERS)
def my_bookings() -> str:
    user = page_user()
    assert user is not None
    show = request.args.get("show", "upcoming")
    b, p = bookings_table, premises_table
    sql = select(b, p.c.timezone, p.c.name.label("premises_name")).join(
        p, p.c.id == b.c.premises_id
    )
    now = datetime.now(UTC)
    if show == "past":
        sql = sql.where(b.c.end <= now).order_by(b.c.start.desc())
    else:
        show = "upcoming"
        sql = sql.where(b.c.end > now).order_by(b.c.start)
    if user.role not in STAFF:
        mine = b.c.booked_by == user.id
        if user.organisation_id:
            mine = or_(mine, b.c.organisation_id == user.organisation_id)
        sql = sql.where(mine)
    with read_transaction(runtime().engine) as conn:
        rows = conn.execute(sql.limit(500)).all()
    return render_template("member/bookings.html", rows=rows, show=show, now=now)


def _sealed(conn: Any, user_id: str, booking_request: BookingRequest) -> BookingRequest:
    notes = runtime().vault.seal_for(conn, user_id, booking_request.notes)
    return replace(booking_request, notes=notes)


def _visible_booking(booking_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        rows = booking_rows(conn, [booking_id])
        if not rows:
            raise NotFound()
        if not visible_to(user, rows[0]):
            raise Forbidden()
        premises = premises_row(conn, rows[0].premises_id)
    return rows[0], premises


def _render_booking(
    booking_id: str, form: Form | None = None, message_form: Form | None = None
) -> str:
    row, premises = _visible_booking(booking_id)
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        thread = read_thread(conn, user, "booking", booking_id)
    return render_template(
        "member/booking.html",
        row=row,
        premises=premises,
        zone=ZoneInfo(premises.timezone),
        form=form or Form(),
        message_form=message_form or Form(),
        thread=thread,
        now=datetime.now(UTC),
    )


@bp.route("/my/bookings/<booking_id>")
@signed_in_as(*BOOKERS)
def booking_page(booking_id: str) -> str:
    return _render_booking(booking_id)


@bp.route("/my/bookings/<booking_id>/messages", methods=["POST"])
@signed_in_as(*BOOKERS)
def message(booking_id: str) -> Any:
    user = page_user()
    assert user is not None
    _visible_booking(booking_id)
    form = Form(request.form)
    body = form.text("body", 5000, required=True)
    if not form.ok:
        return _render_booking(booking_id, message_form=form), 422
    run(lambda conn: post_to_thread(conn, user, "booking", booking_id, body))
    flash(_("Message sent."), "success")
    return redirect_to("member.booking_page", booking_id=booking_id, _anchor="messages-title")


@bp.route("/my/bookings/<booking_id>/cancel", methods=["POST"])
@signed_in_as(*BOOKERS)
def cancel(booking_id: str) -> Any:
    user = page_user()
    assert user is not None
    row, premises = _visible_booking(booking_id)
    form = Form(request.form)
    reason = form.text("reason", 2000)
    whole_series = form.get("scope") == "series" and row.series_id
    if form.ok:
        now = datetime.now(UTC)
        try:
            if whole_series:
                command: Any = CancelSeries(user.actor, row.series_id, reason, now)
                run(
                    lambda conn: run_premises_command(
                        conn,
                        runtime().premises,
                        premises_of_series(conn, row.series_id),
                        command,
                        metadata(),
                    )
                )
                flash(_("The future bookings of the series are cancelled."), "success")
            else:
                command = CancelBooking(user.actor, booking_id, reason, now)
                recorded = run(
                    lambda conn: run_premises_command(
                        conn,
                        runtime().premises,
                        premises_of_booking(conn, booking_id),
                        command,
                        metadata(),
                    )
                )
                if recorded[0].data["late"]:
                    flash(_("Booking cancelled (after the cancellation deadline)."), "success")
                else:
                    flash(_("Booking cancelled."), "success")
            return redirect_to("member.booking_page", booking_id=booking_id)
        except DomainError as error:
            form.take_domain_error(error, {"_schema": "reason"}, ZoneInfo(premises.timezone))
    return _render_booking(booking_id, form), 422
