"""Pages for joining organisations: a person asks to join and leaves (`/my/organisations`),
staff approve or reject the requests and name each organisation's contact person
(`/staff/memberships`), and a contact person decides the requests to their organisations
(`/my/organisations/requests`). The rules are booking.memberships' and
booking.usecases.accounts'; these pages only show them, in the reader's language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from booking import memberships
from booking.domain.errors import DomainError, RuleBroken
from booking.http import new_id, now, request_metadata, runtime
from booking.pages.common import STAFF, Form, page_user, redirect_to, run, signed_in_as
from booking.tables import organisations, users
from booking.usecases import accounts as accounts_handlers
from events.sql import read_transaction

bp = Blueprint("organisations", __name__)


def _said(error: DomainError) -> str:
    """booking.memberships' refusals in the reader's language."""
    text = str(error)
    if isinstance(error, RuleBroken):
        text = " ".join(m for messages in error.problems.values() for m in messages)
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
        memberships.RETIRED: _("The organisation is retired: it takes no new members."),
        "Staff and the organisation's contact person decide its requests.": _(
            "Staff and the organisation's contact person decide its requests."
        ),
        "The organisation is retired.": _("The organisation is retired: it takes no new members."),
        "The contact person is a member of the organisation.": _(
            "Choose a member of the organisation."
        ),
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
            select(organisations.c.id, organisations.c.name)
            .where(organisations.c.retired_at.is_(None))
            .order_by(organisations.c.name)
        ).all()
        contact_for = memberships.contact_of(conn, user.id)
    page = render_template(
        "member/organisations.html",
        mine=mine,
        joined=joined,
        requests=requests,
        contact_for=[o for o in mine if o.id in contact_for],
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


def _with_people(conn: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Who asks, for the deciders to recognise (erased: a dash)."""
    reader = runtime().vault.reader(conn)
    for request_ in found:
        person = conn.execute(
            select(users.c.name, users.c.email).where(users.c.id == request_["user_id"])
        ).one()
        request_["person"] = reader.open(person.name) or reader.open(person.email) or "–"
    return found


def _members(conn: Any, organisation_id: str) -> list[tuple[str, str]]:
    """The organisation's members as (id, name) for choosing a contact person."""
    joined = select(memberships.memberships.c.user_id).where(
        memberships.memberships.c.organisation_id == organisation_id
    )
    rows = conn.execute(
        select(users.c.id, users.c.name, users.c.email).where(
            users.c.erased_at.is_(None),
            (users.c.organisation_id == organisation_id) | users.c.id.in_(joined),
        )
    ).all()
    reader = runtime().vault.reader(conn)
    named = [(r.id, reader.open(r.name) or reader.open(r.email) or r.id) for r in rows]
    return sorted(named, key=lambda pair: pair[1].casefold())


def _staff_page(
    form: Form | None = None, failed: str | None = None, contact_form: Form | None = None
) -> Any:
    chosen = request.args.get("organisation_id") or (contact_form or Form()).get("organisation_id")
    with read_transaction(runtime().engine) as conn:
        pending = _with_people(conn, memberships.listed(conn, runtime().vault, "pending"))
        everyone = conn.execute(
            select(organisations.c.id, organisations.c.name, organisations.c.contact_user_id)
            .where(organisations.c.retired_at.is_(None))
            .order_by(organisations.c.name)
        ).all()
        chosen_row = next((o for o in everyone if o.id == chosen), None)
        members = _members(conn, chosen_row.id) if chosen_row is not None else []
    page = render_template(
        "staff/memberships.html",
        pending=pending,
        form=form or Form(),
        failed=failed,
        decide_endpoint="organisations.decide",
        staff_view=True,
        organisations=everyone,
        chosen=chosen_row,
        members=members,
        contact_form=contact_form
        or Form(
            organisation_id=chosen_row.id if chosen_row else None,
            contact_user_id=chosen_row.contact_user_id if chosen_row else None,
        ),
    )
    failed_form = (form is not None and not form.ok) or (
        contact_form is not None and not contact_form.ok
    )
    return (page, 422) if failed_form else page


@bp.route("/staff/memberships")
@signed_in_as(*STAFF)
def pending() -> Any:
    return _staff_page()


@bp.route("/staff/memberships/<request_id>/<decision>", methods=["POST"])
@signed_in_as(*STAFF)
def decide(request_id: str, decision: str) -> Any:
    return _decide(request_id, decision, _staff_page, "organisations.pending")


def _decide(request_id: str, decision: str, page: Any, back: str) -> Any:
    user = page_user()
    assert user is not None
    if decision not in ("approve", "reject"):
        return page()
    form = Form(request.form)
    reason = form.text("reason", 2000, required=decision == "reject")
    if form.errors.get("reason"):
        form.errors["reason"] = [_("Give the reason for rejecting; the person will see it.")]
    if not form.ok:
        return page(form, request_id)
    approve = decision == "approve"
    try:
        run(
            lambda conn: memberships.decide(
                conn, runtime().vault, user, request_id, approve, reason, now()
            )
        )
    except DomainError as error:
        form.error("reason", _said(error))
        return page(form, request_id)
    flash(_("Request approved.") if approve else _("Request rejected."), "success")
    return redirect_to(back)


@bp.route("/staff/memberships/contact", methods=["POST"])
@signed_in_as(*STAFF)
def name_contact() -> Any:
    """Name an organisation's contact person (or none), who then decides its requests."""
    user = page_user()
    assert user is not None
    form = Form(request.form)
    organisation_id = form.required("organisation_id", _("Choose an organisation."))
    contact = form.text("contact_user_id", 64) or None
    if not form.ok:
        return _staff_page(contact_form=form)
    try:
        run(
            lambda conn: accounts_handlers.name_contact(
                conn, user.actor, organisation_id, contact, now(), request_metadata(user.id)
            )
        )
    except DomainError as error:
        form.error("contact_user_id", _said(error))
        return _staff_page(contact_form=form)
    flash(_("Contact person saved."), "success")
    return redirect_to("organisations.pending", organisation_id=organisation_id)


# --- an organisation's contact person decides its requests -----------------------------------


def _contact_page(form: Form | None = None, failed: str | None = None) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        mine = memberships.contact_of(conn, user.id)
        if not mine:
            raise Forbidden()
        pending = _with_people(
            conn, memberships.listed(conn, runtime().vault, "pending", organisation_ids=mine)
        )
    page = render_template(
        "staff/memberships.html",
        pending=pending,
        form=form or Form(),
        failed=failed,
        decide_endpoint="organisations.contact_decide",
        staff_view=False,
    )
    return (page, 422) if form is not None and not form.ok else page


@bp.route("/my/organisations/requests")
@signed_in_as()
def contact_pending() -> Any:
    return _contact_page()


@bp.route("/my/organisations/requests/<request_id>/<decision>", methods=["POST"])
@signed_in_as()
def contact_decide(request_id: str, decision: str) -> Any:
    return _decide(request_id, decision, _contact_page, "organisations.contact_pending")
