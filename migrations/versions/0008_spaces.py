"""Premises made of spaces: every existing premises gets one space of its own, named after it.

- `catalogue_premises.spaces`: the space ids a premises occupies (`["<id>"]` for each
  existing one, as the upcaster of `PremisesRegistered` v1 gives it on a rebuild).
- `availability_spaces`: premises → space, for the availability projection.
- `availability_busy` rows are per space: `space_id` joins the primary key, the indexes go by
  (space, start), and on PostgreSQL the exclusion constraint refuses two overlapping
  bookings or holds on one space (before: on one premises) — DESIGN.md invariant 2.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import events.sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CLOSURES = sa.text("kind = 'closure'")

catalogue = sa.table(
    "catalogue_premises",
    sa.column("id", sa.String),
    sa.column("spaces", events.sql.JSONDocument),
)


def _busy(by_space: bool) -> sa.Table:
    """availability_busy with its primary key per space (or per premises, as before)."""
    return sa.Table(
        "availability_busy",
        sa.MetaData(),
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("ref_id", sa.String(64), primary_key=True),
        sa.Column("space_id", sa.String(100), primary_key=by_space, nullable=not by_space),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(300), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("catalogue_premises", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spaces", events.sql.JSONDocument, nullable=True))
    ids = op.get_bind().execute(sa.select(catalogue.c.id)).scalars().all()
    for premises_id in ids:
        op.get_bind().execute(
            catalogue.update().where(catalogue.c.id == premises_id).values(spaces=[premises_id])
        )
    with op.batch_alter_table("catalogue_premises", schema=None) as batch_op:
        batch_op.alter_column("spaces", existing_type=events.sql.JSONDocument, nullable=False)

    op.create_table(
        "availability_spaces",
        sa.Column("premises_id", sa.String(length=100), nullable=False),
        sa.Column("space_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("premises_id", "space_id"),
    )
    op.create_index(
        "ix_availability_spaces_space", "availability_spaces", ["space_id"], unique=False
    )
    # Every registered premises has a buffer row: each occupies its own space.
    op.execute(
        "INSERT INTO availability_spaces (premises_id, space_id) "
        "SELECT premises_id, premises_id FROM availability_buffers"
    )

    if postgresql:
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_no_overlap")
    op.drop_index("ix_availability_busy_closures", table_name="availability_busy")
    op.drop_index("ix_availability_busy_premises_start", table_name="availability_busy")
    op.add_column("availability_busy", sa.Column("space_id", sa.String(length=100), nullable=True))
    op.execute("UPDATE availability_busy SET space_id = premises_id")
    if postgresql:
        op.alter_column("availability_busy", "space_id", nullable=False)
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_pkey")
        op.execute(
            "ALTER TABLE availability_busy ADD CONSTRAINT availability_busy_pkey "
            "PRIMARY KEY (premises_id, ref_id, space_id)"
        )
    else:
        # SQLite changes a primary key only by copying the table: described here as it is
        # to become, so that nothing is reflected and mended afterwards.
        with op.batch_alter_table(
            "availability_busy", recreate="always", copy_from=_busy(by_space=True)
        ):
            pass
    op.create_index("ix_availability_busy_space_start", "availability_busy", ["space_id", "start"])
    op.create_index(
        "ix_availability_busy_space_closures",
        "availability_busy",
        ["space_id", "start"],
        unique=False,
        sqlite_where=CLOSURES,
        postgresql_where=CLOSURES,
    )
    if postgresql:
        op.execute(
            "ALTER TABLE availability_busy ADD CONSTRAINT availability_busy_no_overlap "
            "EXCLUDE USING gist (space_id WITH =, tstzrange(start, blocked_until) WITH &&) "
            "WHERE (kind <> 'closure')"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_no_overlap")
    op.drop_index("ix_availability_busy_space_closures", table_name="availability_busy")
    op.drop_index("ix_availability_busy_space_start", table_name="availability_busy")
    # Back to one row per premises: a premises' first space keeps its row.
    op.execute(
        "DELETE FROM availability_busy WHERE space_id <> (SELECT min(s.space_id) FROM "
        "availability_spaces s WHERE s.premises_id = availability_busy.premises_id)"
    )
    if postgresql:
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_pkey")
        op.drop_column("availability_busy", "space_id")
        op.execute(
            "ALTER TABLE availability_busy ADD CONSTRAINT availability_busy_pkey "
            "PRIMARY KEY (premises_id, ref_id)"
        )
    else:
        with op.batch_alter_table(
            "availability_busy", recreate="always", copy_from=_busy(by_space=False)
        ) as batch_op:
            batch_op.drop_column("space_id")
    op.create_index(
        "ix_availability_busy_premises_start", "availability_busy", ["premises_id", "start"]
    )
    op.create_index(
        "ix_availability_busy_closures",
        "availability_busy",
        ["premises_id", "start"],
        unique=False,
        sqlite_where=CLOSURES,
        postgresql_where=CLOSURES,
    )
    if postgresql:
        op.execute(
            "ALTER TABLE availability_busy ADD CONSTRAINT availability_busy_no_overlap "
            "EXCLUDE USING gist (premises_id WITH =, tstzrange(start, blocked_until) WITH &&) "
            "WHERE (kind <> 'closure')"
        )
    op.drop_index("ix_availability_spaces_space", table_name="availability_spaces")
    op.drop_table("availability_spaces")
    with op.batch_alter_table("catalogue_premises", schema=None) as batch_op:
        batch_op.drop_column("spaces")
