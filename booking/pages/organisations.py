"""Pages for joining organisations: a person asks to join and leaves (`/my/organisations`),
staff approve or reject the requests (`/staff/memberships`). The rules are
booking.memberships'; these pages only show them, in the reader's language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from booking import memberships
from booking.domain.errors import DomainError
from booking.http import new_id, now, runtime
from booking.pages.common import STAFF, Form, page_user, redirect_to, run, signed_in_as
from booking.tables import organisations, users
from events.sql import read_transaction

bp = Blueprint("organisations", __name__)


def _said(error: DomainError) -> str:
    """booking.memberships' refusals in the reader's language."""
    text = str(error)
    known: dict[str, str] = {
        "You are a member of this organisation already.": _(
            "You are a member of this organisation already."
        ),
        "You have asked to join this organisation already.": _(
            "You have asked to join this organisation already."
        ),
        "Someone else decides your own request to join.": _(
            "Someone else decides your own request to join."
        ),
        "The request was decided already.": _("The request was decided already."),
    }
    said: str = known.get(text, text)
    if text.startswith("No organisation"):
        said = _("Choose an organisation from the list.")
    elif text.startswith("The request is "):
        said = _("The request was decided already.")
    return said


def _own_page(form: Form | None = None) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        mine = memberships.organisations_of(conn, user.id)
        joined = {
            row.organisation_id
            for row in conn.execute(
                select(memberships.memberships.c.organisation_id).where(
                    memberships.memberships.c.user_id == user.id
                )
            )
        }
        requests = memberships.listed_for(conn, runtime().vault, user.id)
        choices = conn.execute(
            select(organisations.c.id, organisations.c.name).order_by(organisations.c.name)
        ).all()
    page = render_template(
        "member/organisations.html",
        mine=mine,
        joined=joined,
        requests=requests,
        choices=[c for c in choices if c.id not in {o.id for o in mine}],
        form=form or Form(),
    )
    return (page, 422) if form is not None and not form.ok else page


@bp.route("/my/organisations")
@signed_in_as()
def mine() -> Any:
    return _own_page()


@bp.route("/my/organisations/ask", methods=["POST"])
@signed_in_as()
def ask() -> Any:
    user = page_user()
    assert user is not None
    form = Form(request.form)
    organisation_id = form.required("organisation_id", _("Choose an organisation."))
    message = form.text("message", 2000)
    if not form.ok:
        return _own_page(form)
    try:
        run(
            lambda conn: memberships.ask(
                conn, runtime().vault, user, organisation_id, message, new_id(), now()
            )
        )
    except DomainError as error:
        form.error("organisation_id", _said(error))
        return _own_page(form)
    flash(_("Request sent. Staff will answer it."), "success")
    return redirect_to("organisations.mine")


@bp.route("/my/organisations/<organisation_id>/leave", methods=["POST"])
@signed_in_as()
def leave(organisation_id: str) -> Any:
    user = page_user()
    assert user is not None
    try:
        run(lambda conn: memberships.leave(conn, user, organisation_id))
    except DomainError:
        form = Form()
        form.error("_form", _("You cannot leave that organisation here."))
        return _own_page(form)
    flash(_("You left the organisation."), "success")
    return redirect_to("organisations.mine")


def _staff_page(form: Form | None = None, failed: str | None = None) -> Any:
    with read_transaction(runtime().engine) as conn:
        pending = memberships.listed(conn, runtime().vault, "pending")
        for found in pending:  # who asks, for staff to recognise (erased: a dash)
            person = conn.execute(
                select(users.c.name, users.c.email).where(users.c.id == found["user_id"])
            ).one()
            reader = runtime().vault.reader(conn)
            found["person"] = reader.open(person.name) or reader.open(person.email) or "–"
    page = render_template(
        "staff/memberships.html", pending=pending, form=form or Form(), failed=failed
    )
    return (page, 422) if form is not None and not form.ok else page


@bp.route("/staff/memberships")
@signed_in_as(*STAFF)
def pending() -> Any:
    return _staff_page()


@bp.route("/staff/memberships/<request_id>/<decision>", methods=["POST"])
@signed_in_as(*STAFF)
def decide(request_id: str, decision: str) -> Any:
    user = page_user()
    assert user is not None
    if decision not in ("approve", "reject"):
        return _staff_page()
    form = Form(request.form)
    reason = form.text("reason", 2000, required=decision == "reject")
    if form.errors.get("reason"):
        form.errors["reason"] = [_("Give the reason for rejecting; the person will see it.")]
    if not form.ok:
        return _staff_page(form, request_id)
    approve = decision == "approve"
    try:
        run(
            lambda conn: memberships.decide(
                conn, runtime().vault, user, request_id, approve, reason, now()
            )
        )
    except DomainError as error:
        form.error("reason", _said(error))
        return _staff_page(form, request_id)
    flash(_("Request approved.") if approve else _("Request rejected."), "success")
    return redirect_to("organisations.pending")
