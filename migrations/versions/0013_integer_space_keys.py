"""An integer key per space: the exclusion constraint per space compares integers.

- `availability_space_keys`: every space id ever occupied (by a premises now, or by a busy
  row of the past) and its integer key, numbered here in the order of the ids.
- `availability_busy.space_key`: each row's space's key.
- PostgreSQL: the exclusion constraint of DESIGN.md invariant 2 refuses two overlapping
  rows of one `space_key` (before: of one `space_id`; the keys and ids map one to one). Its
  GiST index builds 2-3× faster on an integer than on text, which a rebuild pays once per
  run (bench/results/2026-12-07-rebuild-speed.md).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BY_SPACE_ID = (
    "ALTER TABLE availability_busy ADD CONSTRAINT availability_busy_no_overlap "
    "EXCLUDE USING gist (space_id WITH =, tstzrange(start, blocked_until) WITH &&) "
    "WHERE (kind <> 'closure')"
)
BY_SPACE_KEY = BY_SPACE_ID.replace("(space_id WITH =", "(space_key WITH =")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "availability_space_keys",
        sa.Column("space_id", sa.String(length=100), nullable=False),
        sa.Column("space_key", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("space_id"),
        sa.UniqueConstraint("space_key"),
    )
    op.execute(
        "INSERT INTO availability_space_keys (space_id, space_key) "
        "SELECT space_id, row_number() OVER (ORDER BY space_id) FROM ("
        "SELECT space_id FROM availability_spaces UNION "
        "SELECT space_id FROM availability_busy) AS spaces"
    )
    if postgresql:
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_no_overlap")
    op.add_column("availability_busy", sa.Column("space_key", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE availability_busy SET space_key = (SELECT k.space_key FROM "
        "availability_space_keys k WHERE k.space_id = availability_busy.space_id)"
    )
    with op.batch_alter_table("availability_busy") as batch:
        batch.alter_column("space_key", existing_type=sa.Integer(), nullable=False)
    if postgresql:
        op.execute(BY_SPACE_KEY)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE availability_busy DROP CONSTRAINT availability_busy_no_overlap")
    with op.batch_alter_table("availability_busy") as batch:
        batch.drop_column("space_key")
    if postgresql:
        op.execute(BY_SPACE_ID)
    op.drop_table("availability_space_keys")
