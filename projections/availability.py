"""Busy intervals per space, written in the transaction of the append.

A premises occupies one or more spaces (`availability_spaces`; a hall and its halves share
them). Every active booking, hold and closure is a row on each space of its premises, and so
is every weekly occurrence a published allocation offer holds (kind `offer`, until it is
answered or lapses; shown as a hold); cancelled and rejected bookings leave.
`blocked_until` is the end plus the premises' buffer, so that on PostgreSQL an exclusion
constraint per space on `tstzrange(start, blocked_until)` refuses two overlapping holdings of
one piece of floor even if the write side's guard were ever bypassed (DESIGN.md invariant 2,
second line of defence). The constraint compares the space's integer key
(`availability_space_keys`, migration 0013), which every statement that writes a busy row
writes with it, read from that table: its GiST index builds 2-3× faster than on the text id.

When a premises' spaces change, its rows that end after the change move to the new spaces;
older ones stay where the premises was then (history: they never meet a new booking). What
a premises shows as busy is what lies on its current spaces: its own rows, and others' with
`via` naming their premises (`busy_between`). The write side reads the same rows, under the
guard of those spaces, for its decisions (`shared_between`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Interval,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Delete, Insert

from events import pipeline
from events.catalog import (
    AllocationHoldReleased,
    AllocationOfferHeld,
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
from events.sql import BinaryArray, ByDialect, UTCDateTime, one_of, one_of_chunks
from events.store import RecordedEvent
from projections.availability_read import (  # the read side, where callers know it
    Busy,
    Day,
    SharedRow,
    busy_between,
    days_of,
    free_for_whole,
    shared_between,
)
from projections.availability_tables import (
    CLOSURE_ROWS,
    OFFER,
    buffers_table,
    busy_table,
    space_keys_table,
    spaces_table,
)
from projections.base import Projection, handles, handles_many
from projections.batching import insert_rows

__all__ = [
    "CLOSURE_ROWS",
    "OFFER",
    "Availability",
    "Busy",
    "Day",
    "SharedRow",
    "buffers_table",
    "busy_between",
    "busy_table",
    "days_of",
    "free_for_whole",
    "shared_between",
    "space_keys_table",
    "spaces_table",
]

PopupDecision = PopupApproved | PopupRejected | PopupWithdrawn | PopupExpired

_SPACES_OF = (
    select(spaces_table.c.space_id, space_keys_table.c.space_key)
    .join(space_keys_table, space_keys_table.c.space_id == spaces_table.c.space_id)
    .where(spaces_table.c.premises_id == bindparam("p"))
    .order_by(spaces_table.c.space_id)
)
_INSERT_BUSY = insert(busy_table)


def _new_key() -> Insert:
    """A space id's key, if it has none yet: the next integer (the keys' order is the log's;
    two writers racing for one number meet the key's unique index and one decides again)."""
    k = space_keys_table
    space = bindparam("s", type_=String())
    following = select(func.coalesce(func.max(k.c.space_key), 0) + 1).scalar_subquery()
    missing = ~exists().where(k.c.space_id == space)
    return insert(k).from_select(["space_id", "space_key"], select(space, following).where(missing))


_NEW_KEY = _new_key()


def keep_keys(conn: Connection, spaces: Sequence[str]) -> None:
    """Every space of `spaces` has its key (`space_keys_table`) from now on."""
    for space in spaces:
        conn.execute(_NEW_KEY, {"s": space})


def _insert_on_spaces(dialect: str) -> Insert:
    """A new booking's or hold's rows in one statement, no read first: a row per space of
    the premises (with the space's integer key), blocked until the end plus the premises'
    buffer, stopped at the next start (not a closure's) on that space, never before the
    end. The decider keeps that gap for new bookings, but a slot held under a smaller
    buffer (a pop-up approved after the buffer grew) may sit closer, and the exclusion
    constraint would refuse it. A true overlap still reaches the constraint: the span never
    ends before `end`."""
    s, f, b, k = spaces_table, buffers_table, busy_table, space_keys_table
    end = bindparam("end", type_=UTCDateTime())
    premises = bindparam("premises_id", type_=String())
    following = (
        select(func.min(b.c.start))
        .where(b.c.space_id == s.c.space_id, b.c.kind != "closure", b.c.start >= end)
        .scalar_subquery()
    )
    buffered: Any
    latest: Any
    earliest: Any
    if dialect == "postgresql":
        minutes = func.make_interval(0, 0, 0, 0, 0, f.c.buffer_minutes)
        buffered = end + type_coerce(minutes, Interval())
        latest, earliest = func.greatest, func.least
    else:
        # SQLite keeps an instant as text of one fixed form (`UTCDateTime`), which orders as
        # the instants do. Whole minutes go onto its "YYYY-MM-DD HH:MM" head; its
        # ":SS.ffffff" tail stays as it is (SQLite's own date arithmetic would round the
        # microseconds to milliseconds).
        step = literal("+").op("||")(f.c.buffer_minutes).op("||")(literal(" minutes"))
        head = func.strftime(literal("%Y-%m-%d %H:%M"), func.substr(end, 1, 16), step)
        buffered = head.op("||")(func.substr(end, 17))
        latest, earliest = func.max, func.min
    blocked = case(
        (
            and_(f.c.buffer_minutes != 0, following.is_not(None)),
            latest(end, earliest(buffered, following)),
        ),
        else_=buffered,
    )
    rows = (
        select(
            premises,
            bindparam("ref_id", type_=String()),
            s.c.space_id,
            k.c.space_key,
            bindparam("kind", type_=String()),
            bindparam("start", type_=UTCDateTime()),
            end,
            type_coerce(blocked, UTCDateTime()),
            bindparam("title", type_=String()),
            bindparam("public", type_=Boolean()),
        )
        .join_from(s, f, f.c.premises_id == s.c.premises_id)
        .join(k, k.c.space_id == s.c.space_id)
        .where(s.c.premises_id == premises)
    )
    names = ["premises_id", "ref_id", "space_id", "space_key", "kind", "start", "end"]
    names.append("blocked_until")
    return insert(b).from_select([*names, "title", "public"], rows)


_INSERT_BUSY_ON_SPACES = ByDialect(_insert_on_spaces)


def _release_holds(dialect: str) -> Delete:
    """Holds leave by (premises, request) pairs. On PostgreSQL one statement joins the pairs
    as two arrays to the primary key; a statement per premises with `ref_id = ANY(ids)` ran
    on psycopg's prepared generic plan after five premises, which scans every row of the
    premises against the whole array (141 ms for an expiry run's 10,000 holds). Elsewhere one
    statement per premises, its requests one JSON parameter (`one_of`)."""
    if dialect == "postgresql":
        texts = BinaryArray(String())  # two arrays of 10,000 ids: in binary (`one_of`)
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
# A booking's rows leave (cancelled, rejected): built once, a write that may be held.
_RELEASE_BOOKING = delete(busy_table).where(
    busy_table.c.premises_id == bindparam("premises_id"),
    busy_table.c.ref_id == bindparam("ref_id"),
)


class Availability(Projection):
    name = "availability"
    tables = (busy_table, buffers_table, spaces_table, space_keys_table)
    inline = True
    needs_position = False

    def _insert(self, conn: Connection, row: dict[str, Any]) -> None:
        # A write the service may hold back for the commit (`events.pipeline`).
        pipeline.write(conn, _INSERT_BUSY_ON_SPACES[conn], row)

    @handles(PremisesRegistered)
    def registered(self, conn: Connection, e: PremisesRegistered, rec: RecordedEvent) -> None:
        conn.execute(
            insert(buffers_table).values(
                premises_id=e.premises_id, buffer_minutes=e.rules.get("buffer_minutes", 0)
            )
        )
        spaces = e.spaces or [e.premises_id]
        keep_keys(conn, spaces)
        conn.execute(
            insert(spaces_table), [{"premises_id": e.premises_id, "space_id": s} for s in spaces]
        )

    @handles(PremisesUpdated)
    def updated(self, conn: Connection, e: PremisesUpdated, rec: RecordedEvent) -> None:
        if e.changes.get("spaces"):
            self._respaced(conn, e.premises_id, list(e.changes["spaces"]), rec.recorded_at)
        minutes = (e.changes.get("rules") or {}).get("buffer_minutes")
        if minutes is None:
            return
        conn.execute(
            update(buffers_table)
            .where(buffers_table.c.premises_id == e.premises_id)
            .values(buffer_minutes=minutes)
        )
        _reblock(conn, e.premises_id, minutes)

    def _respaced(
        self, conn: Connection, premises_id: str, spaces: list[str], at: datetime
    ) -> None:
        """The premises now occupies `spaces`: its rows that end after the change move there
        (the decider refused a change that would make them meet others'); older ones stay
        on the spaces the premises occupied then."""
        t = spaces_table
        conn.execute(delete(t).where(t.c.premises_id == premises_id))
        keep_keys(conn, spaces)
        conn.execute(insert(t), [{"premises_id": premises_id, "space_id": s} for s in spaces])
        keys = dict(conn.execute(_SPACES_OF, {"p": premises_id}).all())
        b = busy_table
        moving = (
            conn.execute(select(b).where(b.c.premises_id == premises_id, b.c.end > at))
            .mappings()
            .all()
        )
        if not moving:
            return
        conn.execute(delete(b).where(b.c.premises_id == premises_id, b.c.end > at))
        once = {row["ref_id"]: dict(row) for row in moving}
        conn.execute(
            _INSERT_BUSY,
            [
                {**row, "space_id": space, "space_key": keys[space]}
                for row in once.values()
                for space in spaces
            ],
        )

    @handles(BookingPlaced)
    def placed(self, conn: Connection, e: BookingPlaced, rec: RecordedEvent) -> None:
        self._insert(conn, _booking_row(e, e.end))

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
        # A write the service may hold back for the commit (`events.pipeline`).
        pipeline.write(
            conn, _RELEASE_BOOKING, {"premises_id": e.premises_id, "ref_id": e.booking_id}
        )

    @handles(PopupRequested)
    def popup_requested(self, conn: Connection, e: PopupRequested, rec: RecordedEvent) -> None:
        self._insert(conn, _hold_row(e, e.end))

    @handles_many(PopupApproved, PopupRejected, PopupWithdrawn, PopupExpired)
    def popup_decided(self, conn: Connection, decided: list[PopupDecision]) -> None:
        # The hold goes; an approval's BookingPlaced (appended right after) takes the slot.
        # An expiry run decides thousands: one DELETE per chunk of (premises, request) pairs
        # on PostgreSQL, per premises elsewhere (`_release_holds`).
        # A hold lies on every space of its premises: the DELETE takes all its rows.
        if conn.dialect.name == "postgresql":
            for chunk in one_of_chunks(decided):
                pairs = {"ps": [e.premises_id for e in chunk], "ids": [e.request_id for e in chunk]}
                conn.execute(_RELEASE_HOLDS[conn], pairs)
            return
        by_premises: dict[str, list[str]] = {}
        for e in decided:
            by_premises.setdefault(e.premises_id, []).append(e.request_id)
        for premises_id, ids in by_premises.items():
            for some in one_of_chunks(ids):
                conn.execute(_RELEASE_HOLDS[conn], {"p": premises_id, "ids": some})

    @handles(AllocationOfferHeld)
    def offer_held(self, conn: Connection, e: AllocationOfferHeld, rec: RecordedEvent) -> None:
        """A published offer's weekly occurrences, a row each on every space of its premises
        (kind `offer`; shown as a hold). Blocked until their end: the buffer after them is
        kept by the decider, which reads the premises' current buffer (the allocator leaves
        it free between a round's slots)."""
        spaces = conn.execute(_SPACES_OF, {"p": e.premises_id}).all()
        rows = [
            {**row, "space_id": space, "space_key": key}
            for index, span in enumerate(e.held)
            for row in (_offer_row(e, index, span),)
            for space, key in spaces
        ]
        if rows:
            conn.execute(_INSERT_BUSY, rows)

    @handles(AllocationHoldReleased)
    def hold_released(
        self, conn: Connection, e: AllocationHoldReleased, rec: RecordedEvent
    ) -> None:
        b = busy_table
        conn.execute(
            delete(b).where(
                b.c.premises_id == e.premises_id,
                b.c.kind == OFFER,
                b.c.ref_id.startswith(offer_ref_prefix(e.allocation_id), autoescape=True),
            )
        )

    @handles(ClosureAdded)
    def closed(self, conn: Connection, e: ClosureAdded, rec: RecordedEvent) -> None:
        row = _closure_row(e)
        spaces = conn.execute(_SPACES_OF, {"p": e.premises_id}).all()
        rows = [{**row, "space_id": space, "space_key": key} for space, key in spaces]
        conn.execute(_INSERT_BUSY, rows)

    def replay(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """A rebuild's batch. New busy rows wait in memory (an approval, cancellation or
        decision of one of them changes it there) and are written with one many-row INSERT.
        Changes to rows of earlier batches go through the live handlers (they touch only
        their own rows); anything else, and a new row whose blocked span depends on the rows
        after it (a premises with a buffer), first writes what waits."""
        new: dict[str, list[dict[str, Any]]] = {}
        buffers: dict[str, int] | None = None
        spaces: dict[str, list[tuple[str, int]]] = {}  # (space id, key) by premises

        def flush() -> None:
            insert_rows(conn, busy_table, [row for rows in new.values() for row in rows])
            new.clear()

        def load() -> dict[str, int]:
            spaces.clear()
            s, k = spaces_table, space_keys_table
            for premises_id, space_id, key in conn.execute(
                select(s.c.premises_id, s.c.space_id, k.c.space_key)
                .join(k, k.c.space_id == s.c.space_id)
                .order_by(s.c.space_id)
            ).all():
                spaces.setdefault(premises_id, []).append((space_id, key))
            return {p: m for p, m in conn.execute(select(buffers_table)).all()}

        for e, rec in pairs:
            if isinstance(e, BookingPlaced | PopupRequested):
                if buffers is None:
                    buffers = load()
                if buffers.get(e.premises_id):
                    flush()
                    self.apply(conn, e, rec)
                    continue
                if isinstance(e, BookingPlaced):
                    ref, row = e.booking_id, _booking_row(e, e.end)
                else:
                    ref, row = e.request_id, _hold_row(e, e.end)
                new[ref] = [
                    {**row, "space_id": space, "space_key": key}
                    for space, key in spaces.get(e.premises_id, ())
                ]
                continue
            rows = new.get(_ref_of(e)) if isinstance(e, _ONE_ROW) else None
            # Every event of `_ONE_ROW` names its premises; `Event` itself does not.
            if rows and rows[0]["premises_id"] == e.premises_id:  # type: ignore[attr-defined]
                if isinstance(e, BookingApproved):
                    for row in rows:
                        row["kind"] = "booking"
                else:
                    del new[rows[0]["ref_id"]]
            elif isinstance(e, _ONE_ROW):
                self.apply(conn, e, rec)
            else:
                flush()
                self.apply(conn, e, rec)
                buffers = None  # a registration or an update may have changed them
        flush()


def _reblock(conn: Connection, premises_id: str, minutes: int) -> None:
    """The premises' buffer is now `minutes`: each of its rows is blocked until its end plus
    that, stopped at the next start on its space. Bookings placed under a smaller buffer
    stay valid, or the exclusion constraint would refuse the update itself."""
    b = busy_table
    mine = conn.execute(
        select(b.c.ref_id, b.c.space_id, b.c.end).where(
            b.c.premises_id == premises_id, b.c.kind != "closure"
        )
    ).all()
    by_space: dict[str, list[datetime]] = {}
    for space_id in {row.space_id for row in mine}:
        by_space[space_id] = list(
            conn.execute(
                select(b.c.start)
                .where(b.c.space_id == space_id, b.c.kind != "closure")
                .order_by(b.c.start)
            ).scalars()
        )
    for ref_id, space_id, end in mine:
        starts = by_space[space_id]
        at = bisect_left(starts, end)
        blocked_until = end + timedelta(minutes=minutes)
        if at < len(starts):
            blocked_until = max(end, min(blocked_until, starts[at]))
        conn.execute(
            update(b)
            .where(b.c.premises_id == premises_id, b.c.ref_id == ref_id, b.c.space_id == space_id)
            .values(blocked_until=blocked_until)
        )


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


def _closure_row(e: ClosureAdded) -> dict[str, Any]:
    return {
        "premises_id": e.premises_id,
        "ref_id": e.closure_id,
        "kind": "closure",
        "start": e.start,
        "end": e.end,
        "blocked_until": e.end,
        "title": None,
        "public": False,
    }


def offer_ref_prefix(allocation_id: str) -> str:
    return f"{allocation_id}#"


def _offer_row(e: AllocationOfferHeld, index: int, span: dict[str, Any]) -> dict[str, Any]:
    start = datetime.fromisoformat(span["start"]).astimezone(UTC)
    end = datetime.fromisoformat(span["end"]).astimezone(UTC)
    return {
        "premises_id": e.premises_id,
        "ref_id": f"{offer_ref_prefix(e.allocation_id)}{index}",
        "kind": OFFER,
        "start": start,
        "end": end,
        "blocked_until": end,
        "title": None,
        "public": False,
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
