"""An organisation's contact person (who may decide its membership requests) and its
retirement; the role a provider's claim granted a person (BOOKING_OIDC_ROLE_MAP), so that a
role the provider stops granting is taken away again at the next sign-in.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import events.sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INSTANT = events.sql.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("contact_user_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("retired_at", INSTANT, nullable=True))
    with op.batch_alter_table("oidc_identities") as batch:
        batch.add_column(sa.Column("granted_role", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oidc_identities") as batch:
        batch.drop_column("granted_role")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("contact_user_id")
