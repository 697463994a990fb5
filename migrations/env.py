"""Alembic environment: runs against the connection or URL that `booking db upgrade` gives."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from booking.migrate import declared_metadata
from events.sql import make_engine

target_metadata = declared_metadata()


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
