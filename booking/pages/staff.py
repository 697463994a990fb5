"""Staff pages: the queue of bookings and pop-up requests waiting for a decision (approve,
reject with a reason; replies go through each pop-up request's message thread)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _

from booking.domain.errors import DomainError
from booking.http import new_id, now, runtime, unit_for
from booking.pages.common import STAFF, Form, page_user, redirect_to, run, signed_in_as
from booking.pages.messages import translate
from booking.queries.bookings import pending_bookings
from booking.queries.popups import pending_popups
from booking.usecases import bookings as booking_cases
from booking.usecases import popups as popup_cases
from events.sql import read_transaction

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.route("/requests")
@signed_in_as(*STAFF)
def requests(form: Form | None = None, failed: str | None = None) -> Any:
    rt = runtime()
    with read_transaction(rt.engine) as conn:
        pending = pending_bookings(conn, rt.vault)
        popups = pending_popups(conn)
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
    approve, at = decision == "approve", now()
    try:
        run(
            lambda conn: booking_cases.decide_booking(
                unit_for(conn, user.id), user.actor, booking_id, approve, reason, at
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
    approve, booking_id, at = decision == "approve", new_id(), now()

    def handle(conn: Any) -> popup_cases.PopupResult:
        unit = unit_for(conn, user.id)
        return popup_cases.decide_popup(
            unit, user.actor, request_id, approve, reason, booking_id, at
        )

    try:
        run(handle)
    except DomainError as error:
        form.error("reason", translate(str(error)))
        return requests(form, request_id)
    flash(_("Pop-up request approved.") if approve else _("Pop-up request rejected."), "success")
    return redirect_to("staff.requests")
