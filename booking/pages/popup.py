"""Pop-up organisers: ask for a short slot, follow its status, talk with staff, withdraw.

The same use cases as /api/v1/popup-requests (booking.usecases.popups); the description
is sealed with the requester's key before it reaches the log.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from booking.domain.errors import DomainError, NotAllowed
from booking.http import new_id, now, runtime, unit_for
from booking.pages.common import (
    Form,
    page_user,
    redirect_to,
    run,
    signed_in_as,
)
from booking.pages.localtime import form_span
from booking.pages.threads import post_to_thread, read_thread
from booking.queries.popups import popups_of, visible_popup
from booking.usecases import popups as cases
from events.sql import read_transaction
from projections.catalogue import premises_table

bp = Blueprint("popup", __name__, url_prefix="/popup")
FIELDS = {
    "premises_id": "premises_id",
    "start": "start",
    "end": "end",
    "expected_attendees": "expected_attendees",
    "title": "title",
}


def _choices(conn: Any) -> list[Any]:
    t = premises_table
    rows = conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all()
    return [r for r in rows if r.rules.get("popup_allowed")]


@bp.route("/new", methods=["GET", "POST"])
@signed_in_as()
def new() -> Any:
    user = page_user()
    assert user is not None
    posted = request.method == "POST"
    form = Form(request.form if posted else request.args, expected_attendees="1")
    with read_transaction(runtime().engine) as conn:
        choices = _choices(conn)
    context = {"form": form, "choices": choices}
    if not posted:
        return render_template("popup/new.html", **context)
    row = next((r for r in choices if r.id == form.get("premises_id")), None)
    if row is None:
        form.error("premises_id", _("Choose premises that take pop-up requests."))
    day, start, end = form.date("date"), form.clock("start"), form.clock("end")
    title = form.text("title", 300, required=True)
    description = form.text("description", 5000)
    attendees = form.integer("expected_attendees", 1, 100_000)
    if not form.ok or row is None or day is None or start is None or end is None:
        return render_template("popup/new.html", **context), 422
    zone = ZoneInfo(row.timezone)
    span, twice = form_span(form, day, start, end, zone)
    context["twice"] = twice
    if span is None:
        return render_template("popup/new.html", **context), 422
    given = cases.PopupInput(row.id, span[0], span[1], title, description, attendees or 1)
    request_id, booking_id, at = new_id(), new_id(), now()

    def handle(conn: Any) -> cases.PopupResult:
        unit = unit_for(conn, user.id)
        return cases.request_popup(unit, user.actor, given, request_id, booking_id, at)

    try:
        asked = run(handle)
    except DomainError as error:
        form.take_domain_error(error, FIELDS, zone)
        return render_template("popup/new.html", **context), 422
    if asked.approved:
        flash(_("Your pop-up slot is approved."), "success")
    else:
        flash(_("Request sent. Staff will answer by the deadline shown."), "success")
    return redirect_to("popup.page", request_id=request_id)


@bp.route("/mine")
@signed_in_as()
def mine() -> str:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        rows = popups_of(conn, user.actor)
    return render_template("popup/mine.html", rows=rows)


def _visible(request_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        try:
            row = visible_popup(conn, user.actor, request_id)
        except NotAllowed:
            raise Forbidden() from None
        thread = read_thread(conn, user, "popup", request_id)
        description = runtime().vault.reader(conn).open(row.description) if row.description else ""
        premises = conn.execute(
            select(premises_table).where(premises_table.c.id == row.premises_id)
        ).one()
    return row, thread, description, premises


def _render_page(request_id: str, form: Form | None = None, status: int = 200) -> Any:
    row, thread, description, premises = _visible(request_id)
    page = render_template(
        "popup/request.html",
        row=row,
        thread=thread,
        description=description,
        premises=premises,
        zone=ZoneInfo(row.timezone),
        form=form or Form(),
        now=now(),
    )
    return page if status == 200 else (page, status)


@bp.route("/<request_id>")
@signed_in_as()
def page(request_id: str) -> Any:
    return _render_page(request_id)


@bp.route("/<request_id>/withdraw", methods=["POST"])
@signed_in_as()
def withdraw(request_id: str) -> Any:
    user = page_user()
    assert user is not None
    _visible(request_id)  # 403 for someone else's request before anything else
    at = now()
    try:
        run(lambda conn: cases.withdraw_popup(unit_for(conn, user.id), user.actor, request_id, at))
    except DomainError as error:
        form = Form()
        form.take_domain_error(error, {})
        return _render_page(request_id, form, 409)
    flash(_("The request is withdrawn."), "success")
    return redirect_to("popup.page", request_id=request_id)


@bp.route("/<request_id>/messages", methods=["POST"])
@signed_in_as()
def message(request_id: str) -> Any:
    user = page_user()
    assert user is not None
    form = Form(request.form)
    body = form.text("body", 5000, required=True)
    if not form.ok:
        return _render_page(request_id, form, 422)
    run(lambda conn: post_to_thread(conn, user, "popup", request_id, body))
    flash(_("Message sent."), "success")
    return redirect_to("popup.page", request_id=request_id, _anchor="messages-title")
