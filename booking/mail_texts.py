"""What each kind of e-mail says, in the recipient's language.

The sentences are in the Babel catalogues (booking/translations), the same as the pages';
`texts` takes the recipient's catalogue (`booking.i18n.translations`), so a mail is
rendered the same inside a request or in a job. `local_time` writes a slot the way each
language writes a day and a time. Which events become which mails: booking/notifications.py.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.support import NullTranslations


def texts(kind: str, catalogue: NullTranslations, fields: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of one kind of mail in the catalogue's language.

    The sentences live in the Babel catalogues (booking/translations) like every page text;
    fields: premises, when, title, reason, count, skipped; a round's mails: round,
    organisation, season, confirm_by, slot, and the lines of sections, offers, unallocated."""
    count = int(fields.get("count") or 0)
    subject, body = mail_sentences(kind, catalogue, count)
    values = {"num": count, **fields}
    subject, body = subject % values, body % values
    if fields.get("sections") or fields.get("offers") or fields.get("unallocated"):
        _ = catalogue.gettext
        for name, heading in (
            ("sections", _("Sections applied for:")),
            ("offers", _("Offered weekly slots:")),
            ("unallocated", _("Not allocated, and why:")),
        ):
            lines: Sequence[str] = fields.get(name) or ()
            if lines:
                body += f"\n\n{heading}" + "".join(f"\n– {line}" for line in lines)
    skipped: Sequence[str] = fields.get("skipped") or ()
    if skipped:  # a series names the dates it could not book, and why
        body += "\n\n" + catalogue.ngettext(
            "%(num)d date could not be booked:", "%(num)d dates could not be booked:", len(skipped)
        ) % {"num": len(skipped)}
        body += "".join(f"\n– {line}" for line in skipped)
    return subject, body


@functools.lru_cache(maxsize=1024)
def mail_sentences(kind: str, catalogue: NullTranslations, count: int) -> tuple[str, str]:
    """The (subject, body) sentences of one kind of mail, translated, before their fields
    are filled in: looked up once per kind, catalogue and count (an expiry run mails 10,000
    requesters the same two sentences; looking them up each time was a quarter of `texts`'
    time). The catalogues live as long as the process (`booking.i18n.translations`)."""
    _, ngettext = catalogue.gettext, catalogue.ngettext
    match kind:
        case "confirmed":
            subject = _("Booking confirmed: %(premises)s")
            body = _("Your booking %(title)s is confirmed.\n%(premises)s, %(when)s.")
        case "pending":
            subject = _("Booking awaits approval: %(premises)s")
            body = _(
                "Your booking %(title)s awaits approval by staff. The slot is held for you."
                "\n%(premises)s, %(when)s."
            )
        case "series":
            subject = _("Recurring booking placed: %(premises)s")
            body = ngettext(
                "Your recurring booking %(title)s is placed: %(num)d time, the first %(when)s."
                "\n%(premises)s.",
                "Your recurring booking %(title)s is placed: %(num)d times, the first %(when)s."
                "\n%(premises)s.",
                count,
            )
        case "approved":
            subject = _("Booking approved: %(premises)s")
            body = _("Your booking %(title)s is approved.\n%(premises)s, %(when)s.")
        case "rejected":
            subject = _("Booking rejected: %(premises)s")
            body = _(
                "Your booking %(title)s was rejected.\nReason: %(reason)s\n%(premises)s, %(when)s."
            )
        case "cancelled":
            subject = _("Booking cancelled: %(premises)s")
            body = _(
                "The booking %(title)s is cancelled.\nReason: %(reason)s\n%(premises)s, %(when)s."
            )
        case "retired":
            subject = _("Booking cancelled, the premises is taken out of use: %(premises)s")
            body = _(
                "The booking %(title)s is cancelled because %(premises)s is taken out of use."
                "\nReason: %(reason)s\n%(premises)s, %(when)s."
            )
        case "series_cancelled":
            subject = _("Recurring booking cancelled: %(premises)s")
            body = ngettext(
                "The coming occurrence (%(num)d) of %(title)s is cancelled."
                "\nReason: %(reason)s\n%(premises)s, %(when)s.",
                "The coming occurrences (%(num)d) of %(title)s are cancelled."
                "\nReason: %(reason)s\n%(premises)s, the first %(when)s.",
                count,
            )
        case "popup_approved":
            subject = _("Pop-up approved: %(premises)s")
            body = _("Your pop-up request %(title)s is approved.\n%(premises)s, %(when)s.")
        case "popup_rejected":
            subject = _("Pop-up request rejected: %(premises)s")
            body = _(
                "Your pop-up request %(title)s was rejected.\nReason: %(reason)s"
                "\n%(premises)s, %(when)s."
            )
        case "popup_expired":
            subject = _("Pop-up request expired: %(premises)s")
            body = _(
                "Your pop-up request %(title)s was not decided in time, and the slot is free "
                "again.\n%(premises)s, %(when)s."
            )
        case "message":
            subject = _("New message: %(title)s")
            body = _(
                "You have a new message about: %(title)s.\n%(premises)s, %(when)s."
                "\nRead and reply in the service."
            )
        case "reminder":
            subject = _("Reminder of your booking tomorrow: %(premises)s")
            body = _("A reminder: %(title)s\n%(premises)s, %(when)s.")
        case "application_received":
            subject = _("Application received: %(round)s")
            body = _(
                "The application of %(organisation)s for %(round)s is received: %(title)s."
                "\nThe allocation is published after the application period; you will get an "
                "e-mail then."
            )
        case "offer":
            subject = _("Weekly slots offered: %(round)s")
            body = _(
                "The allocation of %(round)s (%(season)s) is published. %(organisation)s is "
                "offered the weekly slots below.\nAccept or decline each offer in the service "
                "by %(confirm_by)s. An offer not answered by then lapses, and its time is free "
                "for others."
            )
        case "offer_none":
            subject = _("Allocation published: %(round)s")
            body = _(
                "The allocation of %(round)s (%(season)s) is published. %(organisation)s was "
                "not offered any weekly slots; the reasons are below."
            )
        case "offer_reminder":
            subject = _("Reminder: answer the offer by %(confirm_by)s")
            body = _(
                "An offer to %(organisation)s in %(round)s is still unanswered:\n%(slot)s"
                "\nAccept or decline it in the service by %(confirm_by)s. Otherwise it lapses, "
                "and its time is free for others."
            )
        case "offer_declined":
            subject = _("Offer declined: %(round)s")
            body = _(
                "%(organisation)s declined the offer in %(round)s:\n%(slot)s\nIts time is "
                "free for others.\nReason: %(reason)s"
            )
        case "offer_lapsed":
            subject = _("Offer lapsed: %(round)s")
            body = _(
                "The offer to %(organisation)s in %(round)s was not answered by "
                "%(confirm_by)s and has lapsed:\n%(slot)s\nIts time is free for others."
            )
        case _:  # pragma: no cover - a new kind must be given its texts here
            raise KeyError(kind)
    return subject, body


WEEKDAYS = {
    "fi": ("ma", "ti", "ke", "to", "pe", "la", "su"),
    "sv": ("mån", "tis", "ons", "tors", "fre", "lör", "sön"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def local_time(start: datetime, end: datetime, zone: ZoneInfo, language: str) -> str:
    """`ke 2.12.2026 klo 18.00–20.00 (Europe/Helsinki)`, `ons 2.12.2026 kl. 18.00–20.00 (…)`,
    `Wed 2 Dec 2026 18:00–20:00 (…)`: each language's own way of writing a day and a time."""
    s, e = start.astimezone(zone), end.astimezone(zone)
    day = WEEKDAYS.get(language, WEEKDAYS["en"])[s.weekday()]
    nordic = language in ("fi", "sv")
    # Hours and minutes by hand: `strftime` cost more than the rest of a booking's mail text.
    mark = "." if nordic else ":"
    begins = f"{s.hour:02}{mark}{s.minute:02}"
    end_text = f"{e.hour:02}{mark}{e.minute:02}"
    if e.date() != s.date():
        end_text = (f"{e.day}.{e.month}. " if nordic else f"{e.day} {e:%b} ") + end_text
    if language == "fi":
        return f"{day} {s.day}.{s.month}.{s.year} klo {begins}–{end_text} ({zone.key})"
    if language == "sv":
        return f"{day} {s.day}.{s.month}.{s.year} kl. {begins}–{end_text} ({zone.key})"
    return f"{day} {s.day} {s:%b %Y} {begins}–{end_text} ({zone.key})"


def local_instant(instant: datetime, zone: ZoneInfo, language: str) -> str:
    """`ma 30.11.2026 klo 12.00 (Europe/Helsinki)`, `mån 30.11.2026 kl. 12.00 (…)`,
    `Mon 30 Nov 2026 12:00 (…)`: a deadline as each language writes it."""
    s = instant.astimezone(zone)
    day = WEEKDAYS.get(language, WEEKDAYS["en"])[s.weekday()]
    if language == "fi":
        return f"{day} {s.day}.{s.month}.{s.year} klo {s:%H.%M} ({zone.key})"
    if language == "sv":
        return f"{day} {s.day}.{s.month}.{s.year} kl. {s:%H.%M} ({zone.key})"
    return f"{day} {s.day} {s:%b %Y} {s:%H:%M} ({zone.key})"


def local_date(day: date, language: str) -> str:
    """`11.1.2027` in Finnish and Swedish, `11 Jan 2027` in English."""
    if language in ("fi", "sv"):
        return f"{day.day}.{day.month}.{day.year}"
    return f"{day.day} {day:%b %Y}"


def clock_time(hhmm: str, language: str) -> str:
    """A wall-clock `HH:MM` as the language writes it (`17.00` in Finnish and Swedish)."""
    return hhmm.replace(":", ".") if language in ("fi", "sv") else hhmm
