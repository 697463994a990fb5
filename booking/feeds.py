"""/feeds/...: iCalendar subscriptions that calendar apps trust (RFC 5545 and RFC 7986).

- `/feeds/premises/<id>.ics` — public: every booking as busy time, titled only when the
  booking is public ("Varattu / Bokad / Booked" otherwise), closures as
  "Suljettu / Stängd / Closed" (fixed words in Finnish, Swedish and English).
- `/feeds/private/<token>.ics` — a feed token's scope: staff see their premises' bookings
  with details (title, organisation, attendees, notes, contact unless erased) and closures
  with the reason; an organisation sees its own bookings with details.

Rendered from the inline `feed_entries` projection, never by replaying the log. A feed is a
snapshot, so there is no METHOD. Times are in UTC (a generated Europe/Helsinki VTIMEZONE has
been seen to put the spring change an hour off; UTC needs none and every client shows local
time). DTSTAMP = LAST-MODIFIED = the booking's last change, SEQUENCE grows with each change.
A cancelled or rejected booking stays 30 days as STATUS:CANCELLED, TRANSP:TRANSPARENT and a
"Peruttu / Avbokad / Cancelled:" title (Google shows cancelled events of subscriptions as if
they were on), then leaves. The window is the local days from 30 back to 365 ahead; `?from=&to=`
(local dates) narrow or widen it within a year back and two years ahead.

The ETag is the scope's log position plus what else shapes the body (the window's dates and
the rendering format), so it is stable while nothing changes. Last-Modified is the scope's
last change, or the local midnight that moved the window if later.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, request
from icalendar import Calendar, Event, vText
from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.engine import Connection
from werkzeug.exceptions import NotFound
from werkzeug.http import http_date

from booking.accounts import token_hash
from booking.cache import Memo, caches
from booking.domain.errors import RuleBroken
from booking.http import runtime, statement_reads
from booking.privacy import PersonalData
from booking.tables import feed_token_keys, feed_tokens, organisations, users
from events.sql import UTCDateTime
from projections.bookings import bookings_table
from projections.feed_entries import calendars_table, entries_table

try:  # the library's own folding (public_event): private since icalendar 7
    from icalendar.parser.string import _foldline
except ImportError:  # icalendar 6
    from icalendar.parser import foldline as _foldline  # type: ignore[attr-defined, no-redef]

blp = Blueprint("feeds", __name__, url_prefix="/feeds")

PRODID = "-//Tilavaraus//Tilavaraus feeds 1.0//FI"
FORMAT = "2"  # part of every ETag: change it when the rendering changes
# A feed has no reader to ask (no content negotiation): its fixed words are in all three
# languages of the service, Finnish, Swedish and English.
BOOKED = "Varattu / Bokad / Booked"
CLOSED = "Suljettu / Stängd / Closed"
CANCELLED = "Peruttu / Avbokad / Cancelled"
BOOKINGS = "varaukset / bokningar / bookings"
REFRESH = timedelta(hours=1)
DAYS_BACK, DAYS_AHEAD = 30, 365
MAX_DAYS_BACK, MAX_DAYS_AHEAD = 366, 731
KEEP_CANCELLED = timedelta(days=30)
# Within this long after a change, If-Modified-Since never gives 304 and Last-Modified is
# sent a second early: a change in the same second, or one committing late, must not hide.
SETTLE = timedelta(seconds=10)
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
SHOWN_ANYWAY = ("confirmed", "pending_approval", "closed")  # the rest only for 30 days
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- what a feed is: a scope, a window, validators ----------------------------------------


@dataclass(frozen=True)
class Scope:
    kind: str  # premises | organisation
    keys: list[str]
    details: bool  # titles, organisation, attendees, notes, contact
    ident: str  # what distinguishes its ETag from other feeds'


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    cancelled_since: datetime  # cancelled entries changed before this have left
    epoch: datetime  # the local midnight when this window took its place
    key: str


def window_of(today: date, zone: ZoneInfo, first: str | None, last: str | None) -> Window:
    """The feed's window: local days `first`..`last` (defaults 30 back, 365 ahead)."""
    problems: dict[str, list[str]] = {}

    def parse(name: str, text: str | None, default: date, low: date, high: date) -> date:
        if text is None:
            return default
        try:
            if not DATE.fullmatch(text):
                raise ValueError(text)
            found = date.fromisoformat(text)
        except ValueError:
            problems[name] = ["A date: YYYY-MM-DD."]
            return default
        if not low <= found <= high:
            problems[name] = [f"Between {low} and {high}."]
        return found

    low, high = today - timedelta(days=MAX_DAYS_BACK), today + timedelta(days=MAX_DAYS_AHEAD)
    first_day = parse("from", first, today - timedelta(days=DAYS_BACK), low, high)
    last_day = parse("to", last, today + timedelta(days=DAYS_AHEAD), low, high)
    if not problems and last_day < first_day:
        problems["to"] = ["Not before `from`."]
    if problems:
        raise RuleBroken(problems)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)

    epoch = midnight(today)
    return Window(
        start=midnight(first_day),
        end=midnight(last_day + timedelta(days=1)),
        cancelled_since=epoch - KEEP_CANCELLED,
        epoch=epoch,
        key=f"{first_day}/{last_day}/{today}",
    )


@dataclass(frozen=True)
class Validators:
    etag: str  # without quotes
    position: int  # the scope's last change: what the body shows
    last_modified: datetime
    settled: bool  # the last change is older than SETTLE

    @property
    def last_modified_header(self) -> str:
        whole = self.last_modified.replace(microsecond=0)
        return http_date(whole if self.settled else whole - timedelta(seconds=1))

    def not_modified(self, now: datetime) -> bool:
        """If-None-Match when sent (it wins, RFC 9110 13.2.2), else a truthful
        If-Modified-Since: one not in the future, for a change that has settled."""
        if request.headers.get("If-None-Match") is not None:
            return request.if_none_match.contains_weak(self.etag)
        since = request.if_modified_since
        if since is None or since > now or not self.settled:
            return False
        return self.last_modified.replace(microsecond=0) <= since


def validators(scope: Scope, heads: list[Any], window: Window, now: datetime) -> Validators:
    position = max((h.position for h in heads), default=0)
    changed = max((h.changed_at for h in heads), default=window.epoch)
    digest = hashlib.sha256(f"{FORMAT}|{scope.ident}|{window.key}".encode()).hexdigest()[:16]
    return Validators(
        etag=f"{position}-{digest}",
        position=position,
        last_modified=max(changed, window.epoch),
        settled=now - changed >= SETTLE,
    )


# --- reading the entries ------------------------------------------------------------------


def entry_rows(conn: Connection, scope: Scope, window: Window) -> list[Any]:
    keys = scope.keys if scope.kind == "premises" else scope.keys[0]
    params = {
        "keys": keys,
        "start": window.start,
        "end": window.end,
        "cancelled_since": window.cancelled_since,
    }
    return list(conn.execute(_ENTRY_QUERIES[scope.kind, scope.details], params))


def _entry_columns() -> list[Any]:
    e = entries_table
    return [
        e.c.uid,
        e.c.kind,
        e.c.status,
        e.c.sequence,
        e.c.start,
        e.c.end,
        e.c.title,
        e.c.public,
        e.c.premises_id,
        e.c.created_at,
        e.c.last_modified,
    ]


def _entry_query(kind: str, details: bool) -> Select[Any]:
    """The entries of a feed of `kind`, with the private columns when `details`: built once
    per kind (building it per request cost SQLAlchemy more than running it)."""
    e = entries_table
    in_window = and_(
        e.c.start < bindparam("end", type_=UTCDateTime()),
        e.c.end > bindparam("start", type_=UTCDateTime()),
        or_(
            e.c.status.in_(SHOWN_ANYWAY),
            e.c.last_modified >= bindparam("cancelled_since", type_=UTCDateTime()),
        ),
    )
    in_scope: ColumnElement[bool]
    if kind == "premises":
        in_scope = e.c.premises_id.in_(bindparam("keys", expanding=True))
    else:
        in_scope = and_(e.c.organisation_id == bindparam("keys"), e.c.kind == "booking")
    columns = _entry_columns()
    query = select(*columns)
    if details:
        b, o, u = bookings_table, organisations, users
        query = (
            select(
                *columns,
                e.c.attendees,
                b.c.notes,
                b.c.reason,
                o.c.name.label("organisation_name"),
                u.c.name.label("contact_name"),
                u.c.email.label("contact_email"),
            )
            .outerjoin(b, b.c.id == e.c.ref_id)
            .outerjoin(o, o.c.id == e.c.organisation_id)
            .outerjoin(u, u.c.id == e.c.booked_by)
        )
    return query.where(in_scope, in_window).order_by(e.c.start, e.c.uid)


_ENTRY_QUERIES = {
    (kind, details): _entry_query(kind, details)
    for kind in ("premises", "organisation")
    for details in (False, True)
}

# The public columns of the premises' entries changed after a position, in or out of any
# window: what a public body made at that position needs to become the current one.
_CHANGED_ENTRIES = select(*_entry_columns()).where(
    entries_table.c.premises_id.in_(bindparam("keys", expanding=True)),
    entries_table.c.position > bindparam("since"),
)

_HEADS = select(calendars_table).where(
    calendars_table.c.scope == bindparam("scope"),
    calendars_table.c.key.in_(bindparam("keys", expanding=True)),
)


def heads_of(conn: Connection, scope: str, keys: list[str]) -> list[Any]:
    """The `feed_calendars` rows of these keys of a scope (what `calendars` reads, from a
    statement built once)."""
    return list(conn.execute(_HEADS, {"scope": scope, "keys": keys}))


def in_window(row: Any, window: Window) -> bool:
    """What `_entry_query`'s window condition says of one entry row."""
    return (
        row.start < window.end
        and row.end > window.start
        and (row.status in SHOWN_ANYWAY or row.last_modified >= window.cancelled_since)
    )


def contact_of(personal: PersonalData, name: str | None, email: str | None) -> str | None:
    """The booker's name and e-mail, or None once the person is erased (the privacy layer
    opens envelopes and reads an erased person's data as nothing)."""
    name, email = personal.open(name), personal.open(email)
    if not name and not email:
        return None
    return f"{name} <{email}>" if name and email else name or email


# --- rendering ----------------------------------------------------------------------------


def premises_name(head: Any) -> str:
    names = head.name or {}
    given = [str(names[k]) for k in ("fi", "sv", "en") if names.get(k)]
    unique = list(dict.fromkeys(given))  # the same name in two languages is said once
    return " / ".join(unique) or str(head.key)


def premises_label(head: Any) -> str:
    """What LOCATION says: the premises' name and address."""
    name = premises_name(head)
    return f"{name}, {head.address}" if head.address else name


def new_calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("NAME", name)
    calendar.add("X-WR-CALNAME", name)
    calendar.add("REFRESH-INTERVAL", REFRESH, parameters={"VALUE": "DURATION"})
    # Written as text: the library would format this non-standard property's timedelta as
    # "1:00:00".
    calendar.add("X-PUBLISHED-TTL", "PT1H")
    return calendar


def summary_of(row: Any, details: bool) -> str:
    if row.kind == "closure":
        summary = f"{CLOSED}: {row.title}" if details else CLOSED
    else:
        summary = row.title if details or row.public else BOOKED
    return f"{CANCELLED}: {summary}" if STATUSES[row.status][0] == "CANCELLED" else summary


def description_of(row: Any, personal: PersonalData, contact: str | None) -> str:
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


def render(
    name: str,
    rows: Iterable[Any],
    locations: dict[str, str],
    personal: PersonalData | None,
) -> bytes:
    calendar = new_calendar(name)
    for row in rows:
        calendar.add_component(event_of(row, locations, personal))
    body: bytes = calendar.to_ical()
    return body


def event_of(row: Any, locations: dict[str, str], personal: PersonalData | None) -> Event:
    status = STATUSES[row.status][0]
    event = Event()
    event.add("UID", row.uid)
    event.add("DTSTAMP", row.last_modified)
    event.add("LAST-MODIFIED", row.last_modified)
    event.add("CREATED", row.created_at)
    event.add("SEQUENCE", row.sequence)
    event.add("DTSTART", row.start)
    event.add("DTEND", row.end)
    event.add("SUMMARY", summary_of(row, personal is not None))
    event.add("STATUS", status)
    event.add("TRANSP", "TRANSPARENT" if status == "CANCELLED" else "OPAQUE")
    event.add("LOCATION", locations.get(row.premises_id, row.premises_id))
    if personal is not None:
        contact = contact_of(personal, row.contact_name, row.contact_email)
        event.add("DESCRIPTION", description_of(row, personal, contact))
        if contact:
            event.add("CONTACT", contact)
    return event


END_CALENDAR = b"END:VCALENDAR\r\n"


def _calendar_text(name: str) -> bytes:
    made = caches().feed_events
    head = made.get(("VCALENDAR", name))
    if head is None:
        head = new_calendar(name).to_ical().removesuffix(END_CALENDAR)
        made.put(("VCALENDAR", name), head, len(head) + 100)
    return head


def _event_text(row: Any, locations: dict[str, str]) -> bytes:
    """A public entry's VEVENT, made once per process: its row and LOCATION are all its text
    depends on."""
    made = caches().feed_events
    location = locations.get(row.premises_id, row.premises_id)
    key = (tuple(row), location)
    text = made.get(key)
    if text is None:
        text = public_event(row, location)
        made.put(key, text, len(text) + 1000)  # the key: a row of strings and instants
    return text


def public_event(row: Any, location: str) -> bytes:
    """`event_of(row, …, None).to_ical()`, byte for byte, without building the library's
    component: its properties in the order the library writes them, each TEXT escaped and
    each line folded by the library's own functions. Every booking made each worker render
    its entry once, and the library's way took most of a feed request's time when it did.
    (tests/property/test_public_event.py compares the two on arbitrary rows.)"""
    status = STATUSES[row.status][0]
    lines = [
        "BEGIN:VEVENT",
        f"SUMMARY:{vText(summary_of(row, False)).to_ical().decode()}",
        f"DTSTART:{_utc(row.start)}",
        f"DTEND:{_utc(row.end)}",
        f"DTSTAMP:{_utc(row.last_modified)}",
        f"UID:{vText(row.uid).to_ical().decode()}",
        f"SEQUENCE:{int(row.sequence)}",
        f"CREATED:{_utc(row.created_at)}",
        f"LAST-MODIFIED:{_utc(row.last_modified)}",
        f"LOCATION:{vText(location).to_ical().decode()}",
        f"STATUS:{status}",
        f"TRANSP:{'TRANSPARENT' if status == 'CANCELLED' else 'OPAQUE'}",
        "END:VEVENT",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines).encode()


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> str:
    # The library's folding walks a line character by character: only long ones need it.
    return line if len(line) < 75 // 4 or len(line.encode()) < 75 else _foldline(line)


@dataclass(frozen=True)
class PublicBody:
    """A public feed's body as made at one position of its scope, with the entries it was
    joined from in feed order (start, then UID).

    The next body of the same feed and window re-reads only the entries changed after that
    position (`updated`), not every entry of the window: a premises booked all day changes
    its feed several times a second, and reading a year of entries on each change was most
    of a feed request's cost. Entries are never deleted, a change moves an entry's
    `position`, and positions commit in order (the append lock), so the entries changed
    after `position` are all that can differ.
    """

    position: int
    name: str
    locations: dict[str, str]
    uids: list[str]
    starts: list[datetime]
    texts: dict[str, bytes]
    body: bytes

    @classmethod
    def of(cls, position: int, name: str, rows: list[Any], locations: dict[str, str]) -> PublicBody:
        """From every entry of the window, in the entry query's order."""
        texts = {row.uid: _event_text(row, locations) for row in rows}
        uids, starts = [row.uid for row in rows], [row.start for row in rows]
        return cls._joined(position, name, locations, uids, starts, texts)

    @classmethod
    def _joined(
        cls,
        position: int,
        name: str,
        locations: dict[str, str],
        uids: list[str],
        starts: list[datetime],
        texts: dict[str, bytes],
    ) -> PublicBody:
        body = b"".join([_calendar_text(name), *(texts[uid] for uid in uids), END_CALENDAR])
        return cls(position, name, locations, uids, starts, texts, body)

    def updated(self, position: int, changed: list[Any], window: Window) -> PublicBody | None:
        """This body with the entries `changed` after its position; None where the order
        of a new entry would depend on comparing UIDs (another entry starts at the same
        instant: the database's collation orders those), for the caller to read all."""
        uids, starts, texts = list(self.uids), list(self.starts), dict(self.texts)
        for row in changed:
            shown = in_window(row, window)
            if row.uid in texts:
                at = uids.index(row.uid)
                if starts[at] != row.start:
                    return None  # entries keep their times; anything else: read all
                if shown:
                    texts[row.uid] = _event_text(row, self.locations)
                else:
                    del uids[at], starts[at], texts[row.uid]
            elif shown:
                at = bisect_left(starts, row.start)
                if at < len(starts) and starts[at] == row.start:
                    return None
                uids.insert(at, row.uid)
                starts.insert(at, row.start)
                texts[row.uid] = _event_text(row, self.locations)
        return self._joined(position, self.name, self.locations, uids, starts, texts)

    @property
    def size(self) -> int:
        return 2 * len(self.body) + 200 * len(self.uids)


SNAPSHOTS = "tilavaraus.feed_snapshots"


def public_bodies(app: Flask | None = None) -> Memo[PublicBody]:
    """The latest public body made per feed and window, in this process: the base the next
    change's body is made from (the bodies by ETag are `caches().feed_bodies`)."""
    extensions = (app or current_app).extensions
    found: Memo[PublicBody] | None = extensions.get(SNAPSHOTS)
    if found is None:
        found = extensions.setdefault(SNAPSHOTS, Memo(32 * 2**20))
    return found


def public_body(
    conn: Connection, scope: Scope, heads: list[Any], window: Window, position: int
) -> bytes:
    """The body of a public feed at `position`: from the one made last, with the entries
    changed since, when the calendar's name and locations are the same; else from all."""
    name = _calendar_name(conn, scope, heads)
    locations = {h.key: premises_label(h) for h in heads if h.scope == "premises"}
    made, key = public_bodies(), (scope.ident, window.key)
    base = made.get(key)
    found: PublicBody | None = None
    if base is not None and base.name == name and base.locations == locations:
        if base.position == position:
            found = base
        elif base.position < position:
            changed = list(
                conn.execute(_CHANGED_ENTRIES, {"keys": scope.keys, "since": base.position})
            )
            found = base.updated(position, changed, window)
    if found is None:
        found = PublicBody.of(position, name, entry_rows(conn, scope, window), locations)
    if base is None or found.position >= base.position:
        made.put(key, found, found.size)
    return found.body


# --- the views ----------------------------------------------------------------------------


def _calendar_name(conn: Connection, scope: Scope, heads: list[Any]) -> str:
    if scope.kind == "organisation":
        found = conn.execute(
            select(organisations.c.name).where(organisations.c.id == scope.keys[0])
        ).scalar()
        return f"{found or scope.keys[0]} – {BOOKINGS}"
    labels = [premises_name(h) for h in heads]
    shown = ", ".join(labels[:3]) + (f" +{len(labels) - 3}" if len(labels) > 3 else "")
    if scope.details:
        return f"Tilavaraus: {shown}"
    return f"{shown} – {BOOKINGS}"


Resolved = tuple[Scope, list[Any]] | None  # a feed's scope and its heads, or no feed


def serve(resolve: Callable[[Connection], Resolved]) -> Response:
    """The feed `resolve` finds with its `feed_calendars` heads (404 without one), or 304
    when the client's copy is current; the 304 path is one read of the heads."""
    now = datetime.now(UTC)
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    window = window_of(
        now.astimezone(zone).date(), zone, request.args.get("from"), request.args.get("to")
    )
    with statement_reads(runtime().engine) as conn:
        # The heads are read before the entries, so the body is never older than its ETag.
        found = resolve(conn)
        if found is None:
            raise NotFound("No such feed.")
        scope, heads = found
        checks = validators(scope, heads, window, now)
        headers = {
            "ETag": f'"{checks.etag}"',
            "Last-Modified": checks.last_modified_header,
            "Cache-Control": ("private" if scope.details else "public") + ", no-cache",
        }
        if scope.details:
            headers["X-Robots-Tag"] = "noindex"
        if checks.not_modified(now):
            return Response(status=304, headers=headers)
        if scope.details:
            body = _render_private(conn, scope, heads, window)
        else:
            # The ETag names everything a public body shows (entries, names, addresses,
            # window): the body made for it is the body for every request that reads it.
            bodies, name = caches().feed_bodies, (scope.ident, window.key)
            found = bodies.get(name, checks.etag)
            if found is None:
                found = public_body(conn, scope, heads, window, checks.position)
                bodies.put(name, checks.etag, found, len(found))
            body = found
    return Response(body, mimetype="text/calendar", headers=headers)


def _render_private(conn: Connection, scope: Scope, heads: list[Any], window: Window) -> bytes:
    """A private feed, rendered afresh each time: it opens personal data, which must stop
    showing the moment its owner is erased, so none of it is kept."""
    rows = entry_rows(conn, scope, window)
    if scope.kind == "organisation":
        heads = heads_of(conn, "premises", sorted({r.premises_id for r in rows}))
    locations = {h.key: premises_label(h) for h in heads if h.scope == "premises"}
    name = _calendar_name(conn, scope, heads)
    return render(name, rows, locations, runtime().vault.reader(conn))


@blp.route("/premises/<premises_id>.ics")
def premises_feed(premises_id: str) -> Response:
    """A premises' public busy times: no names of people or organisations, titles only for
    public bookings."""
    scope = Scope("premises", [premises_id], False, f"public:{premises_id}")

    def resolve(conn: Connection) -> Resolved:
        heads = heads_of(conn, "premises", [premises_id])
        return (scope, heads) if heads else None

    return serve(resolve)


def token_scope(conn: Connection, token: str) -> Resolved:
    """The scope and heads of a live feed token whose owner may still see it, or None.
    One query: the token, its owner, the keys of its scope and their heads."""
    t, k, u, c = feed_tokens, feed_token_keys, users, calendars_table
    rows = conn.execute(
        select(
            t.c.id,
            t.c.scope.label("token_scope"),
            u.c.role,
            u.c.organisation_id.label("member_of"),
            k.c.key.label("token_key"),
            *c.c,
        )
        .join(u, u.c.id == t.c.user_id)
        .join(k, k.c.token_id == t.c.id)
        .outerjoin(c, and_(c.c.scope == t.c.scope, c.c.key == k.c.key))
        .where(t.c.token_hash == token_hash(token), t.c.revoked_at.is_(None))
        .order_by(k.c.ordinal)
    ).all()
    if not rows:
        return None
    first, keys = rows[0], [r.token_key for r in rows]
    heads = [r for r in rows if r.position is not None]
    staff = first.role in ("staff", "admin")
    if first.token_scope == "premises" and staff:
        return Scope("premises", keys, True, f"token:{first.id}"), heads
    if first.token_scope == "organisation" and (staff or [first.member_of] == keys):
        return Scope("organisation", keys, True, f"token:{first.id}"), heads
    return None  # the owner's role or membership changed since: the token no longer works


@blp.route("/private/<token>.ics")
def private_feed(token: str) -> Response:
    """A feed token's bookings with details; 404 for a revoked or unknown token."""
    if len(token) > 100:
        raise NotFound("No such feed.")
    return serve(lambda conn: token_scope(conn, token))
