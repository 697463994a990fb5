"""Pages for association members (bookers) and staff booking for them: book a slot once or
weekly, see the organisation's bookings, cancel with a reason, and the calendar feed links."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug.exceptions import Forbidden, NotFound

from booking import memberships
from booking.auth import signed_in_strongly
from booking.domain.errors import DomainError, NotAllowed, StrongIdentityRequired
from booking.domain.errors import NotFound as NoSuchThing
from booking.http import new_id, now, runtime, unit_for
from booking.pages.common import (
    BOOKERS,
    STAFF,
    Form,
    page_user,
    redirect_to,
    run,
    signed_in_as,
    span_text,
)
from booking.pages.localtime import form_span
from booking.pages.oidc import strong_identity_page
from booking.pages.threads import post_to_thread, read_thread
from booking.queries.bookings import member_bookings, visible_booking
from booking.queries.paging import PageRequest, next_url
from booking.reasons import skipped_reason
from booking.tables import organisations
from booking.usecases import bookings as cases
from events.sql import read_transaction
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
    return list(conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all())


def _organisation_choices(conn: Any) -> list[Any]:
    t = organisations
    return list(conn.execute(select(t.c.id, t.c.name).order_by(t.c.name)).all())


@bp.route("/bookings/new", methods=["GET", "POST"])
@signed_in_as(*BOOKERS)
def new_booking() -> Any:
    user = page_user()
    assert user is not None
    posted = request.method == "POST"
    form = Form(request.form if posted else request.args, attendees="1", repeat="none")
    with read_transaction(runtime().engine) as conn:
        choices = _premises_choices(conn)
        organisations_ = (
            _organisation_choices(conn)
            if user.role in STAFF
            else memberships.organisations_of(conn, user.id)
        )
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
    elif len(organisations_) > 1:  # booking.memberships: one of theirs, named
        try:
            with read_transaction(runtime().engine) as conn:
                organisation_id = memberships.organisation_for_booking(
                    conn, user.actor, form.get("organisation_id") or None
                )
        except DomainError:
            form.error("organisation_id", _("Choose the organisation this booking is for."))
    if not form.ok or row is None or day is None or start is None or end is None:
        return render_template("member/new_booking.html", **context), 422
    zone = ZoneInfo(row.timezone)
    span, twice = form_span(form, day, start, end, zone)
    context["twice"] = twice
    if span is None:
        return render_template("member/new_booking.html", **context), 422
    if until is not None and until < day:
        form.error("repeat_until", _("The last date must not be before the first."))
        return render_template("member/new_booking.html", **context), 422
    given = cases.BookingInput(
        premises_id=row.id,
        start=span[0],
        end=span[1],
        title=title,
        attendees=attendees or 1,
        public=form.checked("public"),
        notes=notes,
        organisation_id=organisation_id,
    )
    made_id, at, strong = new_id(), now(), signed_in_strongly()

    def place(conn: Any) -> Any:
        unit = unit_for(conn, user.id)
        if weekly and until is not None:
            rrule = f"FREQ=WEEKLY;UNTIL={until:%Y%m%d}"
            return cases.place_series(unit, user.actor, given, rrule, "skip", made_id, at, strong)
        return cases.place_booking(unit, user.actor, given, made_id, at, strong)

    try:
        done = run(place)
    except StrongIdentityRequired:
        return strong_identity_page()
    except DomainError as error:
        form.take_domain_error(error, FIELDS, zone)
        return render_template("member/new_booking.html", **context), 422
    if isinstance(done, cases.SeriesPlaced):
        skipped = done.skipped
        made = ngettext(
            "%(num)d weekly booking made.", "%(num)d weekly bookings made.", len(done.bookings)
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
            flash(f"{span_text(item.start, item.end, zone)}: {skipped_reason(item.reason)}", "info")
        return redirect_to("member.my_bookings")
    if done.booking.status == "pending_approval":
        flash(_("Booking sent. Staff will approve or reject it."), "success")
    else:
        flash(_("Booking confirmed."), "success")
    return redirect_to("member.booking_page", booking_id=made_id)


@bp.route("/my/bookings")
@signed_in_as(*BOOKERS)
def my_bookings() -> str:
    user = page_user()
    assert user is not None
    show = request.args.get("show", "upcoming")
    if show != "past":
        show = "upcoming"
    at = now()
    page = PageRequest.of(after=request.args.get("after"))
    with read_transaction(runtime().engine) as conn:
        found = member_bookings(conn, user.actor, at, show == "past", page)
    more = next_url(request.full_path, found.next) if found.next else None
    return render_template("member/bookings.html", rows=found.rows, show=show, now=at, more=more)


def _visible_booking(booking_id: str) -> Any:
    user = page_user()
    assert user is not None
    rt = runtime()
    with read_transaction(rt.engine) as conn:
        try:
            row = visible_booking(conn, rt.vault, user.actor, booking_id)
        except NoSuchThing:
            raise NotFound() from None
        except NotAllowed:
            raise Forbidden() from None
        premises = conn.execute(
            select(premises_table).where(premises_table.c.id == row.premises_id)
        ).one()
    return row, premises


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
        now=now(),
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
        at = now()
        try:
            if whole_series:
                series_id = row.series_id
                run(
                    lambda conn: cases.cancel_series(
                        unit_for(conn, user.id), user.actor, series_id, reason, at
                    )
                )
                flash(_("The future bookings of the series are cancelled."), "success")
            else:
                changed = run(
                    lambda conn: cases.cancel_booking(
                        unit_for(conn, user.id), user.actor, booking_id, reason, at
                    )
                )
                if changed.booking.late:
                    flash(_("Booking cancelled (after the cancellation deadline)."), "success")
                else:
                    flash(_("Booking cancelled."), "success")
            return redirect_to("member.booking_page", booking_id=booking_id)
        except DomainError as error:
            form.take_domain_error(error, {"_schema": "reason"}, ZoneInfo(premises.timezone))
    return _render_booking(booking_id, form), 422
