"""Index busy rows by their (blocked) end, so searching a coming window skips history.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_availability_busy_premises_blocked",
        "availability_busy",
        ["premises_id", "blocked_until"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_availability_busy_premises_blocked", table_name="availability_busy")
