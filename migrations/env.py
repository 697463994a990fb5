"""Alembic environment: runs against the connection or URL that `booking db upgrade` gives."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import booking.outbox  # noqa: F401  (registers the outbox table)
from booking.privacy import metadata as privacy_metadata
from booking.tables import metadata as booking_metadata
from events.sql import make_engine
from events.store import metadata as events_metadata
from projections.base import metadata as projections_metadata
from projections.runner import ALL as _all_projections  # noqa: F401  (registers their tables)

target_metadata = [events_metadata, booking_metadata, privacy_metadata, projections_metadata]


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
