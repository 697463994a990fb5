"""The domain's refusals in the reader's language.

The domain speaks English in fixed sentences (booking/domain/rules.py, decide.py); the pages
match each sentence and say it again through gettext. A sentence not known here is shown as
the domain wrote it, which is better than hiding it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _
from flask_babel import ngettext

Translate = Callable[[re.Match[str]], str]


def _n(match: re.Match[str]) -> int:
    return int(float(match.group(1)))


PATTERNS: list[tuple[re.Pattern[str], Translate]] = [
    (
        re.compile(r"A booking lasts at least (\d+) minutes\."),
        lambda m: _("A booking lasts at least %(n)d minutes.", n=_n(m)),
    ),
    (
        re.compile(r"A booking lasts at most (\d+) minutes\."),
        lambda m: _("A booking lasts at most %(n)d minutes.", n=_n(m)),
    ),
    (
        re.compile(r"Book at least (\d+) minutes ahead\."),
        lambda m: _("Book at least %(n)d minutes ahead.", n=_n(m)),
    ),
    (
        re.compile(r"Book at most (\d+) days ahead\."),
        lambda m: ngettext(
            "Book at most %(num)d day ahead.", "Book at most %(num)d days ahead.", _n(m)
        ),
    ),
    (
        re.compile(r"The premises holds at most (\d+) people\."),
        lambda m: _("The premises holds at most %(n)d people.", n=_n(m)),
    ),
    (
        re.compile(r"Over the organisation's quota of ([\d.]+) hours per week\."),
        lambda m: _("Over your organisation's quota of %(q)s hours a week.", q=m.group(1)),
    ),
    (
        re.compile(r"Over the organisation's quota of ([\d.]+) hours per month\."),
        lambda m: _("Over your organisation's quota of %(q)s hours a month.", q=m.group(1)),
    ),
    (
        re.compile(r"The booking is already (\w+)\."),
        lambda m: _("The booking is already %(status)s.", status=status_name(m.group(1))),
    ),
    (
        re.compile(r"The booking is (\w+), not pending approval\."),
        lambda m: _(
            "The booking is %(status)s, not waiting for approval.", status=status_name(m.group(1))
        ),
    ),
    (
        re.compile(r"A pop-up lasts at most (\d+) minutes\."),
        lambda m: _("A pop-up lasts at most %(n)d minutes.", n=_n(m)),
    ),
    (
        re.compile(r"Ask at least (\d+) minutes ahead\."),
        lambda m: _("Ask at least %(n)d minutes ahead.", n=_n(m)),
    ),
    (
        re.compile(r"The request is (\w+)(, not pending)?\."),
        lambda m: _("The request is already %(status)s.", status=status_name(m.group(1))),
    ),
    (re.compile(r"No pop-up request .*"), lambda m: _("No such pop-up request.")),
    (re.compile(r"No premises .*"), lambda m: _("No such premises.")),
    (re.compile(r"No booking series .*"), lambda m: _("No such booking series.")),
    (re.compile(r"No booking .*"), lambda m: _("No such booking.")),
    (
        re.compile(r"not a valid RRULE.*|give .*RRULE.*|the rule needs.*"),
        lambda m: _("The repetition is not valid."),
    ),
    (
        re.compile(r"more than (\d+) occurrences"),
        lambda m: _("Too many repetitions: at most %(n)d.", n=_n(m)),
    ),
]

FIXED: dict[str, Callable[[], str]] = {
    "Only organisations can book these premises.": lambda: _(
        "Only organisations can book these premises."
    ),
    "The premises is not open for the whole booking.": lambda: _(
        "The premises is not open for the whole time."
    ),
    "The premises is closed at that time.": lambda: _("The premises is closed at that time."),
    "The premises is no longer in use.": lambda: _("The premises is no longer in use."),
    "Residents may ask for pop-up slots; bookings are for organisations.": lambda: _(
        "Bookings are for organisations; residents may ask for a pop-up slot."
    ),
    "You may book only for your own organisation.": lambda: _(
        "You may book only for your own organisation."
    ),
    "The booking belongs to another organisation.": lambda: _(
        "The booking belongs to another organisation."
    ),
    "The series belongs to another organisation.": lambda: _(
        "The series belongs to another organisation."
    ),
    "The series is already cancelled.": lambda: _("The series is already cancelled."),
    "The booking is over.": lambda: _("The booking is already over."),
    "The rule gives no occurrences.": lambda: _("The repetition gives no dates."),
    "No occurrence of the series can be booked.": lambda: _(
        "None of the repeated times can be booked."
    ),
    "A retired premises cannot be changed.": lambda: _("A retired premises cannot be changed."),
    "The premises is already retired.": lambda: _("The premises is already retired."),
    "Only staff may change the premises catalogue.": lambda: _(
        "Only staff may change the premises catalogue."
    ),
    "Not a known IANA time zone.": lambda: _("Not a known time zone."),
    "min_duration_minutes is more than max_duration_minutes.": lambda: _(
        "The shortest booking is longer than the longest."
    ),
    "Give a name in at least one language.": lambda: _("Give a name in at least one language."),
    "The end must be after the start.": lambda: _("The end must be after the start."),
    "conflict": lambda: _("The time is already taken."),
    "These premises take no pop-up requests.": lambda: _("These premises take no pop-up requests."),
    "A pop-up starts within the next 30 days.": lambda: _(
        "A pop-up slot must start within the next 30 days."
    ),
    "Too close to the start for staff to decide; ask at least an hour ahead.": lambda: _(
        "Too close to the start for staff to decide; ask at least an hour ahead."
    ),
    "The premises is not open for the whole slot.": lambda: _(
        "The premises is not open for the whole time."
    ),
    "Only the requester may withdraw the request.": lambda: _(
        "Only the requester may withdraw the request."
    ),
    "The decision deadline has passed; the request is expiring.": lambda: _(
        "The decision deadline has passed; the request is expiring."
    ),
    "The pop-up is over.": lambda: _("The pop-up is already over."),
}


def translate(message: str) -> str:
    text = message.strip()
    if text in FIXED:
        return FIXED[text]()
    for pattern, say in PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return say(match)
    return text


def status_name(status: str) -> str:
    names = {
        "confirmed": _("confirmed"),
        "pending_approval": _("waiting for approval"),
        "cancelled": _("cancelled"),
        "rejected": _("rejected"),
        "pending": _("waiting for a decision"),
        "approved": _("approved"),
        "withdrawn": _("withdrawn"),
        "expired": _("expired"),
    }
    return str(names.get(status, status))
