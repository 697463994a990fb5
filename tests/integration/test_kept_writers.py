"""SQLite's held write transactions reuse a connection kept from the last one
(`events.sql._KeptWriters`): kept only between transactions, at most a few, never across a
fork or a dispose, and what a rolled-back transaction wrote is gone for the next one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from events.sql import _KEEPER, _KeptWriters, make_engine, write_transaction


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield engine
    engine.dispose()


def _keeper(engine: Engine) -> _KeptWriters:
    found = getattr(engine, _KEEPER)
    assert isinstance(found, _KeptWriters)
    return found


def test_held_transactions_reuse_one_connection_and_others_do_not(sqlite_file: Engine) -> None:
    with write_transaction(sqlite_file, held=True) as first:
        first.execute(text("INSERT INTO t VALUES (1)"))
    with write_transaction(sqlite_file, held=True) as second:
        assert second.execute(text("SELECT count(*) FROM t")).scalar() == 1
    assert second is first
    assert not first.in_transaction()
    with write_transaction(sqlite_file) as plain:
        assert plain is not first  # only the held path keeps its connection


def test_a_rolled_back_transaction_leaves_nothing_for_the_next(sqlite_file: Engine) -> None:
    with pytest.raises(RuntimeError), write_transaction(sqlite_file, held=True) as first:
        first.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("refused")
    with write_transaction(sqlite_file, held=True) as second:
        assert second is first
        assert second.execute(text("SELECT count(*) FROM t")).scalar() == 0


def test_only_idle_connections_are_kept_and_at_most_keep(sqlite_file: Engine) -> None:
    keeper = _keeper(sqlite_file)
    in_transaction = sqlite_file.connect()
    in_transaction.begin()
    keeper.give_back(in_transaction, committed=False)
    assert in_transaction.closed
    connections = [sqlite_file.connect() for _ in range(keeper.KEEP + 1)]
    for conn in connections:
        keeper.give_back(conn, committed=True)
    assert [c.closed for c in connections] == [False] * keeper.KEEP + [True]


def test_a_dispose_closes_them_and_a_forked_child_starts_with_none(sqlite_file: Engine) -> None:
    with write_transaction(sqlite_file, held=True) as first:
        pass
    sqlite_file.dispose()
    assert first.closed
    with write_transaction(sqlite_file, held=True) as second:
        assert second is not first
    keeper = _keeper(sqlite_file)
    keeper._pid = -1  # as if this were a forked child of the process that kept it
    assert keeper.take() is None
    with write_transaction(sqlite_file, held=True) as third:
        assert third is not second
