"""Feed bodies: the entries of a window rendered, fitted under the cap and joined.

A public body is kept per feed and window in this process, with the entries it was joined
from (`PublicBody`), so that the next body of the same feed is made from the entries changed
since rather than from every entry; a private body is made afresh each time, since it opens
personal data, which must stop showing the moment its owner is erased.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy.engine import Connection

from booking.cache import Memo
from booking.feeds import query
from booking.feeds.cap import LIMIT, Reach, fit
from booking.feeds.query import Scope, Window, in_window
from booking.feeds.render import (
    END_CALENDAR,
    Opened,
    calendar_text,
    event_text,
    new_calendar,
    premises_label,
    private_event,
    public_event,
    reach_text,
)
from booking.privacy import PersonalData


@dataclass(frozen=True)
class Body:
    """A feed's text and how far it reaches."""

    text: bytes
    reach: Reach


def joined(
    name: str,
    window: Window,
    starts: list[datetime],
    ends: list[datetime],
    text_of: Callable[[int], bytes],
    limit: int,
    head_of: Callable[[str, str], bytes] = calendar_text,
) -> Body:
    """The calendar of `name` with the texts of the entries that fit under the cap (entry
    `i`'s text is `text_of(i)`, asked for at most once, and only of the days looked at);
    its head (`head_of(name, description)`) says how far it reaches."""
    texts: dict[int, bytes] = {}

    def size_of(i: int) -> int:
        found = texts.get(i)
        if found is None:
            found = texts[i] = text_of(i)
        return len(found)

    # The head when narrowed is the longest: counting it keeps every answer under the cap.
    fixed = len(head_of(name, reach_text(window.first, window.last, True)))
    reach = fit(window, starts, ends, size_of, fixed + len(END_CALENDAR), limit)
    head = head_of(name, reach_text(reach.first, reach.last, reach.narrowed))
    return Body(b"".join([head, *(texts[i] for i in reach.keep), END_CALENDAR]), reach)


def private_body(
    conn: Connection,
    scope: Scope,
    heads: list[Any],
    window: Window,
    personal: PersonalData,
    limit: int = LIMIT,
) -> Body:
    """A private feed's body, rendered afresh: only the entries it shows, and the days
    around them that tell how far it may reach."""
    rows = query.entry_rows(conn, scope, window)
    if scope.kind == "organisation":
        heads = query.heads_of(conn, "premises", sorted({r.premises_id for r in rows}))
    locations = {h.key: premises_label(h) for h in heads if h.scope == "premises"}
    name = query.calendar_name(conn, scope, heads)
    shared = query.shared_names(scope, heads)
    opened = Opened(personal)

    def text_of(i: int) -> bytes:
        row = rows[i]
        location = locations.get(row.premises_id, row.premises_id)
        if row.premises_id in shared:  # another premises on a shared space: busy, no details
            return public_event(row, location, shared[row.premises_id])
        return private_event(row, location, opened)

    starts, ends = [r.start for r in rows], [r.end for r in rows]
    return joined(name, window, starts, ends, text_of, limit, _uncached_head)


def _uncached_head(name: str, description: str) -> bytes:
    """A private feed's head, kept nowhere (nothing of a private feed is)."""
    text: bytes = new_calendar(name, description).to_ical()
    return text.removesuffix(END_CALENDAR)


@dataclass(frozen=True)
class PublicBody:
    """A public feed's body as made at one position of its scope, with every entry of its
    window it was joined from, in feed order (start, then UID).

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
    shared: dict[str, str]  # premises sharing a space → name: their entries are busy time
    uids: list[str]
    starts: list[datetime]
    ends: list[datetime]
    texts: dict[str, bytes]
    limit: int
    body: Body

    @classmethod
    def of(
        cls,
        position: int,
        name: str,
        rows: list[Any],
        locations: dict[str, str],
        window: Window,
        limit: int = LIMIT,
        shared: dict[str, str] | None = None,
    ) -> PublicBody:
        """From every entry of the window, in the entry query's order."""
        shared = shared or {}
        texts = {row.uid: event_text(row, locations, shared.get(row.premises_id)) for row in rows}
        uids = [row.uid for row in rows]
        starts, ends = [row.start for row in rows], [row.end for row in rows]
        return cls._joined(
            position, name, locations, shared, uids, starts, ends, texts, window, limit
        )

    @classmethod
    def _joined(
        cls,
        position: int,
        name: str,
        locations: dict[str, str],
        shared: dict[str, str],
        uids: list[str],
        starts: list[datetime],
        ends: list[datetime],
        texts: dict[str, bytes],
        window: Window,
        limit: int,
    ) -> PublicBody:
        body = joined(name, window, starts, ends, lambda i: texts[uids[i]], limit)
        return cls(position, name, locations, shared, uids, starts, ends, texts, limit, body)

    def updated(self, position: int, changed: list[Any], window: Window) -> PublicBody | None:
        """This body with the entries `changed` after its position; None where the order
        of a new entry would depend on comparing UIDs (another entry starts at the same
        instant: the database's collation orders those), for the caller to read all."""
        uids, starts, ends = list(self.uids), list(self.starts), list(self.ends)
        texts = dict(self.texts)
        for row in changed:
            shown = in_window(row, window)
            if row.uid in texts:
                at = uids.index(row.uid)
                if starts[at] != row.start or ends[at] != row.end:
                    return None  # entries keep their times; anything else: read all
                if shown:
                    texts[row.uid] = self._text(row)
                else:
                    del uids[at], starts[at], ends[at], texts[row.uid]
            elif shown:
                at = bisect_left(starts, row.start)
                if at < len(starts) and starts[at] == row.start:
                    return None
                uids.insert(at, row.uid)
                starts.insert(at, row.start)
                ends.insert(at, row.end)
                texts[row.uid] = self._text(row)
        return self._joined(
            position,
            self.name,
            self.locations,
            self.shared,
            uids,
            starts,
            ends,
            texts,
            window,
            self.limit,
        )

    def _text(self, row: Any) -> bytes:
        return event_text(row, self.locations, self.shared.get(row.premises_id))

    @property
    def size(self) -> int:
        return 2 * len(self.body.text) + sum(map(len, self.texts.values())) + 200 * len(self.uids)


SNAPSHOTS = "tilavaraus.feed_snapshots"


def public_bodies(app: Flask | None = None) -> Memo[PublicBody]:
    """The latest public body made per feed and window, in this process: the base the next
    change's body is made from (the answers by ETag are `caches().feed_bodies`)."""
    extensions = (app or current_app).extensions
    found: Memo[PublicBody] | None = extensions.get(SNAPSHOTS)
    if found is None:
        found = extensions.setdefault(SNAPSHOTS, Memo(32 * 2**20))
    return found


def public_body(
    conn: Connection,
    scope: Scope,
    heads: list[Any],
    window: Window,
    position: int,
    limit: int = LIMIT,
) -> Body:
    """The body of a public feed at `position`: from the one made last, with the entries
    changed since, when the calendar's name and locations are the same; else from all."""
    name = query.calendar_name(conn, scope, heads)
    locations = {h.key: premises_label(h) for h in heads if h.scope == "premises"}
    shared = query.shared_names(scope, heads)
    made, key = public_bodies(), (scope.ident, window.key)
    base = made.get(key)
    found: PublicBody | None = None
    same = base is not None and (base.name, base.locations, base.shared, base.limit) == (
        name,
        locations,
        shared,
        limit,
    )
    if base is not None and same:
        if base.position == position:
            found = base
        elif base.position < position:
            found = base.updated(position, query.changed_rows(conn, scope, base.position), window)
    if found is None:
        rows = query.entry_rows(conn, scope, window)
        found = PublicBody.of(position, name, rows, locations, window, limit, shared)
    if base is None or found.position >= base.position:
        made.put(key, found, found.size)
    return found.body
