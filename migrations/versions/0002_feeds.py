"""iCalendar feeds: the feed-entries projection, its per-scope heads, and feed tokens.

`feed_entries` and `feed_calendars` belong to the inline projection `feed_entries`; a
database that already holds events needs `booking projections rebuild feed_entries` once.
`feed_tokens` keeps only the sha256 of each private feed's secret; `feed_token_keys` what
its scope names.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import events.sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "feed_entries",
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("premises_id", sa.String(length=100), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=True),
        sa.Column("booked_by", sa.String(length=64), nullable=True),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("start", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=True),
        sa.Column("created_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_modified", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ref_id"),
    )
    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feed_entries_premises_start", ["premises_id", "start"], unique=False
        )
        batch_op.create_index(
            "ix_feed_entries_organisation_start", ["organisation_id", "start"], unique=False
        )

    op.create_table(
        "feed_calendars",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", _json(), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )

    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("created_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", events.sql.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("feed_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feed_token_keys",
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["feed_tokens.id"]),
        sa.PrimaryKeyConstraint("token_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("feed_token_keys")
    with op.batch_alter_table("feed_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_tokens_user_id"))
    op.drop_table("feed_tokens")
    op.drop_table("feed_calendars")
    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_entries_organisation_start")
        batch_op.drop_index("ix_feed_entries_premises_start")
    op.drop_table("feed_entries")
