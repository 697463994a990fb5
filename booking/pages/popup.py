"""Pop-up organisers: ask for a short slot, follow its status, talk with staff, withdraw.

The same domain commands as /api/v1/popup-requests (RequestPopup, WithdrawPopup); the
description is sealed with the requester's key before it reaches the log.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from booking import strong_identity
from booking.api.popups import _rows, popup_row, visible_to
from booking.auth import signed_in_strongly
from booking.domain.errors import DomainError, StrongIdentityRequired
from booking.domain.popups import RequestPopup, WithdrawPopup
from booking.http import runtime
from booking.pages.common import (
    Form,
    local_span,
    metadata,
    page_user,
    redirect_to,
    run,
    signed_in_as,
)
from booking.pages.oidc import strong_identity_page
from booking.pages.threads import post_to_thread, read_thread
from booking.service import run_premises_command
from events.slot import Slot
from events.sql import read_transaction
from projections.catalogue import premises_table
from projections.popups import popups_table

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
    first, last = local_span(day, start, end, zone)
    request_id, booking_id = str(uuid.uuid4()), str(uuid.uuid4())
    rt = runtime()

    def handle(conn: Any) -> Any:
        rt.vault.ensure_key(conn, user.id)
        sealed = rt.vault.reader(conn).seal(user.id, description) if description else ""
        command = RequestPopup(
            user.actor,
            request_id,
            booking_id,
            row.id,
            Slot(first, last),
            title,
            sealed,
            attendees or 1,
            datetime.now(UTC),
        )
        strong_identity.check(conn, row.id, user, signed_in_strongly())
        return run_premises_command(conn, rt.premises, row.id, command, metadata())

    try:
        recorded = run(handle)
    except StrongIdentityRequired:
        return strong_identity_page()
    except DomainError as error:
        form.take_domain_error(error, FIELDS, zone)
        return render_template("popup/new.html", **context), 422
    if any(r.type == "PopupApproved" for r in recorded):
        flash(_("Your pop-up slot is approved."), "success")
    else:
        flash(_("Request sent. Staff will answer by the deadline shown."), "success")
    return redirect_to("popup.page", request_id=request_id)


@bp.route("/mine")
@signed_in_as()
def mine() -> str:
    user = page_user()
    assert user is not None
    sql = _rows().where(popups_table.c.requested_by == user.id).order_by(popups_table.c.start)
    with read_transaction(runtime().engine) as conn:
        rows = conn.execute(sql.limit(500)).all()
    return render_template("popup/mine.html", rows=rows)


def _visible(request_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        row = popup_row(conn, request_id)
        if not visible_to(user, row):
            raise Forbidden()
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
        now=datetime.now(UTC),
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
    row, *_rest = _visible(request_id)
    command = WithdrawPopup(user.actor, request_id, datetime.now(UTC))
    try:
        run(
            lambda conn: run_premises_command(
                conn, runtime().premises, row.premises_id, command, metadata()
            )
        )
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
