"""Bookings as rows: what GET /bookings and the booking responses read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    update,
)
from sqlalchemy.engine import Connection

from events import pipeline
from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    Event,
)
from events.sql import UTCDateTime
from events.store import RecordedEvent
from projections.base import Projection, handles, metadata
from projections.batching import insert_rows, rows_by_key, upsert_replacing

bookings_table = Table(
    "booking_list",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("premises_id", String(100), nullable=False),
    Column("organisation_id", String(64)),
    Column("booked_by", String(64), nullable=False),
    Column("series_id", String(64), index=True),
    Column("status", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("title", String(300), nullable=False),
    Column("attendees", Integer, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("notes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("late", Boolean),
    Column("reason", Text),  # the person's own words
    Column("reason_code", String(32)),  # the cause the system knows (events.catalog.CAUSES)
    Index("ix_booking_list_premises_start", "premises_id", "start"),
    Index("ix_booking_list_organisation_start", "organisation_id", "start"),
)


# Built once: a statement made per call costs more Python than the database's insert.
_INSERT = insert(bookings_table)
# A cancellation's change, for a write the service may hold back for the commit
# (`events.pipeline`): the same SET as `_change` with `changed_values`.
_CANCELLED = (
    update(bookings_table)
    .where(bookings_table.c.id == bindparam("booking_id"))
    .values(
        version=bookings_table.c.version + 1,
        status="cancelled",
        reason=bindparam("new_reason"),
        reason_code=bindparam("new_reason_code"),
        late=bindparam("new_late"),
        updated_at=bindparam("new_updated_at", type_=UTCDateTime()),
    )
)


class Bookings(Projection):
    name = "bookings"
    tables = (bookings_table,)
    inline = True
    needs_position = False
    rebuild_drops = tuple(bookings_table.indexes)  # a replay finds rows by id only

    @handles(BookingPlaced)
    def placed(self, conn: Connection, e: BookingPlaced, rec: RecordedEvent) -> None:
        pipeline.write(conn, _INSERT, _placed_row(e))

    def _change(self, conn: Connection, booking_id: str, **values: object) -> None:
        t = bookings_table
        conn.execute(
            update(t).where(t.c.id == booking_id).values(version=t.c.version + 1, **values)
        )

    @handles(BookingApproved)
    def approved(self, conn: Connection, e: BookingApproved, rec: RecordedEvent) -> None:
        self._change(conn, e.booking_id, **changed_values(e))

    @handles(BookingRejected)
    def rejected(self, conn: Connection, e: BookingRejected, rec: RecordedEvent) -> None:
        self._change(conn, e.booking_id, **changed_values(e))

    @handles(BookingCancelled)
    def cancelled(self, conn: Connection, e: BookingCancelled, rec: RecordedEvent) -> None:
        if not pipeline.holding(conn):
            self._change(conn, e.booking_id, **changed_values(e))
            return
        values = changed_values(e)
        params = {"booking_id": e.booking_id, "new_reason": values["reason"]}
        params.update(new_reason_code=values["reason_code"], new_late=values["late"])
        pipeline.write(conn, _CANCELLED, {**params, "new_updated_at": values["updated_at"]})

    def replay(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """A rebuild's batch: the rows it places or changes (those of earlier batches read
        back first) are changed in memory and written with one upsert."""
        placed = {e.booking_id: None for e, _ in pairs if isinstance(e, BookingPlaced)}
        earlier = [
            e.booking_id for e, _ in pairs if isinstance(e, _CHANGES) and e.booking_id not in placed
        ]
        rows = rows_by_key(conn, bookings_table, "id", earlier)
        changed: dict[str, None] = {}
        for e, _ in pairs:
            if isinstance(e, BookingPlaced):
                rows[e.booking_id] = _placed_row(e)
            elif isinstance(e, _CHANGES) and (row := rows.get(e.booking_id)) is not None:
                row.update(changed_values(e), version=row["version"] + 1)
                if e.booking_id not in placed:
                    changed[e.booking_id] = None
        insert_rows(conn, bookings_table, [rows[i] for i in placed if i in rows])
        upsert_replacing(conn, bookings_table, ["id"], [_complete(rows[i]) for i in changed])


_CHANGES = (BookingApproved, BookingRejected, BookingCancelled)
_COLUMNS = tuple(c.name for c in bookings_table.columns)


def _placed_row(e: BookingPlaced) -> dict[str, Any]:
    return {
        "id": e.booking_id,
        "premises_id": e.premises_id,
        "organisation_id": e.organisation_id,
        "booked_by": e.booked_by,
        "series_id": e.series_id,
        "status": e.status,
        "start": e.start,
        "end": e.end,
        "title": e.title,
        "attendees": e.attendees,
        "public": e.public,
        "notes": e.notes,
        "created_at": e.placed_at,
        "updated_at": e.placed_at,
        "version": 1,
        "late": None,
        "reason": None,
        "reason_code": None,
    }


def changed_values(e: BookingApproved | BookingRejected | BookingCancelled) -> dict[str, Any]:
    if isinstance(e, BookingApproved):
        return {"status": "confirmed", "updated_at": e.approved_at}
    if isinstance(e, BookingRejected):
        return {"status": "rejected", "reason": e.reason, "updated_at": e.rejected_at}
    return {
        "status": "cancelled",
        "reason": e.reason,
        "reason_code": e.cause or None,
        "late": e.late,
        "updated_at": e.cancelled_at,
    }


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """Every column, in one order (an upsert takes rows of one shape); unset ones NULL."""
    return {name: row.get(name) for name in _COLUMNS}
