"""Feed entries: what the iCalendar feeds render, one row per booking or closure.

Each row keeps what a calendar client tracks: a stable `uid`, a `sequence` raised by every
change of time, title or status (approval, rejection, cancellation), the instant of the last
change (`last_modified`, which the feeds send as both DTSTAMP and LAST-MODIFIED) and the log
position of that change. A cancelled or rejected booking keeps its row: the feeds show it as
STATUS:CANCELLED for 30 days, so that clients that imported it learn it is off.

`feed_calendars` has one row per feed scope (a premises, an organisation) with the position
and instant of the last change in it: a feed's ETag and Last-Modified come from there, so a
conditional request is answered from one or two primary-key reads, never from the entries.

Inline, written in the append's transaction, rather than caught up by the runner: a feed then
shows a booking as soon as its request returns, and the position in `feed_calendars` is always
the one the body reflects, so an ETag can never promise data a lagging projection lacks.
The cost is a few more row writes per append.

No personal data here: people appear by id (`booked_by`), and the feeds resolve a contact at
render time through the privacy layer (so erasure needs no change here). Notes stay in the
bookings projection. Organisation names are read at render time from `organisations`, because
organisations are registered outside the premises streams (and never renamed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from events import pipeline
from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    ClosureAdded,
    Event,
    PremisesRegistered,
    PremisesUpdated,
)
from events.sql import ByDialect, JSONDocument, UTCDateTime
from events.store import RecordedEvent, position_of
from projections.base import Projection, handles, metadata
from projections.batching import insert_rows, upsert_replacing

# The namespace of UIDs made for ids that are not UUIDs already (RFC 7986 asks for UUIDs).
UID_NAMESPACE = uuid.UUID("6f1c7f0e-4a8a-4f43-9d55-8f1d2f0b6a11")

entries_table = Table(
    "feed_entries",
    metadata,
    Column("ref_id", String(64), primary_key=True),  # the booking's or closure's id
    Column("kind", String(16), nullable=False),  # booking | closure
    Column("premises_id", String(100), nullable=False),
    Column("organisation_id", String(64)),
    Column("booked_by", String(64)),  # a user id; the contact is resolved when rendering
    Column("uid", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    # confirmed | pending_approval | cancelled | rejected (bookings); closed (closures)
    Column("status", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("title", String(300), nullable=False),  # a closure's reason
    Column("public", Boolean, nullable=False),
    Column("attendees", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_modified", UTCDateTime, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_feed_entries_premises_start", "premises_id", "start"),
    Index("ix_feed_entries_organisation_start", "organisation_id", "start"),
)

calendars_table = Table(
    "feed_calendars",
    metadata,
    Column("scope", String(16), primary_key=True),  # premises | organisation
    Column("key", String(100), primary_key=True),  # the premises or organisation id
    Column("name", JSONDocument),  # a premises' localised name
    Column("address", String(300)),
    Column("position", BigInteger, nullable=False),  # of the last change in this scope
    Column("changed_at", UTCDateTime, nullable=False),
)

ACTIVE = ("confirmed", "pending_approval")


# A UUID in its canonical text (what the app makes): its own UID as it stands.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uid_for(kind: str, ref_id: str) -> str:
    """The booking's or closure's own UUID, or a name-based one for any other id."""
    if _CANONICAL_UUID.fullmatch(ref_id):
        return ref_id  # what str(uuid.UUID(ref_id)) gives, without building one
    try:
        return str(uuid.UUID(ref_id))
    except ValueError:
        return str(uuid.uuid5(UID_NAMESPACE, f"{kind}:{ref_id}"))


def _touch(
    conn: Connection, rec: RecordedEvent, scopes: list[tuple[str, str]], **values: object
) -> None:
    """Move each (scope, key)'s position to `rec`, creating rows on first use: one upsert."""
    changed = {"position": rec.position, "changed_at": rec.recorded_at, **values}
    upsert_replacing(
        conn,
        calendars_table,
        ("scope", "key"),
        [{"scope": s, "key": k, **changed} for s, k in scopes],
    )


def _scopes(premises_id: str, organisation_id: str | None) -> list[tuple[str, str]]:
    scopes = [("premises", premises_id)]
    if organisation_id is not None:
        scopes.append(("organisation", organisation_id))
    return scopes


_INSERT_ENTRY = insert(entries_table)
# A new entry and a calendar's move, at the position of the event named by its stream and
# version (`events.store.position_of`).
_INSERT_ENTRY_AT = insert(entries_table).values(position=position_of)


# A booking's entry changed by an event named by its stream and version (`position_of`),
# and the calendars of its scopes moved to that event: no read of the entry first, so that
# the service may hold them back for the commit (`events.pipeline`). The same rows as
# `_change_entry` and `_touch` write; no entry, no calendar moves.
_CHANGE_ENTRY_AT = (
    update(entries_table)
    .where(entries_table.c.ref_id == bindparam("ref_id"))
    .values(
        status=bindparam("new_status"),
        sequence=entries_table.c.sequence + 1,
        last_modified=bindparam("changed_at", type_=UTCDateTime()),
        position=position_of,
    )
)


def _touch_scopes_at(dialect: str) -> Any:
    """Move the calendars of the entry's premises and organisation (none when the entry has
    no organisation) to the event's position, creating them on first use: one upsert for
    both (a statement each was 7 % of a booking's statements on PostgreSQL, server and
    driver alike). The entry is written by an earlier statement of the transaction."""
    t = entries_table
    upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(calendars_table)
    changed_at = bindparam("changed_at", type_=UTCDateTime())
    rows = union_all(
        select(literal("premises", String()), t.c.premises_id, position_of, changed_at).where(
            t.c.ref_id == bindparam("ref_id")
        ),
        select(
            literal("organisation", String()), t.c.organisation_id, position_of, changed_at
        ).where(t.c.ref_id == bindparam("ref_id"), t.c.organisation_id.is_not(None)),
    )
    moved = upsert.from_select(["scope", "key", "position", "changed_at"], rows)
    return moved.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={"position": moved.excluded.position, "changed_at": moved.excluded.changed_at},
    )


_TOUCH_SCOPES_AT = ByDialect(_touch_scopes_at)


class FeedEntries(Projection):
    name = "feed_entries"
    tables = (entries_table, calendars_table)
    inline = True
    # A replay finds entries by id; only a premises' rename reads by premises (and scans).
    rebuild_drops = tuple(entries_table.indexes)

    @handles(PremisesRegistered)
    def registered(self, conn: Connection, e: PremisesRegistered, rec: RecordedEvent) -> None:
        _touch(conn, rec, [("premises", e.premises_id)], name=e.name, address=e.address)

    @handles(PremisesUpdated)
    def updated(self, conn: Connection, e: PremisesUpdated, rec: RecordedEvent) -> None:
        if "spaces" in e.changes:
            # A premises' feed shows the entries of those sharing a space with it as busy
            # time: which feeds show this one's changes with its spaces. The spaces it
            # leaves are not kept here, so every premises feed moves (a rare change, made
            # by staff): no feed's Last-Modified may stay while its body changed.
            c = calendars_table
            conn.execute(
                update(c)
                .where(c.c.scope == "premises")
                .values(position=rec.position, changed_at=rec.recorded_at)
            )
        shown = {k: e.changes[k] for k in ("name", "address") if k in e.changes}
        if not shown:
            return  # rules, hours, prices: nothing a feed shows
        _touch(conn, rec, [("premises", e.premises_id)], **shown)
        # Organisation feeds name the premises in LOCATION: their ETags must move too.
        t = entries_table
        organisations = conn.execute(
            select(t.c.organisation_id)
            .where(t.c.premises_id == e.premises_id, t.c.organisation_id.is_not(None))
            .distinct()
        ).scalars()
        _touch(conn, rec, [("organisation", o) for o in organisations])

    @handles(BookingPlaced)
    def placed(self, conn: Connection, e: BookingPlaced, rec: RecordedEvent) -> None:
        # Writes that may be held for the commit's round trip: the position is read in SQL
        # from the event's row, which the INSERT before them wrote (`position_of`).
        at = {"event_stream": rec.stream, "event_version": rec.version}
        row = _placed_row(e, rec)
        del row["position"]
        pipeline.write(conn, _INSERT_ENTRY_AT, {**row, **at})
        changed = {"ref_id": e.booking_id, "changed_at": rec.recorded_at, **at}
        pipeline.write(conn, _TOUCH_SCOPES_AT[conn], changed)

    def _changed(self, conn: Connection, booking_id: str, status: str, rec: RecordedEvent) -> None:
        scopes = _change_entry(conn, booking_id, status, rec)
        if scopes:
            _touch(conn, rec, scopes)

    @handles(BookingApproved)
    def approved(self, conn: Connection, e: BookingApproved, rec: RecordedEvent) -> None:
        self._changed(conn, e.booking_id, "confirmed", rec)

    @handles(BookingRejected)
    def rejected(self, conn: Connection, e: BookingRejected, rec: RecordedEvent) -> None:
        self._changed(conn, e.booking_id, "rejected", rec)

    @handles(BookingCancelled)
    def cancelled(self, conn: Connection, e: BookingCancelled, rec: RecordedEvent) -> None:
        if not pipeline.holding(conn):
            self._changed(conn, e.booking_id, "cancelled", rec)
            return
        # Writes that may be held for the commit's round trip, the position read in SQL.
        at = {"event_stream": rec.stream, "event_version": rec.version}
        changed = {"ref_id": e.booking_id, "changed_at": rec.recorded_at, **at}
        pipeline.write(conn, _CHANGE_ENTRY_AT, {**changed, "new_status": "cancelled"})
        pipeline.write(conn, _TOUCH_SCOPES_AT[conn], changed)

    @handles(ClosureAdded)
    def closed(self, conn: Connection, e: ClosureAdded, rec: RecordedEvent) -> None:
        conn.execute(
            insert(entries_table).values(
                ref_id=e.closure_id,
                kind="closure",
                premises_id=e.premises_id,
                organisation_id=None,
                booked_by=None,
                uid=uid_for("closure", e.closure_id),
                sequence=0,
                status="closed",
                start=e.start,
                end=e.end,
                title=e.reason[:300],
                public=False,
                attendees=None,
                created_at=rec.recorded_at,
                last_modified=rec.recorded_at,
                position=rec.position,
            )
        )
        _touch(conn, rec, [("premises", e.premises_id)])

    def replay(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """A rebuild's batch. New entries and the calendars' moves wait in memory and are
        written with one many-row statement per table; a change to an entry of an earlier
        batch updates its row at once. Other events (premises, closures) first write what
        waits and then go through the live handlers."""
        new: dict[str, dict[str, Any]] = {}
        touched: dict[tuple[str, str], dict[str, Any]] = {}

        def touch(rec: RecordedEvent, scopes: list[tuple[str, str]]) -> None:
            for scope in scopes:
                found = touched.setdefault(scope, {"scope": scope[0], "key": scope[1]})
                found.update(position=rec.position, changed_at=rec.recorded_at)

        def flush() -> None:
            insert_rows(conn, entries_table, list(new.values()))
            new.clear()
            # Rows that moved name or address too, and rows that only moved.
            for shape in {tuple(row) for row in touched.values()}:
                rows = [row for row in touched.values() if tuple(row) == shape]
                upsert_replacing(conn, calendars_table, ("scope", "key"), rows)
            touched.clear()

        for e, rec in pairs:
            if isinstance(e, BookingPlaced):
                new[e.booking_id] = _placed_row(e, rec)
                touch(rec, _scopes(e.premises_id, e.organisation_id))
            elif isinstance(e, BookingApproved | BookingRejected | BookingCancelled):
                status = _STATUS_AFTER[type(e)]
                row = new.get(e.booking_id)
                if row is not None:
                    row.update(
                        status=status,
                        sequence=row["sequence"] + 1,
                        last_modified=rec.recorded_at,
                        position=rec.position,
                    )
                    touch(rec, _scopes(row["premises_id"], row["organisation_id"]))
                elif scopes := _change_entry(conn, e.booking_id, status, rec):
                    touch(rec, scopes)
            else:
                flush()
                self.apply(conn, e, rec)
        flush()


_STATUS_AFTER: dict[type[Event], str] = {
    BookingApproved: "confirmed",
    BookingRejected: "rejected",
    BookingCancelled: "cancelled",
}


def _placed_row(e: BookingPlaced, rec: RecordedEvent) -> dict[str, Any]:
    return {
        "ref_id": e.booking_id,
        "kind": "booking",
        "premises_id": e.premises_id,
        "organisation_id": e.organisation_id,
        "booked_by": e.booked_by,
        "uid": uid_for("booking", e.booking_id),
        "sequence": 0,
        "status": e.status,
        "start": e.start,
        "end": e.end,
        "title": e.title,
        "public": e.public,
        "attendees": e.attendees,
        "created_at": e.placed_at,
        "last_modified": rec.recorded_at,
        "position": rec.position,
    }


def _change_entry(
    conn: Connection, booking_id: str, status: str, rec: RecordedEvent
) -> list[tuple[str, str]]:
    """Give a booking's entry its new status; the scopes whose feeds show it (none when
    there is no such entry)."""
    # Every change a client should pick up raises SEQUENCE (RFC 5545 3.8.7.4).
    t = entries_table
    row = conn.execute(
        update(t)
        .where(t.c.ref_id == booking_id)
        .values(
            status=status,
            sequence=t.c.sequence + 1,
            last_modified=rec.recorded_at,
            position=rec.position,
        )
        .returning(t.c.premises_id, t.c.organisation_id)
    ).first()
    return [] if row is None else _scopes(row.premises_id, row.organisation_id)


# --- queries ----------------------------------------------------------------------------


def calendars(conn: Connection, scope: str, keys: list[str]) -> list[Any]:
    """The `feed_calendars` rows of a feed's scope: names, and the position and instant of
    the last change in each (a feed's ETag and Last-Modified are their maxima)."""
    t = calendars_table
    return list(conn.execute(select(t).where(t.c.scope == scope, t.c.key.in_(keys))).all())
