"""Pop-up requests, message threads and the e-mail outbox.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import events.sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "popup_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("premises_id", sa.String(length=100), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("expected_attendees", sa.Integer(), nullable=False),
        sa.Column("decision_deadline", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_popup_requests_premises_id"), "popup_requests", ["premises_id"], unique=False
    )
    op.create_index(
        op.f("ix_popup_requests_requested_by"), "popup_requests", ["requested_by"], unique=False
    )
    op.create_index(
        "ix_popup_requests_status_deadline",
        "popup_requests",
        ["status", "decision_deadline"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("thread_kind", sa.String(length=16), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("author_role", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("posted_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_messages_thread", "messages", ["thread_kind", "thread_id", "posted_at"], unique=False
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", events.sql.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", events.sql.UTCDateTime(timezone=True), nullable=True),
        sa.Column("logged_at", events.sql.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index(op.f("ix_outbox_next_attempt_at"), "outbox", ["next_attempt_at"], unique=False)
    op.create_index(op.f("ix_outbox_recipient_id"), "outbox", ["recipient_id"], unique=False)
    op.create_index(op.f("ix_outbox_sent_at"), "outbox", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("messages")
    op.drop_table("popup_requests")
