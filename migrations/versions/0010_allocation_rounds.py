"""Seasonal allocation rounds: rounds, applications and allocations (offers) as rows.

Revision ID: 0010
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import events.sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC = events.sql.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "allocation_rounds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", events.sql.JSONDocument, nullable=False),
        sa.Column("season_start", sa.String(length=10), nullable=False),
        sa.Column("season_end", sa.String(length=10), nullable=False),
        sa.Column("applications_open", UTC, nullable=False),
        sa.Column("applications_close", UTC, nullable=False),
        sa.Column("premises", events.sql.JSONDocument, nullable=False),
        sa.Column("criteria", events.sql.JSONDocument, nullable=False),
        sa.Column("confirm_days", sa.Integer(), nullable=False),
        sa.Column("unallocated", events.sql.JSONDocument, nullable=True),
        sa.Column("metrics", events.sql.JSONDocument, nullable=True),
        sa.Column("proposed_at", UTC, nullable=True),
        sa.Column("published_at", UTC, nullable=True),
        sa.Column("confirm_by", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "allocation_applications",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("round_id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("age_group", sa.String(length=8), nullable=False),
        sa.Column("group_size", sa.Integer(), nullable=False),
        sa.Column("sections", events.sql.JSONDocument, nullable=False),
        sa.Column("submitted_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_allocation_applications_round_id", "allocation_applications", ["round_id"])
    op.create_index(
        "ix_allocation_applications_organisation_id",
        "allocation_applications",
        ["organisation_id"],
    )
    op.create_table(
        "allocations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("round_id", sa.String(length=64), nullable=False),
        sa.Column("application_id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("section", sa.String(length=200), nullable=False),
        sa.Column("premises_id", sa.String(length=100), nullable=False),
        sa.Column("weekday", sa.String(length=3), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("premises_rank", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=False),
        sa.Column("confirm_by", UTC, nullable=True),
        sa.Column("series_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_allocations_round_id", "allocations", ["round_id"])
    op.create_index("ix_allocations_application_id", "allocations", ["application_id"])
    op.create_index("ix_allocations_organisation_id", "allocations", ["organisation_id"])
    op.create_index("ix_allocations_status_confirm_by", "allocations", ["status", "confirm_by"])


def downgrade() -> None:
    op.drop_table("allocations")
    op.drop_table("allocation_applications")
    op.drop_table("allocation_rounds")
