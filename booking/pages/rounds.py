"""Allocation rounds for people (API.md "Seasonal allocation rounds", "Pages"): the rounds
(public), a round's premises, season, window and criteria in words; the application form
(a booker for their organisation; one of several chosen); "my applications" with edit and
withdraw while the round is open, and the offers after publication, to accept or decline.

Writes go through booking.usecases.allocation; reads through booking.queries.rounds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.exceptions import Forbidden, NotFound

from booking import memberships
from booking.accounts import User
from booking.allocation.model import WEEKDAYS
from booking.auth import signed_in_strongly
from booking.domain.commands import Actor
from booking.domain.errors import DomainError, StaleVersion, StrongIdentityRequired
from booking.domain.errors import NotFound as NoSuchThing
from booking.http import new_id, now, runtime, unit_for
from booking.pages import application_form as forms
from booking.pages import round_texts
from booking.pages.common import (
    BOOKERS,
    STAFF,
    Form,
    date_text,
    localised,
    page_user,
    redirect_to,
    run,
    signed_in_as,
    span_text,
)
from booking.pages.oidc import strong_identity_page
from booking.pages.round_texts import translate
from booking.queries import rounds as queries
from booking.reasons import skipped_reason
from booking.tables import organisations
from booking.usecases import allocation as usecase
from events.decoding import event_of
from events.sql import read_transaction

bp = Blueprint("rounds", __name__)


def service_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BOOKING_TIMEZONE"])


def instant_text(instant: datetime | None, zone: ZoneInfo) -> str:
    """An instant as local date and time (`ke 2.12.2026 16.00`), the zone said elsewhere."""
    if instant is None:
        return "–"
    local = instant.astimezone(zone)
    return f"{date_text(local)} {local:%H:%M}"


@bp.app_context_processor
def _round_helpers() -> dict[str, Any]:
    return {
        "round_status": round_texts.round_status,
        "application_status": round_texts.application_status,
        "offer_status": round_texts.offer_status,
        "priority_name": round_texts.priority_name,
        "age_group_name": round_texts.age_group_name,
        "criterion_text": round_texts.criterion_text,
        "weekday_name": round_texts.weekday_name,
        "slot_text": round_texts.slot_text,
        "instant_text": instant_text,
        "service_zone": service_zone,
        "age_groups": round_texts.AGE_GROUPS,
        "weekday_keys": WEEKDAYS,
        "unallocated_reason": round_texts.unallocated_reason,
        "skipped_reason": skipped_reason,
    }


@bp.app_template_filter("isodate")
def _isodate(text: str) -> date:
    return date.fromisoformat(text)


@bp.app_template_filter("instant")
def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _round_or_404(conn: Any, round_id: str) -> queries.RoundRow:
    try:
        return queries.one_round(conn, round_id, now())
    except NoSuchThing:
        raise NotFound() from None


# --- public -----------------------------------------------------------------------------------


@bp.route("/rounds")
def index() -> str:
    with read_transaction(runtime().engine) as conn:
        found = queries.every_round(conn, now())
    shown = {status: [r for r in found if r.status == status] for status in queries.SHOWN_PUBLICLY}
    closed = [r for r in found if r.status == "closed"]
    return render_template("rounds/index.html", shown=shown, closed=closed)


@bp.route("/rounds/<round_id>")
def round_page(round_id: str) -> str:
    user = page_user()
    with read_transaction(runtime().engine) as conn:
        round_ = _round_or_404(conn, round_id)
        premises = queries.premises_of(conn, round_.premises)
        mine: list[Any] = []
        if user is not None:
            ids = [o.id for o in memberships.organisations_of(conn, user.id)]
            mine = queries.applications_of_round(conn, round_id, ids)
    return render_template(
        "rounds/round.html", round=round_, premises=premises, mine=mine, zone=service_zone()
    )


# --- applying ---------------------------------------------------------------------------------


def _organisations_for(conn: Any, user: User) -> list[Any]:
    if user.role in STAFF:
        t = organisations
        return list(conn.execute(t.select().order_by(t.c.name, t.c.id)))
    return list(memberships.organisations_of(conn, user.id))


def _render_form(
    round_: Any, form: Form, layout: forms.Layout, status: int = 200, **context: Any
) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        premises = queries.premises_of(conn, round_.premises)
        choices = _organisations_for(conn, user)
    page = render_template(
        "rounds/apply.html",
        round=round_,
        form=form,
        layout=layout,
        labels=forms.labels(layout),
        premises=premises,
        organisations=choices,
        **context,
    )
    return (page, status) if status != 200 else page


@bp.route("/rounds/<round_id>/apply", methods=["GET", "POST"])
@signed_in_as(*BOOKERS)
def apply(round_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        round_ = _round_or_404(conn, round_id)
        choices = _organisations_for(conn, user)
    if user.role not in STAFF and not choices:
        raise Forbidden()
    if request.method != "POST" and round_.status != "open":
        flash(
            _(
                "Applications are not taken now: the round is %(status)s.",
                status=round_texts.round_status(round_.status),
            ),
            "info",
        )
        return redirect_to("rounds.round_page", round_id=round_id)
    posted = request.method == "POST"
    form = Form(request.form) if posted else Form()
    layout = forms.layout_of(form, forms.choices_for(round_.premises))
    action = form.get("action", "submit")
    if not posted or action != "submit":
        if posted:
            form, layout = forms.rearranged(form, layout, action)
        return _render_form(round_, form, layout)

    body, rows = forms.read(form, layout, list(round_.premises))
    if not body["terms_accepted"]:
        form.error("terms_accepted", _("Accept the round's terms to apply."))
    organisation_id = _chosen_organisation(form, user, choices)
    if not form.ok or organisation_id is None:
        return _render_form(round_, form, layout, 422)
    application_id, at, strong = new_id(), now(), signed_in_strongly()
    actor = memberships.acting_for(user.actor, organisation_id)

    def submit(conn: Any) -> Any:
        unit = unit_for(conn, user.id)
        return usecase.submit_application(
            unit, actor, round_id, application_id, organisation_id, body, at, strong
        )

    try:
        run(submit)
    except StrongIdentityRequired:
        return strong_identity_page()
    except DomainError as error:
        forms.take_error(form, error, rows)
        return _render_form(round_, form, layout, 422)
    flash(_("Application sent. You can change it until the application period ends."), "success")
    return redirect_to("rounds.mine", _anchor=f"application-{application_id}")


def _chosen_organisation(form: Form, user: User, choices: list[Any]) -> str | None:
    """The organisation that applies: staff name any; a member of one is that one; a member
    of several chooses (booking.memberships)."""
    asked = form.get("organisation_id") or None
    ids = [c.id for c in choices]
    if user.role in STAFF or len(choices) > 1:
        if asked not in ids:
            form.error("organisation_id", _("Choose the organisation that applies."))
            return None
        return asked
    return ids[0] if ids else user.organisation_id


def _own_application(conn: Any, user: User, application_id: str) -> tuple[Any, Actor]:
    """An application of one of the person's organisations (staff: any), and the person as
    a member of that organisation."""
    try:
        row = queries.application_row(conn, application_id)
    except NoSuchThing:
        raise NotFound() from None
    if user.role in STAFF:
        return row, user.actor
    if row.organisation_id not in {o.id for o in memberships.organisations_of(conn, user.id)}:
        raise Forbidden()
    return row, memberships.acting_for(user.actor, row.organisation_id)


@bp.route("/my/applications/<application_id>/edit", methods=["GET", "POST"])
@signed_in_as(*BOOKERS)
def edit(application_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        row, actor = _own_application(conn, user, application_id)
        round_ = _round_or_404(conn, row.round_id)
    choices = forms.choices_for(round_.premises)
    context = {"application": row}
    if request.method != "POST" and (round_.status != "open" or row.status != "submitted"):
        flash(_("The application can no longer be changed."), "info")
        return redirect_to("rounds.mine", _anchor=f"application-{application_id}")
    if request.method != "POST":
        form, layout = forms.filled(row, choices)
        return _render_form(round_, form, layout, **context)
    form = Form(request.form)
    layout = forms.layout_of(form, choices)
    action = form.get("action", "submit")
    if action != "submit":
        form, layout = forms.rearranged(form, layout, action)
        return _render_form(round_, form, layout, **context)
    body, rows = forms.read(form, layout, list(round_.premises))
    version = form.integer("version", 1, 10**9)
    if not form.ok:
        return _render_form(round_, form, layout, 422, **context)
    changes = {k: body[k] for k in ("purpose", "age_group", "group_size", "sections")}
    at, strong = now(), signed_in_strongly()

    def update(conn: Any) -> Any:
        unit = unit_for(conn, user.id)
        return usecase.update_application(unit, actor, application_id, changes, version, at, strong)

    try:
        run(update)
    except StrongIdentityRequired:
        return strong_identity_page()
    except StaleVersion:
        form.error(
            "_form",
            _("Someone changed this application meanwhile. Open it again to see the changes."),
        )
        return _render_form(round_, form, layout, 409, **context)
    except DomainError as error:
        forms.take_error(form, error, rows)
        return _render_form(round_, form, layout, 422, **context)
    flash(_("Application changed."), "success")
    return redirect_to("rounds.mine", _anchor=f"application-{application_id}")


@bp.route("/my/applications/<application_id>/withdraw", methods=["POST"])
@signed_in_as(*BOOKERS)
def withdraw(application_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        actor = _own_application(conn, user, application_id)[1]
    form = Form(request.form)
    version = form.integer("version", 1, 10**9, required=False)
    at = now()
    try:
        run(
            lambda conn: usecase.withdraw_application(
                unit_for(conn, user.id), actor, application_id, version, at
            )
        )
    except StaleVersion:
        return _mine(_("Someone changed this application meanwhile. Check it and try again."))
    except DomainError as error:
        return _mine(translate(str(error)))
    flash(_("Application withdrawn."), "success")
    return redirect_to("rounds.mine")


# --- my applications and offers ----------------------------------------------------------------


def _mine(problem: str | None = None, failed: str | None = None) -> Any:
    user = page_user()
    assert user is not None
    at = now()
    with read_transaction(runtime().engine) as conn:
        mine = memberships.organisations_of(conn, user.id)
        applications = queries.applications_of(conn, [o.id for o in mine])
        round_ids = {a.round_id for a in applications}
        rounds_ = {rid: queries.one_round(conn, rid, at) for rid in sorted(round_ids)}
        offers = queries.offers_of(conn, [a.id for a in applications])
        premises = queries.premises_of(
            conn,
            [o.premises_id for o in offers] + [p for r in rounds_.values() for p in r.premises],
        )
        skipped = {
            o.id: queries.series_skipped(conn, o.premises_id, o.series_id)
            for o in offers
            if o.status == "accepted" and o.series_id
        }
    by_application: dict[str, list[Any]] = {}
    for offer in offers:
        by_application.setdefault(offer.application_id, []).append(offer)
    page = render_template(
        "rounds/mine.html",
        applications=applications,
        rounds=rounds_,
        offers=by_application,
        premises=premises,
        names={o.id: o.name for o in mine},
        skipped=skipped,
        problem=problem,
        failed=failed,
        now=at,
        zone_of=lambda pid: ZoneInfo(premises[pid].timezone if pid in premises else "UTC"),
        premises_name=lambda pid: localised(premises[pid].name, pid) if pid in premises else pid,
        unallocated_of=_unallocated_of,
    )
    return (page, 409) if problem else page


def _unallocated_of(round_: Any, application_id: str) -> list[dict[str, Any]]:
    """What the application's sections did not get, once the round is published."""
    if round_.published_at is None:
        return []
    return [u for u in round_.unallocated or [] if u.get("application_id") == application_id]


@bp.route("/my/applications")
@signed_in_as(*BOOKERS)
def mine() -> Any:
    return _mine()


def _own_offer(conn: Any, user: User, allocation_id: str) -> tuple[Any, Actor]:
    try:
        row = queries.allocation_row(conn, allocation_id)
    except NoSuchThing:
        raise NotFound() from None
    if row.status not in queries.ANSWERED:
        raise NotFound()
    if user.role in STAFF:
        return row, user.actor
    if row.organisation_id not in {o.id for o in memberships.organisations_of(conn, user.id)}:
        raise Forbidden()
    return row, memberships.acting_for(user.actor, row.organisation_id)


@bp.route("/my/offers/<allocation_id>/<answer>", methods=["POST"])
@signed_in_as(*BOOKERS)
def answer(allocation_id: str, answer: str) -> Any:
    user = page_user()
    assert user is not None
    if answer not in ("accept", "decline"):
        raise NotFound()
    with read_transaction(runtime().engine) as conn:
        row, actor = _own_offer(conn, user, allocation_id)
        premises = queries.premises_of(conn, [row.premises_id])
    form = Form(request.form)
    reason = form.text("reason", 2000)
    if not form.ok:
        return _mine(form.errors["reason"][0], allocation_id)
    accept, series_id, at = answer == "accept", new_id(), now()

    def handle(conn: Any) -> Any:
        unit = unit_for(conn, user.id)
        return usecase.answer_offer(unit, actor, allocation_id, accept, series_id, reason, at)

    try:
        placed = run(handle)[1]
    except StrongIdentityRequired:
        return strong_identity_page()
    except DomainError as error:
        return _mine(translate(str(error)), allocation_id)
    if not accept:
        flash(_("Offer declined. The time is free for others."), "success")
        return redirect_to("rounds.mine", _anchor=f"offer-{allocation_id}")
    header = next(event_of(r) for r in placed if r.type == "BookingSeriesPlaced")
    skipped = list(getattr(header, "skipped", []) or [])
    booked = sum(1 for r in placed if r.type == "BookingPlaced")
    made = ngettext(
        "Offer accepted: %(num)d weekly booking made.",
        "Offer accepted: %(num)d weekly bookings made.",
        booked,
    )
    if skipped:
        made += " " + ngettext(
            "%(num)d date could not be booked:", "%(num)d dates could not be booked:", len(skipped)
        )
    flash(made, "success")
    zone = ZoneInfo(premises[row.premises_id].timezone) if premises else service_zone()
    for item in skipped:
        start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
        flash(f"{span_text(start, end, zone)}: {skipped_reason(item['reason'])}", "info")
    return redirect_to("rounds.mine", _anchor=f"offer-{allocation_id}")
