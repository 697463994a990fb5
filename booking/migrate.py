"""Applying the Alembic migrations from code (`booking db upgrade`, `booking serve`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def declared_metadata() -> list[MetaData]:
    """Every table the code declares, as the migrations must build them."""
    import booking.limits
    import booking.memberships
    import booking.oidc_people
    import booking.outbox
    import booking.sessions  # noqa: F401  (registers the sessions' tables)
    from booking.privacy import metadata as privacy_metadata
    from booking.tables import metadata as booking_metadata
    from events.store import metadata as events_metadata
    from projections.base import metadata as projections_metadata
    from projections.runner import ALL  # noqa: F401  (registers the projections' tables)

    return [events_metadata, booking_metadata, privacy_metadata, projections_metadata]


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(False))
    return config


def upgrade(engine: Engine) -> None:
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
