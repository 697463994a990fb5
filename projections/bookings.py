"""Bookings as rows: what GET /bookings and the booking responses read."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, insert, update
from sqlalchemy.engine import Connection

from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
)
from events.sql import UTCDateTime
from events.store import RecordedEvent
from projections.base import Projection, handles, metadata

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
    Column("reason", Text),
    Index("ix_booking_list_premises_start", "premises_id", "start"),
    Index("ix_booking_list_organisation_start", "organisation_id", "start"),
)


# Built once: a statement made per call costs more Python than the database's insert.
_INSERT = insert(bookings_table)


class Bookings(Projection):
    name = "bookings"
    tables = (bookings_table,)
    inline = True

    @handles(BookingPlaced)
    def placed(self, conn: Connection, e: BookingPlaced, rec: RecordedEvent) -> None:
        conn.execute(
            _INSERT,
            {
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
            },
        )

    def _change(self, conn: Connection, booking_id: str, **values: object) -> None:
        t = bookings_table
        conn.execute(
            update(t).where(t.c.id == booking_id).values(version=t.c.version + 1, **values)
        )

    @handles(BookingApproved)
    def approved(self, conn: Connection, e: BookingApproved, rec: RecordedEvent) -> None:
        self._change(conn, e.booking_id, status="confirmed", updated_at=e.approved_at)

    @handles(BookingRejected)
    def rejected(self, conn: Connection, e: BookingRejected, rec: RecordedEvent) -> None:
        self._change(
            conn, e.booking_id, status="rejected", reason=e.reason, updated_at=e.rejected_at
        )

    @handles(BookingCancelled)
    def cancelled(self, conn: Connection, e: BookingCancelled, rec: RecordedEvent) -> None:
        self._change(
            conn,
            e.booking_id,
            status="cancelled",
            reason=e.reason,
            late=e.late,
            updated_at=e.cancelled_at,
        )
