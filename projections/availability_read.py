"""What the availability projection answers: busy time per premises (its own and what
premises sharing its spaces hold, with `via`), per local day, and for the write side what
others hold on a premises' spaces (`shared_between`, read under the spaces' locks).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, or_, select, text, union_all
from sqlalchemy.engine import Connection

from events.opening import OpeningHours
from events.opening import days as dates
from events.slot import LONGEST_BOOKING, LONGEST_BUFFER, Slot, subtract
from events.sql import ByDialect, UTCDateTime, one_of
from projections.availability_tables import (
    CLOSURE_ROWS,
    OFFER,
    buffers_table,
    busy_table,
    spaces_table,
)


@dataclass(frozen=True)
class Busy:
    slot: Slot
    kind: str
    title: str | None
    via: str | None = None  # another premises sharing a space holds it (never its title)


@dataclass(frozen=True)
class Day:
    date: date
    open: list[Slot]
    busy: list[Busy]
    free: list[Slot]


def _busy_between(one: bool = False) -> Select[Any]:
    """The statement of `busy_between`, built once (building it was a fifth of a call);
    `one`: of one premises (`id`), a statement without an expanding IN that
    `events.pipeline.read_together` can send with others."""
    t, s = busy_table, spaces_table
    meets = (
        s.c.premises_id == bindparam("id")
        if one
        else s.c.premises_id.in_(bindparam("ids", expanding=True)),
        t.c.start < bindparam("before", type_=UTCDateTime()),
        t.c.blocked_until > bindparam("after", type_=UTCDateTime()),
    )
    columns = (
        s.c.premises_id.label("viewer"),
        t.c.premises_id,
        t.c.ref_id,
        t.c.kind,
        t.c.start,
        t.c.end,
        t.c.title,
    )
    on_spaces = s.join(t, t.c.space_id == s.c.space_id)
    found = union_all(
        select(*columns)
        .select_from(on_spaces)
        .where(*meets, t.c.kind != "closure", t.c.start >= bindparam("reach", type_=UTCDateTime())),
        # Literal SQL: SQLite uses a partial index only for the very same condition.
        select(*columns).select_from(on_spaces).where(*meets, text(CLOSURE_ROWS)),
    ).subquery()
    own, theirs = buffers_table.alias("own"), buffers_table.alias("theirs")
    return (
        select(found, own.c.buffer_minutes, theirs.c.buffer_minutes)
        .join(own, own.c.premises_id == found.c.viewer, isouter=True)
        .join(theirs, theirs.c.premises_id == found.c.premises_id, isouter=True)
        .order_by(found.c.start, found.c.premises_id, found.c.ref_id)
    )


_BUSY_BETWEEN = _busy_between()
BUSY_OF_ONE = _busy_between(one=True)


def busy_params(window: Slot) -> dict[str, Any]:
    """The window's parameters of `busy_between`'s statement (and of `BUSY_OF_ONE`)."""
    margin = timedelta(days=1)
    return {
        "before": window.end + margin,
        "after": window.start - margin,
        "reach": window.start - margin - LONGEST_BOOKING - LONGEST_BUFFER,
    }


def busy_between(
    conn: Connection, premises_ids: list[str], window: Slot
) -> dict[str, list[tuple[Busy, Slot]]]:
    """Busy rows on the premises' spaces meeting `window` (widened by a day for buffers),
    with their blocked span; another premises' rows carry `via` and no title.

    Bookings and holds are found by their start alone, between the window's end and as far
    back as the longest one (plus buffer) could reach: one tight range of the
    (space, start) index, as cheap for a month of history as for the coming weeks.
    Closures have no longest length; there are few, and a partial index holds just them.
    """
    rows = conn.execute(_BUSY_BETWEEN, {"ids": premises_ids, **busy_params(window)})
    return busy_of_rows(rows, premises_ids)


def busy_of_rows(rows: Any, premises_ids: list[str]) -> dict[str, list[tuple[Busy, Slot]]]:
    """`busy_between` of its statement's rows (tuples in its columns' order)."""
    found: dict[str, list[tuple[Busy, Slot]]] = {pid: [] for pid in premises_ids}
    seen: set[tuple[str, str]] = set()
    for viewer, owner, ref_id, kind, start, end, title, mine, theirs in rows:
        if (viewer, ref_id) in seen:  # on several of the viewer's spaces
            continue
        seen.add((viewer, ref_id))
        # A buffer keeps a gap on both sides of a booking, so block it before the start too:
        # the viewer's buffer before (a booking of its own must end that early), the owner's
        # after. The current buffers, as the decider uses them (`blocked_until` may be capped
        # for bookings placed under a smaller one); closures have none.
        if kind == "closure":
            before = after = timedelta(0)
        else:
            before, after = timedelta(minutes=mine or 0), timedelta(minutes=theirs or 0)
        if kind == OFFER:  # an allocation offer holds its time (API.md): a hold to readers
            kind = "hold"
        if owner == viewer:
            busy = Busy(Slot.of_utc(start, end), kind, title)
        else:
            busy = Busy(Slot.of_utc(start, end), kind, None, owner)
        found[viewer].append((busy, Slot.of_utc(start - before, end + after)))
    return found


@dataclass(frozen=True)
class SharedRow:
    """A booking, hold or closure of another premises on a space, or an allocation offer's
    occurrence of any premises on it (its own included): what the decider needs."""

    premises_id: str
    ref_id: str
    kind: str
    start: datetime
    end: datetime
    buffer_minutes: int


def _shared_between(dialect: str) -> Select[Any]:
    t, b = busy_table, buffers_table
    meets = (
        one_of(t.c.space_id, "spaces", dialect),
        # A premises' own bookings and holds are in its state; its offers are not.
        or_(t.c.premises_id != bindparam("p"), t.c.kind == OFFER),
        t.c.start < bindparam("before", type_=UTCDateTime()),
        t.c.blocked_until > bindparam("after", type_=UTCDateTime()),
    )
    columns = (t.c.premises_id, t.c.ref_id, t.c.kind, t.c.start, t.c.end)
    found = union_all(
        select(*columns).where(
            *meets, t.c.kind != "closure", t.c.start >= bindparam("reach", type_=UTCDateTime())
        ),
        select(*columns).where(*meets, text(CLOSURE_ROWS)),
    ).subquery()
    return (
        select(found, b.c.buffer_minutes)
        .join(b, b.c.premises_id == found.c.premises_id, isouter=True)
        .order_by(found.c.start, found.c.premises_id, found.c.ref_id)
    )


# One statement per dialect: the spaces go as one parameter, an array on PostgreSQL and a JSON
# array on SQLite (a statement that `events.pipeline.read_together` can send, which takes no
# expanding IN).
SHARED_BETWEEN = ByDialect(_shared_between)


def shared_params(premises_id: str, spaces: Sequence[str], window: Slot) -> dict[str, Any]:
    """`SHARED_BETWEEN`'s parameters for `shared_between`'s arguments."""
    return {
        "spaces": list(spaces),
        "p": premises_id,
        "before": window.end,
        "after": window.start,
        "reach": window.start - LONGEST_BOOKING - LONGEST_BUFFER,
    }


def shared_between(
    conn: Connection, premises_id: str, spaces: Sequence[str], window: Slot
) -> list[SharedRow]:
    """What premises other than `premises_id` hold on `spaces` meeting `window`, and what
    allocation offers hold there (of `premises_id` too): read by the write side under the
    guard of those spaces, so nothing it finds can change meanwhile."""
    rows = conn.execute(SHARED_BETWEEN[conn], shared_params(premises_id, spaces, window))
    return shared_rows(rows)


def shared_rows(rows: Any) -> list[SharedRow]:
    """`SHARED_BETWEEN`'s rows as the decider's (one per booking, hold, offer or closure)."""
    found: dict[str, SharedRow] = {}
    for owner, ref_id, kind, start, end, minutes in rows:
        found.setdefault(ref_id, SharedRow(owner, ref_id, kind, start, end, minutes or 0))
    return list(found.values())


def days_of(
    opening: OpeningHours,
    zone: ZoneInfo,
    first: date,
    last: date,
    busy: list[tuple[Busy, Slot]],
) -> list[Day]:
    """Per local date: the opening intervals starting that day, what is busy in them, what
    is free. Busy entries are clipped to the opening hours; free excludes buffers."""
    # Only entries meeting a day's opening hours matter to it. Ordered by where their blocked
    # span starts, a day's candidates are one range found by bisection, rather than every
    # entry of the month tested against every day; they keep the order they came in.
    ordered = sorted(enumerate(busy), key=lambda numbered: numbered[1][1].start)
    starts = [span.start for _, (_, span) in ordered]
    longest = max((span.end - span.start for _, span in busy), default=timedelta(0))
    result = []
    for day in dates(first, last):
        open_slots = opening.intervals_on(day, zone)
        near = []
        if open_slots:
            low = min(s.start for s in open_slots)
            high = max(s.end for s in open_slots)
            candidates = ordered[bisect_left(starts, low - longest) : bisect_left(starts, high)]
            near = [pair for _, pair in sorted(candidates) if low < pair[1].end]
        day_busy = [
            Busy(clipped, item.kind, item.title, item.via)
            for item, _ in near
            for interval in open_slots
            if (clipped := item.slot.intersection(interval)) is not None
        ]
        blocked = [span for _, span in near]
        result.append(Day(day, open_slots, day_busy, subtract(open_slots, blocked)))
    return result


def free_for_whole(
    opening: OpeningHours, zone: ZoneInfo, window: Slot, busy: list[tuple[Busy, Slot]]
) -> bool:
    return opening.covers(window, zone) and not any(span.overlaps(window) for _, span in busy)
