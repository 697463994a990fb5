"""The availability projection's tables: busy rows per space, premises → spaces, buffers.

Apart from the projection (projections/availability.py) and its queries
(projections/availability_read.py) so that both can use them without importing each other.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, text

from events.sql import UTCDateTime
from projections.base import metadata

CLOSURE_ROWS = "kind = 'closure'"
# A published allocation offer's weekly occurrence: held like a pop-up request's slot (and
# shown as `hold`), but for every premises sharing a space, its own premises included.
OFFER = "offer"

busy_table = Table(
    "availability_busy",
    metadata,
    Column("premises_id", String(100), primary_key=True),
    Column("ref_id", String(64), primary_key=True),
    Column("space_id", String(100), primary_key=True),
    Column("kind", String(16), nullable=False),  # booking | hold | offer | closure
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("blocked_until", UTCDateTime, nullable=False),
    Column("title", String(300)),  # only for public bookings
    Column("public", Boolean, nullable=False),
    Index("ix_availability_busy_space_start", "space_id", "start"),
    # Closures have no longest length, so `busy_between` looks them up apart.
    Index(
        "ix_availability_busy_space_closures",
        "space_id",
        "start",
        sqlite_where=text(CLOSURE_ROWS),
        postgresql_where=text(CLOSURE_ROWS),
    ),
)

spaces_table = Table(
    "availability_spaces",
    metadata,
    Column("premises_id", String(100), primary_key=True),
    Column("space_id", String(100), primary_key=True),
    Index("ix_availability_spaces_space", "space_id"),
)

buffers_table = Table(
    "availability_buffers",
    metadata,
    Column("premises_id", String(100), primary_key=True),
    Column("buffer_minutes", Integer, nullable=False),
)
