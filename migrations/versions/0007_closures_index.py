"""Find busy rows by start within the longest booking's reach, and closures by their own
index: replaces 0006's index by end, which made searches of past windows walk the future.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CLOSURES = sa.text("kind = 'closure'")


def upgrade() -> None:
    op.drop_index("ix_availability_busy_premises_blocked", table_name="availability_busy")
    op.create_index(
        "ix_availability_busy_closures",
        "availability_busy",
        ["premises_id", "start"],
        unique=False,
        sqlite_where=CLOSURES,
        postgresql_where=CLOSURES,
    )


def downgrade() -> None:
    op.drop_index("ix_availability_busy_closures", table_name="availability_busy")
    op.create_index(
        "ix_availability_busy_premises_blocked",
        "availability_busy",
        ["premises_id", "blocked_until"],
        unique=False,
    )
