"""Staff pages of the allocation rounds (API.md "Seasonal allocation rounds", "Pages"):
the rounds and a new one (`/staff/rounds`), and a round's page (`/staff/rounds/{id}`) with
its applications, the proposal on a weekday × time grid per premises and as a table, the
sections left without slots and why, adjustments (add with an override reason, remove),
the series preview (the season's dates that would be skipped) and publication.

Every form carries the round's version: a change made meanwhile by someone else is shown
instead of being overwritten.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy.engine import Connection
from werkzeug.exceptions import NotFound

from booking.allocation import tiers
from booking.allocation.model import WEEKDAYS, Premises
from booking.domain.errors import DomainError, InvalidState, RuleBroken, StaleVersion
from booking.domain.errors import NotFound as NoSuchThing
from booking.http import new_id, now, runtime, unit_for
from booking.pages import round_texts
from booking.pages.application_form import CLOCK
from booking.pages.common import (
    STAFF,
    Form,
    local_instant,
    localised,
    page_user,
    redirect_to,
    run,
    signed_in_as,
)
from booking.pages.round_grid import grid_of
from booking.pages.round_texts import translate
from booking.queries import premises as premises_queries
from booking.queries import rounds as queries
from booking.usecases import allocation as usecase
from events.sql import read_transaction

bp = Blueprint("staff_rounds", __name__, url_prefix="/staff/rounds")
CRITERIA_ROWS = 4
ADD_FIELDS = {
    "application_id": "section",
    "section": "section",
    "premises_id": "premises_id",
    "weekday": "weekday",
    "start_time": "start_time",
    "end_time": "end_time",
    "override_reason": "override_reason",
}


def _take(form: Form, error: DomainError, fields: dict[str, str]) -> None:
    """A refusal next to the field it is about, in the reader's language."""
    if isinstance(error, RuleBroken):
        for name, messages in error.problems.items():
            for message in messages:
                form.error(fields.get(name, name), translate(message))
    else:
        form.error("_form", translate(str(error)))


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BOOKING_TIMEZONE"])


@bp.route("")
@signed_in_as(*STAFF)
def index() -> str:
    with read_transaction(runtime().engine) as conn:
        found = queries.every_round(conn, now())
        counts = queries.application_counts(conn)
    return render_template("staff_rounds/index.html", rounds=found, counts=counts)


# --- a new round --------------------------------------------------------------------------------


def _new_page(form: Form, status: int = 200) -> Any:
    with read_transaction(runtime().engine) as conn:
        choices = [r for r in premises_queries.every_premises(conn) if not r.retired]
    page = render_template(
        "staff_rounds/new.html",
        form=form,
        choices=choices,
        criteria_rows=CRITERIA_ROWS,
        criteria_keys=round_texts.CRITERIA,
        zone=_zone(),
    )
    return (page, status) if status != 200 else page


def _criterion_values_problems(key: str, values: list[str]) -> list[str]:
    """The form's words for what booking.allocation.tiers.criteria_problems refuses (the
    form splits the values at commas and trims them, so none is blank or padded)."""
    problems = []
    if key == "purpose" and not values:
        problems.append(_("Give the words the purpose must mention."))
    if key == "previous_season" and values:
        problems.append(_("This criterion takes no values: leave the field empty."))
    if len(values) > tiers.MAX_VALUES:
        problems.append(_("Give at most %(num)d values.", num=tiers.MAX_VALUES))
    allowed = tiers.CHOICES.get(key)
    wrong = [v for v in values if v not in allowed] if allowed else []
    if wrong and key == "age_group":
        problems.append(
            _(
                "Write age groups as %(groups)s; not: %(wrong)s.",
                groups=", ".join(allowed or ()),
                wrong=", ".join(wrong),
            )
        )
    elif wrong:
        problems.append(
            _(
                "Write organisation types as %(kinds)s; not: %(wrong)s.",
                kinds=", ".join(allowed or ()),
                wrong=", ".join(wrong),
            )
        )
    if key == "purpose" and any(not tiers.is_word(v) for v in values):
        problems.append(
            _(
                "A word is at most %(num)d characters, without control characters.",
                num=tiers.MAX_WORD,
            )
        )
    twice = sorted({v for v in values if [w.casefold() for w in values].count(v.casefold()) > 1})
    if twice:
        problems.append(_("Name each value once: %(values)s.", values=", ".join(twice)))
    return problems


@bp.route("/new", methods=["GET", "POST"])
@signed_in_as(*STAFF)
def new() -> Any:
    if request.method != "POST":
        return _new_page(Form(confirm_days="14"))
    user = page_user()
    assert user is not None
    form = Form(request.form)
    zone = _zone()
    name = {lang: form.text(f"name_{lang}", 200) for lang in ("fi", "sv", "en")}
    if not any(name.values()):
        form.error("name_fi", _("Give a name in at least one language."))
    season_start, season_end = form.date("season_start"), form.date("season_end")
    opens_day, opens_at = form.date("opens_date"), form.clock("opens_time")
    closes_day, closes_at = form.date("closes_date"), form.clock("closes_time")
    premises = form.getlist("premises")
    if not premises:
        form.error("premises", _("Choose at least one premises."))
    confirm_days = form.integer("confirm_days", 1, 90)
    criteria: list[dict[str, Any]] = []
    for i in range(CRITERIA_ROWS):
        key = form.get(f"criterion_{i}")
        if not key:
            continue
        if key not in round_texts.CRITERIA:
            form.error(f"criterion_{i}", _("Choose a criterion from the list."))
            continue
        values = [v.strip() for v in form.get(f"criterion_{i}_in").split(",") if v.strip()]
        for problem in _criterion_values_problems(key, values):
            form.error(f"criterion_{i}_in", problem)
        criteria.append({"key": key, "in": values} if values else {"key": key})
    if (
        not form.ok
        or None in (season_start, season_end, opens_day, opens_at, closes_day, closes_at)
        or confirm_days is None
    ):
        return _new_page(form, 422)
    assert opens_day and opens_at and closes_day and closes_at
    body = {
        "name": {k: v for k, v in name.items() if v},
        "season_start": season_start,
        "season_end": season_end,
        "applications_open": local_instant(opens_day, opens_at, zone),
        "applications_close": local_instant(closes_day, closes_at, zone),
        "premises": premises,
        "criteria": criteria,
        "confirm_days": confirm_days,
    }
    round_id, at = new_id(), now()
    fields = {
        "name": "name_fi",
        "applications_close": "closes_date",
        "applications_open": "opens_date",
    }
    try:
        run(
            lambda conn: usecase.open_round(unit_for(conn, user.id), user.actor, round_id, body, at)
        )
    except DomainError as error:
        _take(form, error, fields)
        return _new_page(form, 422)
    flash(_("Allocation round created."), "success")
    return redirect_to("staff_rounds.round_page", round_id=round_id)


# --- a round ------------------------------------------------------------------------------------


def _round_page(
    round_id: str,
    form: Form | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Any:
    at = now()
    preview = request.args.get("preview") == "series"
    with read_transaction(runtime().engine) as conn:
        try:
            round_ = queries.one_round(conn, round_id, at)
        except NoSuchThing:
            raise NotFound() from None
        applications = queries.applications_of_round(conn, round_id)
        allocations = queries.allocations_of_round(conn, round_id)
        premises = queries.premises_of(conn, round_.premises)
        names = queries.organisation_names(conn, [a.organisation_id for a in applications])
        plans = _previews(conn, round_id, allocations) if preview else {}
    live = [a for a in allocations if a.status not in ("declined", "lapsed")]
    spaces = {pid: set(row.spaces or [pid]) for pid, row in premises.items()}

    def shares(pid: str, other: str) -> bool:
        return bool(spaces.get(pid, {pid}) & spaces.get(other, {other}))

    # Each premises' grid shows its own slots and those that hold it through a shared space
    # (a whole hall for its halves, a half for the whole).
    grids = [
        grid_of(
            pid,
            [a for a in live if shares(pid, a.premises_id)],
            Premises.from_opening_hours(pid, premises[pid].opening_hours)
            if pid in premises
            else None,
        )
        for pid in round_.premises
        if any(a.premises_id == pid for a in live)
    ]
    by_application = {a.id: a for a in applications}
    got: dict[tuple[str, str], int] = {}
    for a in live:
        got[(a.application_id, a.section)] = got.get((a.application_id, a.section), 0) + 1
    page = render_template(
        "staff_rounds/round.html",
        round=round_,
        applications=applications,
        allocations=allocations,
        grids=grids,
        premises=premises,
        names=names,
        by_application=by_application,
        premises_name=lambda pid: localised(premises[pid].name, pid) if pid in premises else pid,
        organisation_of=lambda aid: names.get(
            by_application[aid].organisation_id if aid in by_application else "", "–"
        ),
        plans=plans,
        got=got,
        preview=preview,
        form=form or Form(),
        problem=problem,
        zone=_zone(),
        weekdays=WEEKDAYS,
    )
    return (page, status) if status != 200 else page


def _previews(conn: Connection, round_id: str, allocations: list[Any]) -> dict[str, Any]:
    """allocation id → the dates its series would skip and how many it would book."""
    user = page_user()
    assert user is not None
    state = usecase.load_round(conn, round_id)
    at = now()
    plans = {}
    for row in allocations:
        if row.status not in ("proposed", "offered"):
            continue
        plan = usecase.preview_series(
            conn, runtime().premises, state, state.allocations[row.id], user.actor, new_id(), at
        )
        plans[row.id] = plan
    return plans


@bp.route("/<round_id>")
@signed_in_as(*STAFF)
def round_page(round_id: str) -> Any:
    return _round_page(round_id)


def _current(conn: Connection, round_id: str, version: int | None) -> None:
    """The round as the page showed it, or StaleVersion."""
    row = queries.one_round(conn, round_id, now())
    if version is not None and version != row.version:
        raise StaleVersion(row.version)


def _staff_write(round_id: str, act: Any, done: str, anchor: str = "proposal") -> Any:
    """Run a staff change of the round from a form that carries the round's version."""
    user = page_user()
    assert user is not None
    form = Form(request.form)
    version = form.integer("version", 1, 10**9, required=False)
    at = now()

    def handle(conn: Connection) -> Any:
        _current(conn, round_id, version)
        return act(unit_for(conn, user.id), user, at)

    try:
        run(handle)
    except StaleVersion:
        return _round_page(round_id, problem=_stale(), status=409)
    except DomainError as error:
        return _round_page(round_id, problem=translate(str(error)), status=409)
    flash(done, "success")
    return redirect_to("staff_rounds.round_page", round_id=round_id, _anchor=anchor)


def _stale() -> str:
    return str(
        _("The round changed meanwhile (someone else worked on it). Check it and try again.")
    )


@bp.route("/<round_id>/proposal", methods=["POST"])
@signed_in_as(*STAFF)
def proposal(round_id: str) -> Any:
    return _staff_write(
        round_id,
        lambda unit, user, at: usecase.make_proposal(unit, user.actor, round_id, at),
        _("Proposal made."),
    )


@bp.route("/<round_id>/publish", methods=["POST"])
@signed_in_as(*STAFF)
def publish(round_id: str) -> Any:
    return _staff_write(
        round_id,
        lambda unit, user, at: usecase.publish(unit, user.actor, round_id, at),
        _("Round published: the offers were sent."),
        "offers",
    )


@bp.route("/<round_id>/allocations/<allocation_id>/remove", methods=["POST"])
@signed_in_as(*STAFF)
def remove(round_id: str, allocation_id: str) -> Any:
    return _staff_write(
        round_id,
        lambda unit, user, at: usecase.remove_allocation(
            unit, user.actor, round_id, allocation_id, at
        ),
        _("Allocation removed."),
    )


@bp.route("/<round_id>/offers/<allocation_id>/<answer>", methods=["POST"])
@signed_in_as(*STAFF)
def answer(round_id: str, allocation_id: str, answer: str) -> Any:
    """Staff answer an offer on the organisation's behalf (accepting places its series)."""
    if answer not in ("accept", "decline"):
        raise NotFound()
    accept, series_id = answer == "accept", new_id()
    reason = Form(request.form).text("reason", 2000)
    return _staff_write(
        round_id,
        lambda unit, user, at: usecase.answer_offer(
            unit, user.actor, allocation_id, accept, series_id, reason, at
        ),
        _("Offer accepted on the organisation's behalf.")
        if accept
        else _("Offer declined on the organisation's behalf."),
        f"alloc-{allocation_id}",
    )


@bp.route("/<round_id>/allocations", methods=["POST"])
@signed_in_as(*STAFF)
def add(round_id: str) -> Any:
    user = page_user()
    assert user is not None
    form = Form(request.form)
    version = form.integer("version", 1, 10**9, required=False)
    chosen = form.required("section", _("Choose the section."))
    application_id, _sep, section = chosen.partition("::")
    premises_id = form.required("premises_id", _("Choose the premises."))
    weekday = form.get("weekday")
    if weekday not in WEEKDAYS:
        form.error("weekday", _("Choose the weekday."))
    times = {}
    for name in ("start_time", "end_time"):
        value = form.get(name).replace(".", ":")
        value = "0" + value if len(value) == 4 and value[1] == ":" else value
        if not CLOCK.match(value):
            form.error(name, _("Give the time as HH:MM, for example 18:30."))
        times[name] = value
    reason = form.text("override_reason", 2000)
    if not form.ok:
        return _round_page(round_id, form, status=422)
    body = {
        "application_id": application_id,
        "section": section,
        "premises_id": premises_id,
        "weekday": weekday,
        **times,
        "override_reason": reason,
    }
    allocation_id, at = new_id(), now()

    def handle(conn: Connection) -> Any:
        _current(conn, round_id, version)
        unit = unit_for(conn, user.id)
        return usecase.add_allocation(unit, user.actor, round_id, allocation_id, body, at)

    try:
        run(handle)
    except StaleVersion:
        form.error("_form", _stale())
        return _round_page(round_id, form, status=409)
    except InvalidState as error:  # a hard conflict: nothing to override
        form.error("_form", translate(str(error)))
        return _round_page(round_id, form, status=409)
    except DomainError as error:
        _take(form, error, ADD_FIELDS)
        return _round_page(round_id, form, status=422)
    flash(_("Allocation added."), "success")
    return redirect_to(
        "staff_rounds.round_page", round_id=round_id, _anchor=f"alloc-{allocation_id}"
    )
