"""The availability projection's tables: busy rows per space, premises → spaces, buffers,
and an integer key per space id.

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
    # The space's integer key (`space_keys_table`): PostgreSQL's exclusion constraint per
    # space compares it rather than the text id, and builds its GiST index 2-3× faster.
    Column("space_key", Integer, nullable=False),
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

# Every space id ever occupied gets an integer key, kept for good (busy rows of the past stay
# on spaces a premises has left). Keys are numbered 1, 2, … in the order spaces first appear
# in the log: a rebuild numbers them as the live writes did. Each busy row carries its
# space's key, written by the same statement that writes the row.
space_keys_table = Table(
    "availability_space_keys",
    metadata,
    Column("space_id", String(100), primary_key=True),
    Column("space_key", Integer, nullable=False, unique=True),
)
