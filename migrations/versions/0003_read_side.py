"""The asynchronous read side: the free-premises registry, usage statistics, and a NOTIFY.

On PostgreSQL every statement that appends events notifies channel `tilavaraus_events`
(delivered at commit), so the projection runner wakes at once instead of polling.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import events.sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
INSTANT = events.sql.UTCDateTime(timezone=True)
# The measures of projections.usage as they were at this revision.
COUNTS = (
    "booked_s",
    "bookings",
    "cancellations",
    "late_cancellations",
    "popup_requests",
    "popup_approved",
    "popup_rejected",
    "popup_expired",
    "attendance_ppm",
    "attendance_n",
)
MEASURES = COUNTS + tuple(f"lead_{i}" for i in range(27))
TIME_COLUMNS = ("month", "week", "weekday")


def _measures() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in MEASURES]


def _times() -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in TIME_COLUMNS]


def upgrade() -> None:
    op.create_table(
        "registry_premises",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("name", JSON, nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("free_of_charge", sa.Boolean(), nullable=False),
        sa.Column("free_use_conditions", JSON, nullable=False),
        sa.Column("accessibility", JSON, nullable=False),
        sa.Column("equipment", JSON, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("opening_hours", JSON, nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "usage_premises",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("opening_hours", JSON, nullable=False),
        sa.Column("retired_at", INSTANT, nullable=True),
    )
    op.create_table(
        "usage_schedules",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger(), primary_key=True),
        sa.Column("valid_from", INSTANT, nullable=False),
        sa.Column("opening_hours", JSON, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
    )
    op.create_table(
        "usage_closures",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("closure_id", sa.String(64), primary_key=True),
        sa.Column("start", INSTANT, nullable=False),
        sa.Column("end", INSTANT, nullable=False),
    )
    op.create_table(
        "usage_organisations",
        sa.Column("organisation_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
    )
    op.create_table(
        "usage_bookings",
        sa.Column("booking_id", sa.String(64), primary_key=True),
        sa.Column("premises_id", sa.String(100), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("org_type", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("start_s", sa.BigInteger(), nullable=False),
        sa.Column("end_s", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("lead_bucket", sa.SmallInteger(), nullable=False),
        sa.Column("attendance_ppm", sa.Integer(), nullable=False),
    )
    op.create_table(
        "usage_popups",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("premises_id", sa.String(100), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("start", INSTANT, nullable=False),
    )
    op.create_table(
        "usage_cells",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("hour", sa.SmallInteger(), primary_key=True),
        sa.Column("party", sa.String(64), primary_key=True),
        sa.Column("org_type", sa.String(32), nullable=False),
        *_times(),
        *_measures(),
    )
    op.create_table(
        "usage_days",
        sa.Column("premises_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *_times(),
        *_measures(),
    )
    op.create_table(
        "usage_hours",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("hour", sa.SmallInteger(), primary_key=True),
        *_times(),
        *_measures(),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('tilavaraus_events', '');
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER events_notify AFTER INSERT ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION events_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
        op.execute("DROP FUNCTION IF EXISTS events_notify()")
    for name in (
        "usage_hours",
        "usage_days",
        "usage_cells",
        "usage_popups",
        "usage_bookings",
        "usage_organisations",
        "usage_closures",
        "usage_schedules",
        "usage_premises",
        "registry_premises",
    ):
        op.drop_table(name)
