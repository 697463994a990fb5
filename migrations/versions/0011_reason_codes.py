"""Keep why the system cancelled or turned down apart from a person's words: a
`reason_code` beside `reason` in the bookings and pop-up request projections.

Rows projected before this keep their old English sentence in `reason` and no code;
booking/reasons.py reads such a sentence back as its cause and words.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("booking_list", "popup_requests")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reason_code")
