"""PostgreSQL: many writers commit while the runner catches up, and no event is skipped.

Sequence values commit out of order on PostgreSQL; the append lock of `events.store.append`
makes commit order equal position order (see projections/runner.py). The first test runs
writers that hold their transactions open for random times after appending, in parallel
with a runner feeding the usage projection in tiny batches, and checks that every event
arrived. The second shows what the lock prevents: two inserts that bypass it commit out of
order and a reader that trusts `position > checkpoint` loses one — so the first test would
notice a skip.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from booking.clock import system_clock
from events.catalog import OrganisationRegistered
from events.serialization import serializer
from events.sql import make_engine, read_transaction, write_transaction
from events.store import append, events_table, head_position
from projections import runner

pytestmark = pytest.mark.postgres

WRITERS = 8
EACH = 25


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def _organisation() -> OrganisationRegistered:
    return OrganisationRegistered(str(uuid.uuid4()), "Yhdistys ry", "association", None)


def _counted(engine: Engine) -> set[str]:
    usage = runner.by_name(["usage"])[0]
    table = usage.tables[3]  # usage_organisations
    with read_transaction(engine) as conn:
        return set(conn.execute(select(table.c.organisation_id)).scalars())


# Usage alone, and usage fed together with the registry (one read of both projections'
# types, the registry's checkpoint moving over events it never takes).
@pytest.mark.parametrize("fed", [["usage"], ["registry", "usage"]])
def test_writers_committing_out_of_order_skip_nothing(pg: Engine, fed: list[str]) -> None:
    appended: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(EACH):
                event = _organisation()
                with write_transaction(pg) as conn:
                    append(
                        conn,
                        f"organisation-{event.organisation_id}",
                        [event],
                        0,
                        now=datetime.now(UTC),
                    )
                    # Commit late and at random: later starters often commit first.
                    time.sleep(rng.uniform(0, 0.004))
                with lock:
                    appended.append(event.organisation_id)
        except BaseException as error:  # report in the main thread
            errors.append(error)

    def feed() -> None:
        projections = runner.by_name(fed)
        while writing.is_set():
            runner.catch_up(pg, projections, batch_size=3, clock=system_clock)

    feeder = threading.Thread(target=feed)
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    feeder.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    feeder.join()
    assert not errors
    runner.catch_up(pg, runner.by_name(fed), clock=system_clock)
    assert len(appended) == WRITERS * EACH
    assert _counted(pg) == set(appended)
    with read_transaction(pg) as conn:
        for name in fed:
            assert runner.read_checkpoint(conn, name) == head_position(conn)


def _raw_insert(conn: object, event: OrganisationRegistered) -> None:
    name, version, data = serializer.dump(event)
    conn.execute(  # type: ignore[attr-defined]
        insert(events_table).values(
            stream=f"organisation-{event.organisation_id}",
            version=1,
            type=name,
            schema_version=version,
            data=data,
            metadata={},
            recorded_at=datetime.now(UTC),
        )
    )


def test_without_the_append_lock_a_late_commit_is_skipped(pg: Engine) -> None:
    early, late = _organisation(), _organisation()
    with pg.connect() as first:
        slow = first.begin()
        _raw_insert(first, early)  # draws the lower position, commits last
        with write_transaction(pg) as second:
            _raw_insert(second, late)
        runner.catch_up(pg, runner.by_name(["usage"]), clock=system_clock)
        slow.commit()
    runner.catch_up(pg, runner.by_name(["usage"]), clock=system_clock)
    with read_transaction(pg) as conn:
        assert conn.execute(select(func.count()).select_from(events_table)).scalar_one() == 2
    assert _counted(pg) == {late.organisation_id}  # the early one was passed over for good
