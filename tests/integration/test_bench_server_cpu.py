"""bench.common.ServerCPU: the CPU of a database's PostgreSQL backends over a stretch of work,
read from /proc on this machine (bench.booking_commands' "server cpu ms/op")."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bench.common import ServerCPU
from events.sql import make_engine

WORK = text("SELECT count(*) FROM generate_series(1, 3000000)")


@pytest.mark.postgres
def test_server_cpu_counts_the_work_of_backends_old_and_new(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        server = ServerCPU(engine)
        began = server.begin()
        if began is None:
            pytest.skip("the server's backends are not on this machine")
        idle = server.since(began)
        began = server.begin()
        assert began is not None
        with engine.connect() as conn:  # a backend that was there before
            conn.execute(WORK)
        with engine.connect() as one, engine.connect() as other:  # and one that was not
            one.execute(text("SELECT 1"))
            other.execute(WORK)
        busy = server.since(began)
        # Counting 3,000,000 rows twice takes the server well over 50 ms; doing nothing
        # (two queries to find the backends) a few.
        assert busy > 0.05
        assert idle < busy / 5
    finally:
        engine.dispose()
