"""The allocation rounds in the reader's language: statuses, age groups, criteria in words,
why a section got less than it asked, and the allocation rules' refusals.

The allocator and its decider speak English in fixed sentences (booking/allocation/
validate.py, decide.py, explain.py); as booking.pages.messages does for bookings, each
sentence is matched here and said again through gettext. An unknown one is shown as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

from flask_babel import get_translations, ngettext
from flask_babel import gettext as _

from booking.allocation import explain
from booking.allocation.model import WEEKDAYS
from booking.allocation.tiers import AGE_GROUPS as AGE_GROUPS
from booking.allocation.tiers import CRITERIA as CRITERIA
from booking.allocation.tiers import YOUNG as YOUNG
from booking.domain.accounts import ORGANISATION_TYPES as ORGANISATION_TYPES
from booking.pages import common
from booking.pages.messages import translate as translate_booking


def round_status(status: str) -> str:
    names = {
        "upcoming": _("upcoming"),
        "open": _("open for applications"),
        "allocating": _("being allocated"),
        "published": _("published"),
        "closed": _("closed"),
    }
    return str(names.get(status, status))


def application_status(status: str) -> str:
    names = {"submitted": _("submitted"), "withdrawn": _("withdrawn")}
    return str(names.get(status, status))


def offer_status(status: str) -> str:
    names = {
        "proposed": _("proposed"),
        "offered": _("offered, waiting for your answer"),
        "accepted": _("accepted"),
        "declined": _("declined"),
        "lapsed": _("lapsed (not answered in time)"),
    }
    return str(names.get(status, status))


def priority_name(priority: str) -> str:
    names = {
        "primary": _("primary time"),
        "secondary": _("secondary time"),
        "outside_wishes": _("outside the wishes"),
    }
    return str(names.get(priority, priority))


def age_group_name(group: str) -> str:
    if group == "mixed":
        return str(_("mixed ages"))
    if group == "65+":
        return str(_("65 years and over"))
    return str(_("%(range)s years", range=group.replace("-", "–")))


def organisation_type_name(kind: str) -> str:
    names = {
        "association": _("associations"),
        "company": _("companies"),
        "other": _("other organisations"),
    }
    return str(names.get(kind, kind))


def weekday_name(key: str) -> str:
    """`mon` → the weekday's name in the reader's language."""
    monday = date(2024, 1, 1)
    return common.day_name(monday + timedelta(days=WEEKDAYS.index(key)))


def criterion_text(criterion: Mapping[str, Any]) -> str:
    """A round's criterion as a sentence (booking/allocation/tiers.py says what each means)."""
    values = [str(v) for v in criterion.get("in") or ()]
    match criterion.get("key"):
        case "age_group":
            groups = ", ".join(age_group_name(v) for v in values or YOUNG)
            return str(_("Age of the group: %(groups)s", groups=groups))
        case "organisation_type":
            kinds = ", ".join(organisation_type_name(v) for v in values or ("association",))
            return str(_("The applicant is one of: %(kinds)s", kinds=kinds))
        case "previous_season":
            return str(
                _("The organisation accepted a slot at the same premises in the previous round")
            )
        case "purpose":
            words = ", ".join(f"“{v}”" for v in values)
            return str(_("The purpose mentions %(words)s", words=words))
    return str(criterion.get("key", ""))


def slot_text(weekday: str, start: str, end: str) -> str:
    return f"{weekday_name(weekday)} {start}–{end}"


def unallocated_reason(
    entry: Mapping[str, Any], premises_name: Callable[[str], str], got: int = 0
) -> str:
    """Why a section got fewer slots than it asked (`got` it did get), naming what holds its
    wished times: booking.allocation.explain's sentence in the reader's language."""
    holders = [
        _(
            "%(section)s (priority group %(tier)d) at %(premises)s %(slot)s",
            section=b.get("section", ""),
            tier=int(b.get("tier") or 0),
            premises=premises_name(str(b.get("premises_id", ""))),
            slot=slot_text(str(b["weekday"]), str(b["start_time"]), str(b["end_time"])),
        )
        for b in entry.get("blocked_by") or []
    ]
    return explain.sentence(explain.code_of(dict(entry)), holders, got, get_translations().gettext)


Say = Callable[[re.Match[str]], str]

PATTERNS: list[tuple[re.Pattern[str], Say]] = [
    (
        re.compile(r"From (\d+) to (\d+) a week\."),
        lambda m: _("From %(low)s to %(high)s slots a week.", low=m[1], high=m[2]),
    ),
    (
        re.compile(r"From (\d+) to (\d+) days\."),
        lambda m: _("From %(low)s to %(high)s days.", low=m[1], high=m[2]),
    ),
    (
        re.compile(r"Not in this round: (.+)\."),
        lambda m: _("Not a premises of this round: %(ids)s.", ids=m[1]),
    ),
    (
        re.compile(r"Not premises in use: (.+)\."),
        lambda m: _("Not premises in use: %(ids)s.", ids=m[1]),
    ),
    (re.compile(r"(\S+) is not in use\."), lambda m: _("%(id)s is not in use.", id=m[1])),
    (
        re.compile(r"(\S+) holds at most (\d+) people\."),
        lambda m: _("%(id)s holds at most %(n)s people.", id=m[1], n=m[2]),
    ),
    (
        re.compile(r"(\S+) takes (\d+)–(\d+) minutes\."),
        lambda m: _("%(id)s takes %(low)s–%(high)s minutes.", id=m[1], low=m[2], high=m[3]),
    ),
    (
        re.compile(r"No wished premises is open for (\d+) minutes within these times\."),
        lambda m: _(
            "None of the wished premises is open for %(n)s minutes within these times.", n=m[1]
        ),
    ),
    (
        re.compile(r"Applications are taken from .* the round is (\w+)\."),
        lambda m: _(
            "Applications are not taken now: the round is %(status)s.",
            status=round_status(m[1]),
        ),
    ),
    (
        re.compile(r"Staff .* while the round is allocating; it is (\w+)\."),
        lambda m: _(
            "This is done while the round is being allocated; it is %(status)s.",
            status=round_status(m[1]),
        ),
    ),
    (
        re.compile(r"(\S+) is not open (\w{3}) (\d\d:\d\d)–(\d\d:\d\d)\."),
        lambda m: _("%(id)s is not open %(slot)s.", id=m[1], slot=slot_text(m[2], m[3], m[4])),
    ),
    (
        re.compile(
            r"The time is taken by allocation \S+ \((.+), (\S+) (\d\d:\d\d)–(\d\d:\d\d)\)\."
        ),
        lambda m: _(
            "The time is taken by %(section)s at %(premises)s %(start)s–%(end)s.",
            section=m[1],
            premises=m[2],
            start=m[3],
            end=m[4],
        ),
    ),
    (
        re.compile(
            r"The time is too close to allocation \S+ \((.+), (\S+) (\w{3}) (\d\d:\d\d)–"
            r"(\d\d:\d\d)\): (\S+) keeps (\d+) minutes free after each booking\."
        ),
        lambda m: _(
            "The time is too close to %(section)s at %(premises)s %(slot)s: %(kept)s keeps "
            "%(n)s minutes free after each booking.",
            section=m[1],
            premises=m[2],
            slot=slot_text(m[3], m[4], m[5]),
            kept=m[6],
            n=m[7],
        ),
    ),
    (
        re.compile(r"The section asked for (\d+) slot\(s\) a week\."),
        lambda m: ngettext(
            "The section asked for %(num)d slot a week.",
            "The section asked for %(num)d slots a week.",
            int(m[1]),
        ),
    ),
    (
        re.compile(r"The section asked for (\d+) minutes\."),
        lambda m: _("The section asked for %(n)s minutes.", n=m[1]),
    ),
    (
        re.compile(r"The offer is (\w+) already\."),
        lambda m: _("The offer is %(status)s already.", status=offer_status(m[1])),
    ),
    (re.compile(r"No offer .*"), lambda m: _("No such offer.")),
    (re.compile(r"No allocation .*"), lambda m: _("No such allocation.")),
    (re.compile(r"No application .*"), lambda m: _("No such application.")),
    (re.compile(r"No allocation round .*"), lambda m: _("No such allocation round.")),
    (re.compile(r"the current version is \d+"), lambda m: _("Someone changed this meanwhile.")),
]

FIXED: dict[str, Callable[[], str]] = {
    "Accept the round's terms to apply.": lambda: _("Accept the round's terms to apply."),
    "Each section needs a name of its own.": lambda: _("Each section needs a name of its own."),
    "Name each premises once.": lambda: _("Name each premises once."),
    "Each window ends after it begins.": lambda: _("Each time window ends after it begins."),
    "The season ends on or after its first day.": lambda: _(
        "The season ends on or after its first day."
    ),
    "Applications close after they open.": lambda: _("Applications close after they open."),
    "Applications close before the season ends.": lambda: _(
        "Applications close before the season ends."
    ),
    "A season lasts at most a year.": lambda: _("A season lasts at most a year."),
    "A booker applies for their own organisation.": lambda: _(
        "You may apply only for your own organisation."
    ),
    "The application is another organisation's.": lambda: _(
        "The application is another organisation's."
    ),
    "The application was withdrawn.": lambda: _("The application was withdrawn."),
    "Only staff run allocation rounds.": lambda: _("Only staff run allocation rounds."),
    "No such application in this round.": lambda: _("No such application in this round."),
    "The application has no section of this name.": lambda: _(
        "The application has no section of this name."
    ),
    "Not a premises of this round.": lambda: _("Not a premises of this round."),
    "The slot ends after it begins.": lambda: _("The slot ends after it begins."),
    "The section did not ask for this premises.": lambda: _(
        "The section did not ask for this premises."
    ),
    "The time is outside the section's wishes.": lambda: _(
        "The time is outside the section's wishes."
    ),
    "The section has a slot that day already.": lambda: _(
        "The section has a slot that day already."
    ),
    "Give a reason to override.": lambda: _("Give a reason to override."),
    "Make a proposal before publishing.": lambda: _("Make a proposal before publishing."),
    "The offer is another organisation's.": lambda: _("The offer is another organisation's."),
    "The offer has lapsed: its confirm_by has passed.": lambda: _(
        "The offer has lapsed: the time to answer is over."
    ),
    "Name the organisation that applies.": lambda: _("Choose the organisation that applies."),
}


def translate(message: str) -> str:
    """An allocation rule's sentence in the reader's language; else the bookings' ones."""
    text = message.strip()
    if text in FIXED:
        return str(FIXED[text]())
    for pattern, say in PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return str(say(match))
    return translate_booking(text)
