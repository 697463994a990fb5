"""The runner's rounds on both databases: all the asynchronous projections in one
transaction, none after a short batch, none when nothing is behind, projections at different
checkpoints fed from one read, a failing projection holding back only itself, and rounds
paced under steady traffic."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from booking.clock import system_clock
from events.sql import read_transaction
from events.store import head_position
from projections import rebuilding, runner
from projections.base import checkpoints
from projections.registry import Registry
from tests.conftest import Api, future_weekday, local


def head(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return head_position(conn)


def positions(engine: Engine) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(checkpoints.c.name, checkpoints.c.position, checkpoints.c.updated_at)
        )
        return {name: (position, at) for name, position, at in rows}


def contents(engine: Engine, name: str) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return rebuilding.contents(conn, runner.by_name([name])[0])


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL sent through SQLAlchemy meanwhile, and a "BEGIN" for each transaction."""
    sent: list[str] = []

    def began(_conn: Any) -> None:
        sent.append("BEGIN")

    def executed(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        sent.append(sql)

    event.listen(engine, "begin", began)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine, "begin", began)


def bookings(api: Api, premises_id: str, hours: range, weeks_ahead: int = 2) -> None:
    day = future_weekday(2, weeks_ahead)
    for hour in hours:
        placed = api.book(premises_id, local(day, hour), local(day, hour + 1))
        assert placed.status_code == 201, placed.get_json()


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE")]


def test_a_round_is_one_transaction_and_a_short_batch_ends_it(api: Api) -> None:
    api.premises("lib")
    runner.catch_up(api.engine, clock=system_clock)
    bookings(api, "lib", range(8, 12))
    registry_before = contents(api.engine, "registry")
    with statements(api.engine) as sent:
        applied = runner.catch_up(api.engine, clock=system_clock)
    assert applied == 4  # the bookings, to usage; none of them is the registry's
    # One transaction for both projections, and no second one to find nothing.
    assert sent.count("BEGIN") == 1, sent
    # The registry, which had nothing new, wrote no row; both checkpoints moved in one UPDATE.
    updates = [s for s in writes(sent) if "projection_checkpoints" in s]
    assert len(updates) == 1, updates
    assert not [s for s in writes(sent) if "registry_premises" in s]
    assert contents(api.engine, "registry") == registry_before
    found = positions(api.engine)
    assert found["registry"][0] == found["usage"][0] == head(api.engine)


def test_nothing_behind_nothing_written(api: Api) -> None:
    api.premises("lib")
    bookings(api, "lib", range(8, 10))
    background = runner.Runner(api.engine, system_clock)
    assert background.behind()  # no checkpoint yet
    runner.catch_up(api.engine, clock=system_clock)
    before = positions(api.engine)
    with statements(api.engine) as sent:
        assert not background.behind()
    # A poll that finds nothing behind is one read: no write, no lock.
    assert sent and not writes(sent) and not [s for s in sent if "FOR UPDATE" in s.upper()]
    assert runner.catch_up(api.engine, clock=system_clock) == 0
    assert positions(api.engine) == before  # not even the checkpoints' times
    bookings(api, "lib", range(10, 11))
    assert background.behind()


def test_projections_at_different_checkpoints_from_one_read(api: Api) -> None:
    """Usage ahead, the registry behind (a rebuilt or newly added projection): one read from
    the lower checkpoint feeds each its own events, in batches of any size, and both end
    as a rebuild from the log makes them."""
    api.premises("lib")
    bookings(api, "lib", range(8, 11))
    runner.catch_up(api.engine, runner.by_name(["usage"]), clock=system_clock)
    api.premises("hall")
    bookings(api, "hall", range(8, 12), weeks_ahead=3)
    api.premises("gym", free_of_charge=False, hourly_price_cents=1000)
    found = positions(api.engine)
    assert "registry" not in found and found["usage"][0] < head(api.engine)
    runner.catch_up(api.engine, batch_size=2, clock=system_clock)
    live = contents(api.engine, "usage"), contents(api.engine, "registry")
    found = positions(api.engine)
    assert found["registry"][0] == found["usage"][0] == head(api.engine)
    rebuilding.rebuild(api.engine, runner.by_name(["usage", "registry"]), clock=system_clock)
    assert (contents(api.engine, "usage"), contents(api.engine, "registry")) == live


def test_a_failing_projection_holds_back_only_itself(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.premises("lib")
    bookings(api, "lib", range(8, 10))

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug in the registry")

    monkeypatch.setattr(Registry, "apply_batch", broken)
    background = runner.BackgroundRunner(api.engine, system_clock, poll_seconds=0.2).start()
    try:
        wanted = head(api.engine)
        assert runner.wait_for(api.engine, "usage", wanted, timeout=10) >= wanted
        assert runner.position_of(api.engine, "registry") < wanted
    finally:
        background.close()
    assert not background.thread.is_alive()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_rounds_start_at_least_round_seconds_apart(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steady traffic (commits closer together than the settle time's end) gets a round
    every `round_seconds`, not one per settle; the last commit is still reflected."""
    rounds: list[float] = []
    real_catch_up = runner.catch_up

    def counted(*args: Any, **kwargs: Any) -> int:
        rounds.append(time.monotonic())
        return real_catch_up(*args, **kwargs)

    monkeypatch.setattr(runner, "catch_up", counted)
    api.premises("lib")
    background = runner.BackgroundRunner(
        api.engine, system_clock, poll_seconds=5, settle_seconds=0.01, round_seconds=0.5
    ).start()
    try:
        began = time.monotonic()
        bookings(api, "lib", range(8, 20))
        took = time.monotonic() - began
        wanted = head(api.engine)
        assert runner.wait_for(api.engine, "usage", wanted, timeout=5) >= wanted
    finally:
        background.close()
    # The first round at start, then at most one a round_seconds (and one for the tail).
    assert len(rounds) <= 3 + took / 0.5, (len(rounds), took)
    # Not a speed: the runner waits this long on purpose, on any machine.
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert all(gap >= 0.45 for gap in gaps), gaps
