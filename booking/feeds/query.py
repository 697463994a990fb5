"""What a feed covers: its scope (premises or an organisation, with details or not), its
window of local days, and the `feed_entries` rows and `feed_calendars` heads that fall in it.

The statements are built once per kind of feed (building them per request cost SQLAlchemy
more than running them). Nothing here renders text or knows HTTP.
"""

from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    false,
    func,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.engine import Connection

from booking.accounts import token_hash
from booking.domain.errors import RuleBroken
from booking.feeds.render import BOOKINGS, premises_name
from booking.privacy import erased_people
from booking.tables import feed_token_keys, feed_tokens, organisations, users
from events import pipeline
from events.sql import UTCDateTime
from projections.availability_tables import spaces_table
from projections.bookings import bookings_table
from projections.feed_entries import calendars_table, entries_table

DAYS_BACK, DAYS_AHEAD = 30, 365
MAX_DAYS_BACK, MAX_DAYS_AHEAD = 366, 731
KEEP_CANCELLED = timedelta(days=30)
SHOWN_ANYWAY = ("confirmed", "pending_approval", "closed")  # the rest only for 30 days
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Scope:
    kind: str  # premises | organisation
    keys: list[str]
    details: bool  # titles, organisation, attendees, notes, contact
    ident: str  # what distinguishes its ETag from other feeds'
    # Other premises that share a space with the keys (a premises scope's): their entries
    # show as busy time, never with details (API.md, premises made of spaces).
    shared: tuple[str, ...] = ()
    # The latest erasure of anyone (a details feed's): it empties contacts and notes without
    # a change in the log, so its validators move with it too.
    erased: datetime | None = None
    # The entries changed after a position, read with the heads (`premises_scope`): (entry
    # keys, position, rows), for `changed_rows`.
    changed: tuple[tuple[str, ...], int, list[Any]] | None = field(default=None, compare=False)

    @property
    def entry_keys(self) -> list[str]:
        """The premises whose entries the feed shows: its own, then those sharing a space."""
        return [*self.keys, *self.shared]


@dataclass(frozen=True)
class Window:
    """Local days `first`..`last` (both included) as UTC instants `start`..`end`."""

    start: datetime
    end: datetime
    cancelled_since: datetime  # cancelled entries changed before this have left
    epoch: datetime  # the local midnight when this window took its place
    key: str  # the days asked for and today: part of the ETag
    first: date
    last: date
    today: date
    zone: ZoneInfo

    def midnight(self, day: date) -> datetime:
        """The UTC instant at which local `day` begins."""
        return datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)

    def narrowed(self, first: date, last: date) -> Window:
        """The days `first`..`last` of this window (its key stays: the key names what was
        asked, and the narrowing is a function of that and the data)."""
        return replace(
            self,
            first=first,
            last=last,
            start=self.midnight(first),
            end=self.midnight(last + timedelta(days=1)),
        )


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
        first=first_day,
        last=last_day,
        today=today,
        zone=zone,
    )


def entry_rows(conn: Connection, scope: Scope, window: Window) -> list[Any]:
    """The scope's entries in the window, ordered by start, then UID (the feed's order)."""
    keys = scope.entry_keys if scope.kind == "premises" else scope.keys[0]
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
    """The entries of a feed of `kind`, with the private columns when `details`."""
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


def changed_rows(conn: Connection, scope: Scope, since: int) -> list[Any]:
    """The public columns of the scope's entries changed after position `since`."""
    if scope.changed is not None and scope.changed[:2] == (tuple(scope.entry_keys), since):
        return list(scope.changed[2])  # read with the heads (`premises_scope`)
    return list(conn.execute(_CHANGED_ENTRIES, {"keys": scope.entry_keys, "since": since}))


# Of one premises, without an expanding IN: a statement `events.pipeline.read_together` sends.
_CHANGED_OF_ONE = select(*_entry_columns()).where(
    entries_table.c.premises_id == bindparam("key"),
    entries_table.c.position > bindparam("since"),
)
_EntryRow = namedtuple("_EntryRow", [c.key for c in _CHANGED_OF_ONE.selected_columns])  # type: ignore[misc]


_HEADS = select(calendars_table).where(
    calendars_table.c.scope == bindparam("scope"),
    calendars_table.c.key.in_(bindparam("keys", expanding=True)),
)


def heads_of(conn: Connection, scope: str, keys: list[str]) -> list[Any]:
    """The `feed_calendars` rows of these keys of a scope (from a statement built once)."""
    return list(conn.execute(_HEADS, {"scope": scope, "keys": keys}))


def in_window(row: Any, window: Window) -> bool:
    """What `_entry_query`'s window condition says of one entry row."""
    return (
        row.start < window.end
        and row.end > window.start
        and (row.status in SHOWN_ANYWAY or row.last_modified >= window.cancelled_since)
    )


def calendar_name(conn: Connection, scope: Scope, heads: list[Any]) -> str:
    """NAME and X-WR-CALNAME: the organisation's, or the first three premises' names."""
    if scope.kind == "organisation":
        found = conn.execute(
            select(organisations.c.name).where(organisations.c.id == scope.keys[0])
        ).scalar()
        return f"{found or scope.keys[0]} – {BOOKINGS}"
    labels = [premises_name(h) for h in heads if h.key in scope.keys]
    shown = ", ".join(labels[:3]) + (f" +{len(labels) - 3}" if len(labels) > 3 else "")
    if scope.details:
        return f"Tilavaraus: {shown}"
    return f"{shown} – {BOOKINGS}"


Resolved = tuple[Scope, list[Any]] | None  # a feed's scope and its heads, or no feed


def shared_names(scope: Scope, heads: list[Any]) -> dict[str, str]:
    """The names of the premises whose entries the feed shows as busy time only."""
    return {h.key: premises_name(h) for h in heads if h.key in scope.shared}


# A feed's premises' spaces and the premises on them (now: a feed follows the current
# spaces, as the premises' availability does).
_MINE, _THEIRS = spaces_table.alias("mine"), spaces_table.alias("theirs")
# A premises' head and those of the premises sharing a space with it, in one read (the
# 304 path reads nothing else): the feed's ETag moves when any of them changes.
# (`IN` a union rather than `OR`: both databases then look each key up by primary key.)
_PREMISES_HEADS = (
    select(calendars_table)
    .where(
        calendars_table.c.scope == "premises",
        calendars_table.c.key.in_(
            union(
                select(bindparam("key", type_=String())),
                select(_THEIRS.c.premises_id)
                .join_from(_MINE, _THEIRS, _THEIRS.c.space_id == _MINE.c.space_id)
                .where(_MINE.c.premises_id == bindparam("key")),
            )
        ),
    )
    .order_by(calendars_table.c.key)
)


_HeadRow = namedtuple("_HeadRow", [c.key for c in _PREMISES_HEADS.selected_columns])  # type: ignore[misc]


def _heads_and_changed() -> Select[Any]:
    """`_PREMISES_HEADS` and `_CHANGED_OF_ONE` in one statement: each head, the premises'
    own joined to its entries changed since (a row per entry; NULLs when none changed).

    The entries are looked for only when the premises' own head has moved past `since`:
    every change of an entry moves that head to the entry's position in the same
    transaction, so nothing else can have changed. The condition is an uncorrelated
    EXISTS, which PostgreSQL runs once, before the rest, as a gate ("One-Time Filter") in
    front of the entries' scan: a conditional GET whose feed has not changed reads two
    primary keys, not every entry of the premises (5,000 of them cost the server 1 ms a
    request, half the 304's budget, in bench.feeds)."""
    heads = _PREMISES_HEADS.order_by(None).subquery("heads")
    own = calendars_table.alias("own")
    moved = (
        select(own.c.key)
        .where(
            own.c.scope == "premises",
            own.c.key == bindparam("key", type_=String()),
            own.c.position > bindparam("since"),
        )
        .exists()
    )
    changed = _CHANGED_OF_ONE.where(moved).subquery("changed")
    return (
        select(*heads.c, *changed.c)
        .select_from(heads.outerjoin(changed, heads.c.key == bindparam("key", type_=String())))
        .order_by(heads.c.key)
    )


_HEADS_AND_CHANGED = _heads_and_changed()
_HEAD_WIDTH = len(_PREMISES_HEADS.selected_columns)
_HEAD_KEY = [c.key for c in _PREMISES_HEADS.selected_columns].index("key")
_ENTRY_UID = [c.key for c in _CHANGED_OF_ONE.selected_columns].index("uid")  # never NULL


def _with_shared(scope: Scope, shared: list[str]) -> Scope:
    """`scope` showing the entries of `shared` as busy time; its ident names them, so that
    its ETag and kept bodies change when the premises sharing its spaces change."""
    if not shared:
        return scope
    ident = f"{scope.ident}+{','.join(sorted(shared))}"
    return replace(scope, shared=tuple(sorted(shared)), ident=ident)


def premises_scope(conn: Connection, premises_id: str, since: int | None = None) -> Resolved:
    """A premises' public feed with its head and those of the premises sharing a space
    with it, or None for an unknown premises. `since`: the position of the body made last
    of this feed: on PostgreSQL the premises' entries changed after it are read in the same
    round trip (kept in the scope for `changed_rows`), as the body will read them unless
    nothing changed or its answer is kept whole."""
    changed = None
    heads: list[Any]
    if since is None or conn.dialect.name != "postgresql":
        heads = list(conn.execute(_PREMISES_HEADS, {"key": premises_id}))
    else:
        # One statement, sent outside pipeline mode: a pipeline of the two cost a third
        # more of the client's CPU than the read itself.
        rows = pipeline.read_one(conn, _HEADS_AND_CHANGED, {"key": premises_id, "since": since})
        heads, entries, seen = [], [], set()
        for row in rows:
            if row[_HEAD_KEY] not in seen:
                seen.add(row[_HEAD_KEY])
                heads.append(_HeadRow(*row[:_HEAD_WIDTH]))
            if row[_HEAD_WIDTH + _ENTRY_UID] is not None:
                entries.append(_EntryRow(*row[_HEAD_WIDTH:]))
        changed = ((premises_id,), since, entries)
    if not any(h.key == premises_id for h in heads):
        return None
    scope = Scope("premises", [premises_id], False, f"public:{premises_id}", changed=changed)
    return _with_shared(scope, [h.key for h in heads if h.key != premises_id]), heads


# When anyone was last erased (a small table: only erased people are in it).
_LAST_ERASURE = select(func.max(erased_people.c.erased_at)).scalar_subquery()


def _token_scope() -> CompoundSelect[Any]:
    """A token, its owner, the keys of its scope with their heads, the latest erasure, and
    after them (`shared` true) the premises sharing a space with a premises key, with
    theirs: a row per key (a sharing premises once per key and space it shares), in one
    statement (`token_scope`)."""
    t, k, u, c = feed_tokens, feed_token_keys, users, calendars_table
    token = (t.c.token_hash == bindparam("token_hash"), t.c.revoked_at.is_(None))
    owner = [
        t.c.id,
        t.c.scope.label("token_scope"),
        u.c.role,
        u.c.organisation_id.label("member_of"),
    ]
    keys = (
        select(
            *owner,
            k.c.key.label("token_key"),
            _LAST_ERASURE.label("last_erasure"),
            false().label("shared"),
            k.c.ordinal,
            *c.c,
        )
        .join(u, u.c.id == t.c.user_id)
        .join(k, k.c.token_id == t.c.id)
        .outerjoin(c, and_(c.c.scope == t.c.scope, c.c.key == k.c.key))
        .where(*token)
    )
    own = k.alias("own")
    sharing = (
        select(
            *owner,
            _THEIRS.c.premises_id.label("token_key"),
            null().label("last_erasure"),
            true().label("shared"),
            null().label("ordinal"),
            *c.c,
        )
        .join(u, u.c.id == t.c.user_id)
        .join(k, k.c.token_id == t.c.id)
        .join(_MINE, _MINE.c.premises_id == k.c.key)
        .join(_THEIRS, _THEIRS.c.space_id == _MINE.c.space_id)
        .outerjoin(c, and_(c.c.scope == "premises", c.c.key == _THEIRS.c.premises_id))
        .where(
            *token,
            t.c.scope == "premises",
            _THEIRS.c.premises_id.not_in(select(own.c.key).where(own.c.token_id == t.c.id)),
        )
    )
    both = union_all(keys, sharing)
    return both.order_by(both.selected_columns.shared, both.selected_columns.ordinal)


# Built once: building it per request was a third of a private feed's 304 (the conditional
# GET a calendar client sends every few minutes).
_TOKEN_SCOPE = _token_scope()
_TokenRow = namedtuple("_TokenRow", [c.key for c in _TOKEN_SCOPE.selected_columns])  # type: ignore[misc]


def token_scope(conn: Connection, token: str) -> Resolved:
    """The scope and heads of a live feed token whose owner may still see it, or None.
    One statement, one round trip in autocommit (`events.pipeline.read_one`): the token,
    its owner, the keys of its scope, their heads, the latest erasure (a details feed
    shows contacts and notes that an erasure empties: API.md, the person's data becomes
    unreadable in feeds too, so a client's copy must not stay valid), and the premises
    sharing a space with a premises key with their heads (a staff feed shows their
    entries as busy time)."""
    found = pipeline.read_one(conn, _TOKEN_SCOPE, {"token_hash": token_hash(token)})
    rows: list[Any] = [_TokenRow(*row) for row in found]
    if not rows:
        return None
    first = rows[0]
    keys = [r.token_key for r in rows if not r.shared]
    heads = [r for r in rows if r.position is not None and not r.shared]
    staff = first.role in ("staff", "admin")
    erased = first.last_erasure
    ident = f"token:{first.id}" + (f"@{erased.isoformat()}" if erased is not None else "")
    if first.token_scope == "premises" and staff:
        theirs = {r.token_key: r for r in rows if r.shared}  # once per key and space
        shared = sorted(theirs)
        heads += [theirs[key] for key in shared if theirs[key].position is not None]
        return _with_shared(Scope("premises", keys, True, ident, erased=erased), shared), heads
    if first.token_scope == "organisation" and (staff or [first.member_of] == keys):
        return Scope("organisation", keys, True, ident, erased=erased), heads
    return None  # the owner's role or membership changed since: the token no longer works
