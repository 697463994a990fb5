"""Pooled PostgreSQL connections are checked for liveness by a poll of their socket, not a
round trip (events/sql.py `_refuse_dropped`): a connection the server dropped while it sat
in the pool is replaced before use, and a live one is handed out as it is."""

from __future__ import annotations

import select
import time

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from events.sql import make_engine


def _backend(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_dropped_in_the_pool_is_replaced_before_use(postgres_url: str) -> None:
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        assert not engine.pool._pre_ping  # type: ignore[attr-defined]
        first = _backend(engine)
        assert _backend(engine) == first  # a live connection is kept
        with engine.connect() as conn:
            socket = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        # The server's FATAL message and close reach the idle socket soon after.
        poller = select.poll()
        poller.register(socket, select.POLLIN)
        deadline = time.monotonic() + 10
        while not poller.poll(50) and time.monotonic() < deadline:
            pass

        replaced = _backend(engine)

        assert replaced != first
    finally:
        engine.dispose()
