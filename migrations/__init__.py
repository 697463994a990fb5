"""Alembic migrations of the whole schema: the log, the service's tables, the projections."""
