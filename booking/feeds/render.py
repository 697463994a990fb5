"""A feed's iCalendar text (RFC 5545, RFC 7986): the calendar's own properties and one VEVENT
per entry, with no METHOD (a feed is a snapshot).

Times are in UTC, so no VTIMEZONE is needed (a generated Europe/Helsinki VTIMEZONE has been
seen to put the spring change an hour off; every client shows UTC in local time).
DTSTAMP = LAST-MODIFIED = the entry's last change, SEQUENCE grows with each change. A
cancelled or rejected booking is STATUS:CANCELLED, TRANSP:TRANSPARENT with a "Peruttu /
Avbokad / Cancelled:" title (Google shows cancelled events of subscriptions as if they were
on). A feed has no reader to ask, so its fixed words are in Finnish, Swedish and English.

Two writers give the same bytes: `event_of` builds the icalendar library's component (the
reference), and `public_event` / `private_event` write its lines directly, escaping TEXT and
folding as the library does (tests/property/test_public_event.py compares them on arbitrary
rows). The library's way took most of a feed request's time: seconds for a staff feed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from icalendar import Calendar, Event

from booking.cache import caches
from booking.privacy import PersonalData

try:  # the library's own escaping and folding (the reference of `fold`): private since 7
    from icalendar.parser.string import _escape_char, _foldline
except ImportError:  # icalendar 6
    from icalendar.parser import (  # type: ignore[attr-defined, no-redef, unused-ignore]
        escape_char as _escape_char,
    )
    from icalendar.parser import (  # type: ignore[attr-defined, no-redef, unused-ignore]
        foldline as _foldline,
    )

PRODID = "-//Tilavaraus//Tilavaraus feeds 1.0//FI"
# A feed has no reader to ask (no content negotiation): its fixed words are in all three
# languages of the service, Finnish, Swedish and English — except a private booking's
# SUMMARY, which API.md words exactly: "Varattu / Booked".
BOOKED = "Varattu / Booked"
CLOSED = "Suljettu / Stängd / Closed"
CANCELLED = "Peruttu / Avbokad / Cancelled"
BOOKINGS = "varaukset / bokningar / bookings"
REFRESH = timedelta(hours=1)
STATUSES = {
    "confirmed": ("CONFIRMED", "vahvistettu / bekräftad / confirmed"),
    "pending_approval": (
        "TENTATIVE",
        "odottaa hyväksyntää / väntar på godkännande / pending approval",
    ),
    "closed": ("CONFIRMED", "suljettu / stängd / closed"),
    "cancelled": ("CANCELLED", "peruttu / avbokad / cancelled"),
    "rejected": ("CANCELLED", "hylätty / avslagen / rejected"),
}
END_CALENDAR = b"END:VCALENDAR\r\n"
FOLD_AT = 75  # octets per line, RFC 5545 3.1


def premises_name(head: Any) -> str:
    names = head.name or {}
    given = [str(names[k]) for k in ("fi", "sv", "en") if names.get(k)]
    unique = list(dict.fromkeys(given))  # the same name in two languages is said once
    return " / ".join(unique) or str(head.key)


def premises_label(head: Any) -> str:
    """What LOCATION says: the premises' name and address."""
    name = premises_name(head)
    return f"{name}, {head.address}" if head.address else name


def reach_text(first: date, last: date, narrowed: bool) -> str:
    """The calendar's X-WR-CALDESC: the local days it covers, and why when
    it covers fewer than asked (a feed has no reader's language: all three)."""
    days = f"{first.isoformat()} – {last.isoformat()}"
    text = f"Varaukset / Bokningar / Bookings {days}"
    if narrowed:
        text += (
            ". Rajattu alle 1 Mt, jonka isommat kalenterit hylkäävät: tilaa yksi syöte"
            " tilaa kohden / Begränsad under 1 MB, som större kalendrar avvisar: prenumerera"
            " på ett flöde per lokal / Narrowed to stay under 1 MB, which calendar apps"
            " drop: subscribe to one feed per premises"
        )
    return text


def new_calendar(name: str, description: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("NAME", name)
    calendar.add("X-WR-CALNAME", name)
    if description is not None:
        # Not DESCRIPTION (RFC 7986): at the top of a public feed it reads as if an
        # event's details had leaked; X-WR-CALDESC is what calendar apps show.
        calendar.add("X-WR-CALDESC", description)
    calendar.add("REFRESH-INTERVAL", REFRESH, parameters={"VALUE": "DURATION"})
    # Written as text: the library would format this non-standard property's timedelta as
    # "1:00:00".
    calendar.add("X-PUBLISHED-TTL", "PT1H")
    return calendar


def summary_of(row: Any, details: bool, via: str | None = None) -> str:
    """SUMMARY: the title when it may be shown; `via` names the other premises sharing a
    space whose entry this is (busy time only: never its title, reason or booker)."""
    if via is not None:
        summary = f"{CLOSED if row.kind == 'closure' else BOOKED} ({via})"
    elif row.kind == "closure":
        summary = f"{CLOSED}: {row.title}" if details else CLOSED
    else:
        summary = row.title if details or row.public else BOOKED
    return f"{CANCELLED}: {summary}" if STATUSES[row.status][0] == "CANCELLED" else summary


class Opens(Protocol):
    """What opens sealed personal data (booking/privacy.py `PersonalData`)."""

    def open(self, envelope: str | None) -> str | None: ...


class Opened:
    """Opens envelopes through `personal`, each once: a staff feed names the same few
    contacts on thousands of entries. Lives for one request, like `personal`."""

    def __init__(self, personal: Opens) -> None:
        self._personal = personal
        self._texts: dict[str | None, str | None] = {}

    def open(self, envelope: str | None) -> str | None:
        if envelope not in self._texts:
            self._texts[envelope] = self._personal.open(envelope)
        return self._texts[envelope]


def contact_of(personal: Opens, name: str | None, email: str | None) -> str | None:
    """The booker's name and e-mail, or None once the person is erased (the privacy layer
    opens envelopes and reads an erased person's data as nothing)."""
    name, email = personal.open(name), personal.open(email)
    if not name and not email:
        return None
    return f"{name} <{email}>" if name and email else name or email


def description_of(row: Any, personal: Opens, contact: str | None) -> str:
    lines = []
    if row.kind == "closure":
        lines.append(f"Syy / Orsak / Reason: {row.title}")
    else:
        if row.organisation_name:
            lines.append(f"Järjestö / Organisation / Organisation: {row.organisation_name}")
        lines.append(f"Osallistujia / Deltagare / Attendees: {row.attendees}")
        lines.append(f"Tila / Status / Status: {STATUSES[row.status][1]}")
        if contact:
            lines.append(f"Yhteyshenkilö / Kontaktperson / Contact: {contact}")
        if notes := personal.open(row.notes):
            lines.append(f"Lisätiedot / Anteckningar / Notes: {notes}")
        if row.reason and STATUSES[row.status][0] == "CANCELLED":
            lines.append(f"Syy / Orsak / Reason: {personal.open(row.reason) or ''}")
    return "\n".join(lines)


# --- the library's way: the reference ------------------------------------------------------


def render(
    name: str,
    rows: Iterable[Any],
    locations: dict[str, str],
    personal: PersonalData | None,
    description: str | None = None,
    shared: dict[str, str] | None = None,
) -> bytes:
    """A whole feed built with the icalendar library (what the fast writers must equal);
    `shared` names the other premises whose entries are busy time only (`summary_of`)."""
    calendar = new_calendar(name, description)
    for row in rows:
        via = (shared or {}).get(row.premises_id)
        calendar.add_component(event_of(row, locations, None if via else personal, via))
    body: bytes = calendar.to_ical()
    return body


def event_of(
    row: Any, locations: dict[str, str], personal: PersonalData | None, via: str | None = None
) -> Event:
    status = STATUSES[row.status][0]
    event = Event()
    event.add("UID", row.uid)
    event.add("DTSTAMP", row.last_modified)
    event.add("LAST-MODIFIED", row.last_modified)
    event.add("CREATED", row.created_at)
    event.add("SEQUENCE", row.sequence)
    event.add("DTSTART", row.start)
    event.add("DTEND", row.end)
    event.add("SUMMARY", summary_of(row, personal is not None, via))
    event.add("STATUS", status)
    event.add("TRANSP", "TRANSPARENT" if status == "CANCELLED" else "OPAQUE")
    event.add("LOCATION", locations.get(row.premises_id, row.premises_id))
    if personal is not None:
        contact = contact_of(personal, row.contact_name, row.contact_email)
        event.add("DESCRIPTION", description_of(row, personal, contact))
        if contact:
            event.add("CONTACT", contact)
    return event


# --- the fast way: the same bytes ----------------------------------------------------------


def calendar_text(name: str, description: str | None = None) -> bytes:
    """The calendar's own properties up to (not including) its END, made once per process."""
    made = caches().feed_events
    key = ("VCALENDAR", name, description)
    head = made.get(key)
    if head is None:
        head = new_calendar(name, description).to_ical().removesuffix(END_CALENDAR)
        made.put(key, head, len(head) + 100)
    return head


def event_text(row: Any, locations: dict[str, str], via: str | None = None) -> bytes:
    """A public entry's VEVENT, made once per process: its row, LOCATION and `via` (the
    name of the other premises sharing a space, for busy time only) are all its text
    depends on. `row` holds public columns only (never a private feed's)."""
    made = caches().feed_events
    location = locations.get(row.premises_id, row.premises_id)
    key = (tuple(row), location, via)
    text = made.get(key)
    if text is None:
        text = public_event(row, location, via)
        made.put(key, text, len(text) + 1000)  # the key: a row of strings and instants
    return text


def public_event(row: Any, location: str, via: str | None = None) -> bytes:
    """`event_of(row, …, None, via).to_ical()`, byte for byte: the properties in the order
    the library writes them (SUMMARY, DTSTART, DTEND, DTSTAMP, UID, SEQUENCE, then by name).
    With `via`, the entry of another premises sharing a space: busy, no details."""
    status = STATUSES[row.status][0]
    changed = _utc(row.last_modified)
    return (
        "BEGIN:VEVENT\r\n"
        + _line("SUMMARY", summary_of(row, False, via))
        + f"DTSTART:{_utc(row.start)}\r\nDTEND:{_utc(row.end)}\r\nDTSTAMP:{changed}\r\n"
        + _line("UID", row.uid)
        + f"SEQUENCE:{int(row.sequence)}\r\nCREATED:{_utc(row.created_at)}\r\n"
        + f"LAST-MODIFIED:{changed}\r\n"
        + _line("LOCATION", location)
        + _ending(status)
    ).encode()


def private_event(row: Any, location: str, personal: Opens) -> bytes:
    """`event_of(row, …, personal).to_ical()`, byte for byte. Made afresh every time: it
    opens personal data, which must stop showing the moment its owner is erased."""
    status = STATUSES[row.status][0]
    contact = contact_of(personal, row.contact_name, row.contact_email)
    changed = _utc(row.last_modified)
    return (
        "BEGIN:VEVENT\r\n"
        + _line("SUMMARY", summary_of(row, True))
        + f"DTSTART:{_utc(row.start)}\r\nDTEND:{_utc(row.end)}\r\nDTSTAMP:{changed}\r\n"
        + _line("UID", row.uid)
        + f"SEQUENCE:{int(row.sequence)}\r\n"
        + (_line("CONTACT", contact) if contact else "")
        + f"CREATED:{_utc(row.created_at)}\r\n"
        + _line("DESCRIPTION", description_of(row, personal, contact))
        + f"LAST-MODIFIED:{changed}\r\n"
        + _line("LOCATION", location)
        + _ending(status)
    ).encode()


def _line(name: str, value: str) -> str:
    """A TEXT property's content line, escaped and folded, with its CRLF."""
    return fold(f"{name}:{_text(value)}") + "\r\n"


def _ending(status: str) -> str:
    transp = "TRANSPARENT" if status == "CANCELLED" else "OPAQUE"
    return f"STATUS:{status}\r\nTRANSP:{transp}\r\nEND:VEVENT\r\n"


def _text(value: str) -> str:
    """A TEXT value escaped as the library's vText does (without building one)."""
    text: str = _escape_char(value)
    return text


def _utc(instant: datetime) -> str:
    t = instant.astimezone(UTC)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}Z"


def fold(line: str) -> str:
    """The library's `_foldline(line)`, in slices rather than character by character: each
    piece the longest prefix under 75 octets, except that a piece never ends in a lone
    backslash or caret (the library keeps an escape whole)."""
    if len(line) < FOLD_AT // 4:
        return line
    size = len(line.encode())
    if size < FOLD_AT:
        return line
    limit = FOLD_AT - 1
    ascii_only = size == len(line)
    pieces: list[str] = []
    at = 0
    while at < len(line):
        piece = line[at : at + limit]
        if not ascii_only:
            over = len(piece.encode()) - limit
            while over > 0:  # a character has at most 4 octets: never cut too much
                piece = piece[: len(piece) + over // -4]
                over = len(piece.encode()) - limit
        if at + len(piece) < len(line) and len(piece) > 1 and piece[-1] in "\\^":
            piece = piece[:-1]
        pieces.append(piece)
        at += len(piece)
    return "\r\n ".join(pieces)


__all__ = ["_foldline"]  # the reference the property tests compare `fold` with
