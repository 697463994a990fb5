"""Busy intervals per premises, written in the transaction of the append.

Every active booking, hold and closure is a row; cancelled and rejected bookings leave.
`blocked_until` is the end plus the premises' buffer, so that on PostgreSQL an exclusion
constraint on `tstzrange(start, blocked_until)` refuses two overlapping bookings even if the
stream-version check were ever bypassed (DESIGN.md invariant 2, second line of defence).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Delete, Select

from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    ClosureAdded,
    Event,
    PopupApproved,
    PopupExpired,
    PopupRejected,
    PopupRequested,
    PopupWithdrawn,
    PremisesRegistered,
    PremisesUpdated,
)
from events.opening import OpeningHours
from events.opening import days as dates
from events.slot import LONGEST_BOOKING, LONGEST_BUFFER, Slot, subtract
from events.sql import ByDialect, UTCDateTime, one_of, one_of_chunks
from events.store import RecordedEvent
from projections.base import Projection, handles, handles_many, metadata
from projections.batching import insert_rows

PopupDecision = PopupApproved | PopupRejected | PopupWithdrawn | PopupExpired

CLOSURE_ROWS = "kind = 'closure'"

busy_table = Table(
    "availability_busy",
    metadata,
    Column("premises_id", String(100), primary_key=True),
    Column("ref_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # booking | hold | closure
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("blocked_until", UTCDateTime, nullable=False),
    Column("title", String(300)),  # only for public bookings
    Column("public", Boolean, nullable=False),
    Index("ix_availability_busy_premises_start", "premises_id", "start"),
    # Closures have no longest length, so `busy_between` looks them up apart.
    Index(
        "ix_availability_busy_closures",
        "premises_id",
        "start",
        sqlite_where=text(CLOSURE_ROWS),
        postgresql_where=text(CLOSURE_ROWS),
    ),
)

buffers_table = Table(
    "availability_buffers",
    metadata,
    Column("premises_id", String(100), primary_key=True),
    Column("buffer_minutes", Integer, nullable=False),
)


# One round trip for both things a new booking's blocked span depends on.
_BUFFER_AND_NEXT_START = select(
    buffers_table.c.buffer_minutes,
    select(func.min(busy_table.c.start))
    .where(
        busy_table.c.premises_id == bindparam("p"),
        busy_table.c.kind != "closure",
        busy_table.c.start >= bindparam("end", type_=UTCDateTime()),
    )
    .scalar_subquery(),
).where(buffers_table.c.premises_id == bindparam("p"))
_INSERT_BUSY = insert(busy_table)


def _release_holds(dialect: str) -> Delete:
    """Holds leave by (premises, request) pairs. On PostgreSQL one statement joins the pairs
    as two arrays to the primary key; a statement per premises with `ref_id = ANY(ids)` ran
    on psycopg's prepared generic plan after five premises, which scans every row of the
    premises against the whole array (141 ms for an expiry run's 10,000 holds). Elsewhere an
    `IN` of 500 values per premises, built once: an `IN` of literal values would be compiled
    for every chunk."""
    if dialect == "postgresql":
        texts = postgresql.ARRAY(String())
        pairs = (
            func.unnest(bindparam("ps", type_=texts), bindparam("ids", type_=texts))
            .table_valued("p", "r")
            .render_derived(name="released")
        )
        return delete(busy_table).where(
            busy_table.c.premises_id == pairs.c.p, busy_table.c.ref_id == pairs.c.r
        )
    return delete(busy_table).where(
        busy_table.c.premises_id == bindparam("p"), one_of(busy_table.c.ref_id, "ids", dialect)
    )


_RELEASE_HOLDS = ByDialect(_release_holds)


class Availability(Projection):
    name = "availability"
    tables = (busy_table, buffers_table)
    inline = True
    needs_position = False

    def _blocked_until(self, conn: Connection, premises_id: str, end: datetime) -> datetime:
        """The end plus the buffer, stopped at the next booking or hold. The decider keeps
        that gap for new bookings, but a slot held under a smaller buffer (a pop-up approved
        after the buffer grew) may sit closer, and the exclusion constraint would refuse
        it. A true overlap still reaches the constraint: the span never ends before `end`."""
        minutes, next_start = conn.execute(
            _BUFFER_AND_NEXT_START, {"p": premises_id, "end": end}
        ).one()
        if not minutes:
            return end  # no buffer, nothing to stop short of the next booking
        blocked = end + timedelta(minutes=minutes)
        return blocked if next_start is None else max(end, min(blocked, next_start))

    @handles(PremisesRegistered)
    def registered(self, conn: Connection, e: PremisesRegistered, rec: RecordedEvent) -> None:
        conn.execute(
            insert(buffers_table).values(
                premises_id=e.premises_id, buffer_minutes=e.rules.get("buffer_minutes", 0)
            )
        )

    @handles(PremisesUpdated)
    def updated(self, conn: Connection, e: PremisesUpdated, rec: RecordedEvent) -> None:
        minutes = (e.changes.get("rules") or {}).get("buffer_minutes")
        if minutes is None:
            return
        conn.execute(
            update(buffers_table)
            .where(buffers_table.c.premises_id == e.premises_id)
            .values(buffer_minutes=minutes)
        )
        rows = conn.execute(
            select(busy_table.c.ref_id, busy_table.c.start, busy_table.c.end)
            .where(busy_table.c.premises_id == e.premises_id, busy_table.c.kind != "closure")
            .order_by(busy_table.c.start)
        ).all()
        # Bookings placed under a smaller buffer stay valid; their blocked span stops at the
        # next booking's start, or the exclusion constraint would refuse the update itself.
        starts = [row.start for row in rows[1:]] + [None]
        for (ref_id, _, end), next_start in zip(rows, starts, strict=False):
            blocked_until = end + timedelta(minutes=minutes)
            if next_start is not None:
                blocked_until = max(end, min(blocked_until, next_start))
            conn.execute(
                update(busy_table)
                .where(busy_table.c.premises_id == e.premises_id, busy_table.c.ref_id == ref_id)
                .values(blocked_until=blocked_until)
            )

    @handles(BookingPlaced)
    def placed(self, conn: Connection, e: BookingPlaced, rec: RecordedEvent) -> None:
        conn.execute(_INSERT_BUSY, _booking_row(e, self._blocked_until(conn, e.premises_id, e.end)))

    @handles(BookingApproved)
    def approved(self, conn: Connection, e: BookingApproved, rec: RecordedEvent) -> None:
        conn.execute(
            update(busy_table)
            .where(busy_table.c.premises_id == e.premises_id, busy_table.c.ref_id == e.booking_id)
            .values(kind="booking")
        )

    @handles(BookingCancelled, BookingRejected)
    def released(
        self, conn: Connection, e: BookingCancelled | BookingRejected, rec: RecordedEvent
    ) -> None:
        conn.execute(
            delete(busy_table).where(
                busy_table.c.premises_id == e.premises_id, busy_table.c.ref_id == e.booking_id
            )
        )

    @handles(PopupRequested)
    def popup_requested(self, conn: Connection, e: PopupRequested, rec: RecordedEvent) -> None:
        conn.execute(_INSERT_BUSY, _hold_row(e, self._blocked_until(conn, e.premises_id, e.end)))

    @handles_many(PopupApproved, PopupRejected, PopupWithdrawn, PopupExpired)
    def popup_decided(self, conn: Connection, decided: list[PopupDecision]) -> None:
        # The hold goes; an approval's BookingPlaced (appended right after) takes the slot.
        # An expiry run decides thousands: one DELETE per chunk of (premises, request) pairs
        # on PostgreSQL, per premises and chunk of requests elsewhere (`_release_holds`).
        if conn.dialect.name == "postgresql":
            for chunk in one_of_chunks(conn, decided):
                pairs = {"ps": [e.premises_id for e in chunk], "ids": [e.request_id for e in chunk]}
                conn.execute(_RELEASE_HOLDS[conn], pairs)
            return
        by_premises: dict[str, list[str]] = {}
        for e in decided:
            by_premises.setdefault(e.premises_id, []).append(e.request_id)
        for premises_id, ids in by_premises.items():
            for some in one_of_chunks(conn, ids):
                conn.execute(_RELEASE_HOLDS[conn], {"p": premises_id, "ids": some})

    @handles(ClosureAdded)
    def closed(self, conn: Connection, e: ClosureAdded, rec: RecordedEvent) -> None:
        conn.execute(
            insert(busy_table).values(
                premises_id=e.premises_id,
                ref_id=e.closure_id,
                kind="closure",
                start=e.start,
                end=e.end,
                blocked_until=e.end,
                title=None,
                public=False,
            )
        )

    def replay(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """A rebuild's batch. New busy rows wait in memory (an approval, cancellation or
        decision of one of them changes it there) and are written with one many-row INSERT.
        Changes to rows of earlier batches go through the live handlers (they touch only
        their own row); anything else, and a new row whose blocked span depends on the rows
        after it (a premises with a buffer), first writes what waits."""
        new: dict[str, dict[str, Any]] = {}
        buffers: dict[str, int] | None = None

        def flush() -> None:
            insert_rows(conn, busy_table, list(new.values()))
            new.clear()

        for e, rec in pairs:
            if isinstance(e, BookingPlaced | PopupRequested):
                if buffers is None:
                    buffers = {p: m for p, m in conn.execute(select(buffers_table)).all()}
                if buffers.get(e.premises_id):
                    flush()
                    self.apply(conn, e, rec)
                elif isinstance(e, BookingPlaced):
                    new[e.booking_id] = _booking_row(e, e.end)
                else:
                    new[e.request_id] = _hold_row(e, e.end)
                continue
            row = new.get(_ref_of(e)) if isinstance(e, _ONE_ROW) else None
            # Every event of `_ONE_ROW` names its premises; `Event` itself does not.
            if row is not None and row["premises_id"] == e.premises_id:  # type: ignore[attr-defined]
                if isinstance(e, BookingApproved):
                    row["kind"] = "booking"
                else:
                    del new[row["ref_id"]]
            elif isinstance(e, _ONE_ROW):
                self.apply(conn, e, rec)
            else:
                flush()
                self.apply(conn, e, rec)
                buffers = None  # a registration or an update may have changed them
        flush()


# The events that free a busy row (an approved pop-up's booking arrives as BookingPlaced).
_RELEASES = (
    BookingCancelled,
    BookingRejected,
    PopupApproved,
    PopupRejected,
    PopupWithdrawn,
    PopupExpired,
)
_ONE_ROW = (*_RELEASES, BookingApproved)  # changes that touch only the row they name


def _ref_of(e: Event) -> str:
    """The busy row an event of `_ONE_ROW` changes (a pop-up approval names its booking
    too, but frees the request's hold)."""
    if isinstance(e, PopupApproved | PopupRejected | PopupWithdrawn | PopupExpired):
        return e.request_id
    return e.booking_id  # type: ignore[attr-defined, no-any-return]  # the rest name a booking


def _booking_row(e: BookingPlaced, blocked_until: datetime) -> dict[str, Any]:
    return {
        "premises_id": e.premises_id,
        "ref_id": e.booking_id,
        "kind": "booking" if e.status == "confirmed" else "hold",
        "start": e.start,
        "end": e.end,
        "blocked_until": blocked_until,
        "title": e.title if e.public else None,
        "public": e.public,
    }


def _hold_row(e: PopupRequested, blocked_until: datetime) -> dict[str, Any]:
    return {
        "premises_id": e.premises_id,
        "ref_id": e.request_id,
        "kind": "hold",
        "start": e.start,
        "end": e.end,
        "blocked_until": blocked_until,
        "title": None,
        "public": False,
    }


# --- queries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Busy:
    slot: Slot
    kind: str
    title: str | None


@dataclass(frozen=True)
class Day:
    date: date
    open: list[Slot]
    busy: list[Busy]
    free: list[Slot]


def _busy_between() -> Select[Any]:
    """The statement of `busy_between`, built once (building it was a fifth of a call)."""
    t, b = busy_table, buffers_table
    meets = (
        t.c.premises_id.in_(bindparam("ids", expanding=True)),
        t.c.start < bindparam("before", type_=UTCDateTime()),
        t.c.blocked_until > bindparam("after", type_=UTCDateTime()),
    )
    columns = (t.c.premises_id, t.c.kind, t.c.start, t.c.end, t.c.title)
    found = union_all(
        select(*columns).where(
            *meets, t.c.kind != "closure", t.c.start >= bindparam("reach", type_=UTCDateTime())
        ),
        # Literal SQL: SQLite uses a partial index only for the very same condition.
        select(*columns).where(*meets, text(CLOSURE_ROWS)),
    ).subquery()
    return (
        select(found, b.c.buffer_minutes)
        .join(b, b.c.premises_id == found.c.premises_id, isouter=True)
        .order_by(found.c.start)
    )


_BUSY_BETWEEN = _busy_between()


def busy_between(
    conn: Connection, premises_ids: list[str], window: Slot
) -> dict[str, list[tuple[Busy, Slot]]]:
    """Busy rows meeting `window` (widened by a day for buffers), with their blocked span.

    Bookings and holds are found by their start alone, between the window's end and as far
    back as the longest one (plus buffer) could reach: one tight range of the
    (premises, start) index, as cheap for a month of history as for the coming weeks.
    Closures have no longest length; there are few, and a partial index holds just them.
    """
    margin = timedelta(days=1)
    rows = conn.execute(
        _BUSY_BETWEEN,
        {
            "ids": premises_ids,
            "before": window.end + margin,
            "after": window.start - margin,
            "reach": window.start - margin - LONGEST_BOOKING - LONGEST_BUFFER,
        },
    )
    found: dict[str, list[tuple[Busy, Slot]]] = {pid: [] for pid in premises_ids}
    for pid, kind, start, end, title, minutes in rows:
        # A buffer keeps a gap on both sides of a booking, so block it before the start too.
        # The current buffer, as the decider uses it (`blocked_until` may be capped for
        # bookings placed under a smaller one); closures have none.
        pad = timedelta(minutes=minutes or 0) if kind != "closure" else timedelta(0)
        busy = Busy(Slot.of_utc(start, end), kind, title)
        found[pid].append((busy, Slot.of_utc(start - pad, end + pad)))
    return found


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
            Busy(clipped, item.kind, item.title)
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
