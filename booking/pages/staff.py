"""Staff pages: the queue of bookings and pop-up requests waiting for a decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from booking.domain.commands import DecideBooking
from booking.domain.errors import DomainError
from booking.http import runtime
from booking.pages.common import STAFF, Form, metadata, page_user, redirect_to, run, signed_in_as
from booking.pages.messages import translate
from booking.service import premises_of_booking, run_premises_command
from booking.tables import organisations
from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.catalogue import premises_table

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
        pending = _pending(conn)
    # TODO(popups): list pending pop-up requests (GET /api/v1/popup-requests?status=pending)
    # with approve / reject / reply once the pop-up commands exist (issue: pop-up requests).
    # TODO(messages): a reply form per request once the message threads exist.
    page = render_template(
        "staff/requests.html", pending=pending, form=form or Form(), failed=failed
    )
    return (page, 422) if form is not None and not form.ok else page


@bp.route("/bookings/<booking_id>/<decision>", methods=["POST"])
@signed_in_as(*STAFF)
def decide(booking_id: str, decision: str) -> Any:
    user = page_user()
    assert user is not None
    if decision not in ("approve", "reject"):
        return requests()
    form = Form(request.form)
    reason = form.text("reason", 2000, required=decision == "reject")
    if form.errors.get("reason"):
        form.errors["reason"] = [_("Give the reason for rejecting; the booker will see it.")]
    if not form.ok:
        return requests(form, booking_id)
    command = DecideBooking(
        user.actor, booking_id, decision == "approve", reason, datetime.now(UTC)
    )
    try:
        run(
            lambda conn: run_premises_command(
                conn, runtime().premises, premises_of_booking(conn, booking_id), command, metadata()
            )
        )
    except DomainError as error:
        form.error("reason", translate(str(error)))
        return requests(form, booking_id)
    flash(_("Booking approved.") if decision == "approve" else _("Booking rejected."), "success")
    return redirect_to("staff.requests")
