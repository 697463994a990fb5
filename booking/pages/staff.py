"""Staff pages: the queue of bookings and pop-up requests waiting for a decision (approve,
reject with a reason; replies go through each pop-up request's message thread)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from booking.api.bookings import notes_opened
from booking.api.popups import _rows as _popup_rows
from booking.api.popups import popup_row
from booking.domain.commands import DecideBooking
from booking.domain.errors import DomainError
from booking.domain.popups import DecidePopup
from booking.http import runtime
from booking.pages.common import STAFF, Form, metadata, page_user, redirect_to, run, signed_in_as
from booking.pages.messages import translate
from booking.service import premises_of_booking, run_premises_command
from booking.tables import organisations
from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.catalogue import premises_table
from projections.popups import popups_table

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _pending(conn: Any) -> list[Any]:
    b, p, o = bookings_table, premises_table, organisations
    return conn.execute(
        select(
            b,
            p.c.timezone,
            p.c.name.label("premises_name"),
            o.c.name.label("organisation_name"),
        )
        .join(p, p.c.id == b.c.premises_id)
        .outerjoin(o, o.c.id == b.c.organisation_id)
        .where(b.c.status == "pending_approval")
        .order_by(b.c.start)
    ).all()


@bp.route("/requests")
@signed_in_as(*STAFF)
def requests(form: Form | None = None, failed: str | None = None) -> Any:
    with read_transaction(runtime().engine) as conn:
        pending = notes_opened(conn, _pending(conn))
        popups = conn.execute(
            _popup_rows()
            .where(popups_table.c.status == "pending")
            .order_by(popups_table.c.decision_deadline)
        ).all()
    page = render_template(
        "staff/requests.html",
        pending=pending,
        popups=popups,
        form=form or Form(),
        failed=failed,
    )
    return (page, 422) if form is not None and not form.ok else page


def _reason_form(decision: str, missing: str) -> tuple[Form, str]:
    """The approve/reject form: a reason is required to reject, said as `missing`."""
    form = Form(request.form)
    reason = form.text("reason", 2000, required=decision == "reject")
    if form.errors.get("reason"):
        form.errors["reason"] = [missing]
    return form, reason


@bp.route("/bookings/<booking_id>/<decision>", methods=["POST"])
@signed_in_as(*STAFF)
def decide(booking_id: str, decision: str) -> Any:
    user = page_user()
    assert user is not None
    if decision not in ("approve", "reject"):
        return requests()
    form, reason = _reason_form(
        decision, _("Give the reason for rejecting; the booker will see it.")
    )
    if not form.ok:
        return requests(form, booking_id)
    command = DecideBooking(
        user.actor, booking_id, decision == "approve", reason, datetime.now(UTC)
    )
    try:
        run(
            lambda conn: run_premises_command(
                conn,
                runtime().premises,
                premises_of_booking(conn, booking_id),
                command,
                metadata(),
                now=runtime().clock(),
            )
        )
    except DomainError as error:
        form.error("reason", translate(str(error)))
        return requests(form, booking_id)
    flash(_("Booking approved.") if decision == "approve" else _("Booking rejected."), "success")
    return redirect_to("staff.requests")


@bp.route("/popups/<request_id>/<decision>", methods=["POST"])
@signed_in_as(*STAFF)
def decide_popup(request_id: str, decision: str) -> Any:
    """Approve (a booking is placed) or reject (with a reason) a pop-up request."""
    user = page_user()
    assert user is not None
    if decision not in ("approve", "reject"):
        return requests()
    form, reason = _reason_form(
        decision, _("Give the reason for rejecting; the requester will see it.")
    )
    if not form.ok:
        return requests(form, request_id)
    approve = decision == "approve"

    def handle(conn: Any) -> Any:
        row = popup_row(conn, request_id)
        command = DecidePopup(
            user.actor, request_id, approve, str(uuid.uuid4()), reason, datetime.now(UTC)
        )
        return run_premises_command(
            conn, runtime().premises, row.premises_id, command, metadata(), now=runtime().clock()
        )

    try:
        run(handle)
    except DomainError as error:
        form.error("reason", translate(str(error)))
        return requests(form, request_id)
    flash(_("Pop-up request approved.") if approve else _("Pop-up request rejected."), "success")
    return redirect_to("staff.requests")
