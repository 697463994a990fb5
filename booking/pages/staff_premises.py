"""Staff pages for the premises catalogue: create, edit (with opening hours and rules), close
for a period and retire. The same domain commands as POST/PATCH /api/v1/premises."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext

from booking.domain.errors import DomainError, SlotTaken, StaleVersion
from booking.domain.premises import Rules
from booking.domain.spaces import MAX_SPACES, SPACE_ID_LENGTH, is_id
from booking.http import new_id, now, runtime
from booking.pages.common import (
    STAFF,
    Form,
    local_instant,
    localised,
    metadata,
    page_user,
    redirect_to,
    run,
    signed_in_as,
    span_text,
)
from booking.queries.premises import every_premises, premises_row
from booking.usecases import catalogue
from events.opening import WEEKDAYS, OpeningHours
from events.slot import Slot
from events.sql import read_transaction
from projections.catalogue import PROFILE_FIELDS as CATALOGUE_FIELDS

bp = Blueprint("staff_premises", __name__, url_prefix="/staff/premises")
LANGS = ("fi", "en", "sv")
ACCESSIBILITY = (
    "step_free_access",
    "accessible_toilet",
    "induction_loop",
    "lift",
    "accessible_parking",
    "braille_signage",
)
INTEGER_RULES = {
    "min_duration_minutes": (1, 60 * 24 * 7),
    "max_duration_minutes": (1, 60 * 24 * 7),
    "min_notice_minutes": (0, 60 * 24 * 365),
    "max_advance_days": (1, 3 * 365),
    "buffer_minutes": (0, 24 * 60),
    "popup_max_duration_minutes": (1, 24 * 60),
    "cancellation_deadline_minutes": (0, 60 * 24 * 60),
}
BOOLEAN_RULES = ("requires_approval", "popup_allowed", "popup_auto_approve")
_INTERVAL = re.compile(r"^\s*(\d{1,2}[:.]\d{2})\s*[-–]\s*(\d{1,2}[:.]\d{2})\s*$")


@bp.route("")
@signed_in_as(*STAFF)
def index() -> str:
    with read_transaction(runtime().engine) as conn:
        rows = every_premises(conn)
    return render_template("staff/premises_list.html", rows=rows)


def _form_of(row: Any) -> Form:
    """The edit form filled in from a catalogue row."""
    values: dict[str, Any] = {
        "address": row.address,
        "district": row.district,
        "capacity": str(row.capacity),
        "free_of_charge": "1" if row.free_of_charge else "",
        "hourly_price": f"{row.hourly_price_cents / 100:.2f}" if row.hourly_price_cents else "",
        "accessibility": list(row.accessibility),
        "other_accessibility": ", ".join(a for a in row.accessibility if a not in ACCESSIBILITY),
        "equipment": ", ".join(row.equipment),
        "timezone": row.timezone,
        "spaces": ", ".join(row.spaces),
        "version": str(row.version),
    }
    for lang in LANGS:
        values[f"name_{lang}"] = (row.name or {}).get(lang) or ""
        values[f"description_{lang}"] = (row.description or {}).get(lang) or ""
        values[f"conditions_{lang}"] = (row.free_use_conditions or {}).get(lang) or ""
    rules = Rules.from_json(row.rules).as_json()
    for name in INTEGER_RULES:
        values[name] = str(rules[name])
    for name in BOOLEAN_RULES:
        values[name] = "1" if rules[name] else ""
    values["bookable_by"] = rules["bookable_by"]
    for day in WEEKDAYS:
        values[f"hours_{day}"] = ", ".join(f"{a}-{b}" for a, b in row.opening_hours.get(day, []))
    return Form(None, **values)


def _words(text: str) -> list[str]:
    return [w.strip().lower().replace(" ", "_") for w in text.split(",") if w.strip()]


def spaces_of(form: Form, required: bool, kept: tuple[str, ...] = ()) -> list[str] | None:
    """The space ids of the `spaces` field (comma-separated; a new one creates a space), or
    None when left empty on a new premises (one space of its own) or not sent at all (a
    form from before the field: no change). The API's 422 rules: 1 to 20 ids, each once,
    each written as a premises id is, except those in `kept` (the premises' own spaces)."""
    if "spaces" not in form.data:
        return None
    text = form.get("spaces")
    spaces = [part.strip() for part in text.split(",") if part.strip()]
    if not spaces:
        if required or text.strip():
            form.error("spaces", _("Name at least one space."))
        return None
    if len(spaces) > MAX_SPACES:
        form.error("spaces", _("Name at most %(num)d spaces.", num=MAX_SPACES))
    twice = sorted({s for s in spaces if spaces.count(s) > 1})
    if twice:
        form.error("spaces", _("Name each space once: %(spaces)s.", spaces=", ".join(twice)))
    if any(len(s) > SPACE_ID_LENGTH for s in spaces):
        form.error(
            "spaces", _("A space's name is at most %(num)d characters.", num=SPACE_ID_LENGTH)
        )
    malformed = [s for s in spaces if len(s) <= SPACE_ID_LENGTH and s not in kept and not is_id(s)]
    if malformed:
        form.error(
            "spaces",
            _(
                "Write a space's name in lower-case letters (a-z), digits and hyphens, as a "
                "premises id is: %(spaces)s.",
                spaces=", ".join(malformed),
            ),
        )
    return spaces


def spaces_taken_message(conn: Any, error: SlotTaken, zone: ZoneInfo) -> str:
    """Which bookings, holds and closures of which other premises the new spaces would
    collide with (a PATCH's 409), in the reader's language."""
    kinds = {"booking": _("booking"), "hold": _("pop-up hold"), "closure": _("closure")}
    names: dict[str, str] = {}
    shown = []
    for conflict in error.conflicts[:SHOWN_CONFLICTS]:
        via = conflict.via or ""
        if via and via not in names:
            names[via] = localised(premises_row(conn, via).name, via)
        span = span_text(conflict.slot.start, conflict.slot.end, zone)
        kind = kinds.get(conflict.kind, conflict.kind)
        shown.append(f"{span} ({kind}, {names[via]})" if via else f"{span} ({kind})")
    more = len(error.conflicts) - len(shown)
    text = _(
        "Nothing was changed: with these spaces, bookings of these premises would overlap "
        "what other premises hold on them: %(conflicts)s.",
        conflicts="; ".join(shown),
    )
    if more > 0:
        text += " " + ngettext("And %(num)d more.", "And %(num)d more.", more)
    return str(text)


def opening_hours_of(form: Form) -> dict[str, list[list[str]]]:
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        intervals = []
        for part in [p for p in form.get(f"hours_{day}").split(",") if p.strip()]:
            match = _INTERVAL.match(part)
            if not match:
                form.error(f"hours_{day}", _("Write the hours as 08:00-20:00 (several: comma)."))
                break
            a, b = (m.replace(".", ":").zfill(5) for m in match.groups())
            intervals.append([a, b])
        hours[day] = intervals
    try:
        OpeningHours.parse(hours)
    except ValueError:
        form.error("hours_mon", _("The opening hours are not valid times."))
    return hours


def profile_of(form: Form) -> dict[str, Any]:
    """The catalogue data a premises form describes; problems go to the form's errors."""
    name = {lang: form.text(f"name_{lang}", 300) or None for lang in LANGS}
    if not any(name.values()):
        form.error("name_fi", _("Give a name in at least one language."))
    price = form.get("hourly_price").replace(",", ".").replace("€", "").strip()
    price_cents = None
    if price:
        try:
            price_cents = round(float(price) * 100)
            if price_cents < 0:
                raise ValueError
        except ValueError:
            form.error("hourly_price", _("Give the price in euros, for example 12.50."))
    rules: dict[str, Any] = {}
    for rule, (low, high) in INTEGER_RULES.items():
        value = form.integer(rule, low, high)
        if value is not None:
            rules[rule] = value
    for rule in BOOLEAN_RULES:
        rules[rule] = form.checked(rule)
    rules["bookable_by"] = "anyone" if form.get("bookable_by") == "anyone" else "organisations"
    if rules.get("min_duration_minutes", 0) > rules.get("max_duration_minutes", 10**9):
        form.error("min_duration_minutes", _("The shortest booking is longer than the longest."))
    timezone = form.text("timezone", 64) or current_app.config["BOOKING_TIMEZONE"]
    try:
        ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        form.error("timezone", _("Not a known time zone."))
    accessibility = [a for a in form.getlist("accessibility") if a in ACCESSIBILITY]
    accessibility += _words(form.get("other_accessibility"))
    return {
        "name": name,
        "description": {lang: form.text(f"description_{lang}", 5000) or None for lang in LANGS},
        "address": form.text("address", 300, required=True),
        "district": form.text("district", 100, required=True).lower(),
        "capacity": form.integer("capacity", 1, 100_000) or 0,
        "free_of_charge": form.checked("free_of_charge"),
        "hourly_price_cents": price_cents,
        "free_use_conditions": {
            lang: form.text(f"conditions_{lang}", 5000) or None for lang in LANGS
        },
        "accessibility": sorted(set(accessibility)),
        "equipment": sorted(set(_words(form.get("equipment")))),
        "timezone": timezone,
        "opening_hours": opening_hours_of(form),
        "rules": rules,
    }


def with_spaces(
    form: Form, profile: dict[str, Any], required: bool, kept: tuple[str, ...] = ()
) -> dict[str, Any]:
    spaces = spaces_of(form, required, kept)
    return profile if spaces is None else {**profile, "spaces": spaces}


def _acting() -> catalogue.Acting:
    user = page_user()
    assert user is not None  # every view here is @signed_in_as(*STAFF)
    return catalogue.Acting(user.actor, now(), metadata())


PROFILE_FIELDS = {
    "name": "name_fi",
    "opening_hours": "hours_mon",
    "rules": "min_duration_minutes",
    "spaces": "spaces",
}
SHOWN_CONFLICTS = 10  # a 409's collisions named on the page; the rest are counted


def _render(form: Form, row: Any | None, status: int = 200) -> Any:
    template = "staff/premises_edit.html" if row is not None else "staff/premises_new.html"
    page = render_template(
        template,
        form=form,
        row=row,
        weekdays=WEEKDAYS,
        accessibility=ACCESSIBILITY,
        closure=Form(),
        retire=Form(),
    )
    return page if status == 200 else (page, status)


@bp.route("/new", methods=["GET", "POST"])
@signed_in_as(*STAFF)
def new() -> Any:
    if request.method != "POST":
        defaults = Form(None, timezone=current_app.config["BOOKING_TIMEZONE"], **_rule_defaults())
        return _render(defaults, None)
    user = page_user()
    assert user is not None
    form = Form(request.form)
    profile = with_spaces(form, profile_of(form), required=False)
    slug = form.get("id")
    if slug and not is_id(slug):
        form.error("id", _("Use lower-case letters, digits and hyphens."))
    if not form.ok:
        return _render(form, None, 422)

    acting = _acting()

    def handle(conn: Any) -> str:
        done = catalogue.register_premises(conn, runtime().premises, acting, profile, slug or None)
        return str(done.premises.id)

    try:
        premises_id = run(handle)
    except DomainError as error:
        form.take_domain_error(error, {**PROFILE_FIELDS, "_form": "id"})
        return _render(form, None, 422)
    flash(_("Premises added."), "success")
    return redirect_to("staff_premises.edit", premises_id=premises_id)


def _rule_defaults() -> dict[str, str]:
    rules = Rules().as_json()
    values = {name: str(rules[name]) for name in INTEGER_RULES}
    values.update({name: "1" if rules[name] else "" for name in BOOLEAN_RULES})
    values["bookable_by"] = rules["bookable_by"]
    return values


def _changes(profile: dict[str, Any], row: Any) -> dict[str, Any]:
    current = {field: getattr(row, field) for field in CATALOGUE_FIELDS}
    # Stored forms that the form's may spell differently: compare them normalised.
    current["opening_hours"] = OpeningHours.parse(row.opening_hours).as_json()
    current["rules"] = Rules.from_json(row.rules).as_json()
    current["spaces"] = list(row.spaces)
    changed = {k: v for k, v in profile.items() if v != current.get(k)}
    if sorted(profile.get("spaces", [])) == sorted(row.spaces):
        changed.pop("spaces", None)  # the same floor in another order
    if "rules" in changed:
        changed["rules"] = {
            k: v for k, v in profile["rules"].items() if current["rules"].get(k) != v
        }
        if not changed["rules"]:  # rules the form does not show differ, none it shows
            del changed["rules"]
    return changed


@bp.route("/<premises_id>", methods=["GET", "POST"])
@signed_in_as(*STAFF)
def edit(premises_id: str) -> Any:
    with read_transaction(runtime().engine) as conn:
        row = premises_row(conn, premises_id)
    if request.method != "POST":
        return _render(_form_of(row), row)
    user = page_user()
    assert user is not None
    form = Form(request.form)
    profile = with_spaces(form, profile_of(form), required=True, kept=tuple(row.spaces))
    version = form.integer("version", 1, 10**9)
    if not form.ok:
        return _render(form, row, 422)
    changes = _changes(profile, row)
    if not changes:
        flash(_("Nothing was changed."), "info")
        return redirect_to("staff_premises.edit", premises_id=premises_id)
    acting = _acting()
    try:
        run(
            lambda conn: catalogue.update_premises(
                conn, runtime().premises, acting, premises_id, changes, version
            )
        )
    except StaleVersion:
        form.error(
            "_form",
            _("Someone else changed these premises meanwhile. Reload the page and try again."),
        )
        return _render(form, row, 409)
    except SlotTaken as error:  # new spaces that others hold when this one is booked
        with read_transaction(runtime().engine) as conn:
            form.error("spaces", spaces_taken_message(conn, error, ZoneInfo(row.timezone)))
        return _render(form, row, 409)
    except DomainError as error:
        form.take_domain_error(error, PROFILE_FIELDS)
        return _render(form, row, 422)
    flash(_("Changes saved."), "success")
    return redirect_to("staff_premises.edit", premises_id=premises_id)


@bp.route("/<premises_id>/closures", methods=["POST"])
@signed_in_as(*STAFF)
def close(premises_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        row = premises_row(conn, premises_id)
    zone = ZoneInfo(row.timezone)
    closure = Form(request.form)
    first_day = closure.date("closure_start_date")
    first_time = closure.clock("closure_start_time")
    last_day = closure.date("closure_end_date")
    last_time = closure.clock("closure_end_time")
    reason = closure.text("closure_reason", 1000, required=True)
    if closure.ok and first_day and first_time and last_day and last_time is not None:
        start = local_instant(first_day, first_time, zone)
        end = local_instant(last_day, last_time, zone)
        if end <= start:
            closure.error("closure_end_date", _("The end must be after the start."))
    if closure.ok:
        acting, closure_id = _acting(), new_id()
        cancel = closure.checked("cancel_conflicting")
        try:
            made = run(
                lambda conn: catalogue.add_closure(
                    conn,
                    runtime().premises,
                    acting,
                    premises_id,
                    closure_id,
                    Slot(start, end),
                    reason,
                    cancel,
                )
            )
        except SlotTaken as error:
            spans = ", ".join(span_text(c.slot.start, c.slot.end, zone) for c in error.conflicts)
            closure.error(
                "closure_start_date",
                _(
                    "There are bookings in this period: %(spans)s. Tick the box to cancel "
                    "them (each booker is told the reason).",
                    spans=spans,
                ),
            )
        except DomainError as error:
            closure.take_domain_error(error, {"start": "closure_start_date"}, zone)
        else:
            cancelled = len(made.cancelled_bookings)
            flash(
                _("The closure is added.")
                + (
                    " "
                    + ngettext(
                        "%(num)d booking cancelled.", "%(num)d bookings cancelled.", cancelled
                    )
                    if cancelled
                    else ""
                ),
                "success",
            )
            return redirect_to("staff_premises.edit", premises_id=premises_id)
    page = render_template(
        "staff/premises_edit.html",
        form=_form_of(row),
        row=row,
        weekdays=WEEKDAYS,
        accessibility=ACCESSIBILITY,
        closure=closure,
        retire=Form(),
    )
    return page, 422


@bp.route("/<premises_id>/retire", methods=["POST"])
@signed_in_as(*STAFF)
def retire(premises_id: str) -> Any:
    user = page_user()
    assert user is not None
    with read_transaction(runtime().engine) as conn:
        row = premises_row(conn, premises_id)
    form = Form(request.form)
    reason = form.text("retire_reason", 1000)
    if not form.checked("retire_confirm"):
        form.error("retire_confirm", _("Tick the box to confirm."))
    if form.ok:
        acting, cancel = _acting(), form.checked("retire_cancel_conflicting")
        zone = ZoneInfo(row.timezone)
        try:
            done = run(
                lambda conn: catalogue.retire_premises(
                    conn, runtime().premises, acting, premises_id, reason, cancel
                )
            )
        except SlotTaken as error:
            spans = ", ".join(span_text(c.slot.start, c.slot.end, zone) for c in error.conflicts)
            form.error(
                "retire_cancel_conflicting",
                _(
                    "These premises have bookings still to come: %(spans)s. Tick the box to "
                    "cancel them (each booker is told the reason).",
                    spans=spans,
                ),
            )
        except DomainError as error:
            form.take_domain_error(error, {}, None)
        else:
            cancelled = len(done.cancelled_bookings)
            if cancelled:
                flash(
                    ngettext(
                        "%(num)d booking cancelled.", "%(num)d bookings cancelled.", cancelled
                    ),
                    "success",
                )
            flash(_("The premises is retired."), "success")
            return redirect_to("staff_premises.index")
    page = render_template(
        "staff/premises_edit.html",
        form=_form_of(row),
        row=row,
        weekdays=WEEKDAYS,
        accessibility=ACCESSIBILITY,
        closure=Form(),
        retire=form,
    )
    return page, 422
