"""The projection runner on both databases: catch-up with checkpoints, swap-in rebuilds,
waking on new events, X-Log-Position and min_position, status, /healthz and the CLI."""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, select

from booking.cli import main
from booking.clock import system_clock
from events.sql import read_transaction
from events.store import head_position
from projections import rebuilding, runner
from projections.base import checkpoints
from tests.conftest import Api, future_weekday, local


def head(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return head_position(conn)


def checkpoint(engine: Engine, name: str) -> int:
    with read_transaction(engine) as conn:
        return runner.read_checkpoint(conn, name)


def contents(engine: Engine, name: str) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return rebuilding.contents(conn, runner.by_name([name])[0])


def some_history(api: Api, bookings: int = 4) -> None:
    api.premises("lib", district="keskusta")
    api.premises("hall", district="urpola", free_of_charge=False, hourly_price_cents=2000)
    day = future_weekday(1)
    for n in range(bookings):
        placed = api.book("lib" if n % 2 else "hall", local(day, 8 + 2 * n), local(day, 9 + 2 * n))
        assert placed.status_code == 201, placed.get_json()


def test_catch_up_moves_checkpoints_to_the_head_and_status_shows_no_lag(api: Api) -> None:
    some_history(api)
    target = head(api.engine)
    with read_transaction(api.engine) as conn:
        before = {s.name: s for s in runner.status(conn)}
    assert before["usage"].lag == target and before["registry"].position == 0
    assert before["availability"].lag == 0 and before["availability"].inline
    applied = runner.catch_up(api.engine, batch_size=3, clock=system_clock)
    assert applied > 0
    assert checkpoint(api.engine, "usage") == target == checkpoint(api.engine, "registry")
    # Nothing left: nothing applied twice.
    assert runner.catch_up(api.engine, clock=system_clock) == 0
    health = api.get("/healthz").get_json()
    assert health["log_position"] == target
    assert health["projections"]["usage"] == {"position": target, "lag": 0}


def test_batches_of_any_size_give_the_same_tables(api: Api) -> None:
    some_history(api, bookings=6)
    runner.catch_up(api.engine, batch_size=1, clock=system_clock)
    one_by_one = contents(api.engine, "usage"), contents(api.engine, "registry")
    rebuilding.rebuild(
        api.engine, runner.by_name(["usage", "registry"]), batch_size=1000, clock=system_clock
    )
    assert (contents(api.engine, "usage"), contents(api.engine, "registry")) == one_by_one


def test_rebuild_swaps_fresh_tables_in_while_the_live_ones_serve(api: Api) -> None:
    some_history(api)
    runner.catch_up(api.engine, clock=system_clock)
    live = contents(api.engine, "usage")
    api.token("analyst")
    seen_during: list[dict[str, Any]] = []
    late_booking: list[int] = []

    def meanwhile(count: int) -> None:
        # Between two batches of the rebuild: the live tables still answer as before, and
        # a write lands that the rebuilt tables must include.
        seen_during.append(contents(api.engine, "usage"))
        if not late_booking:
            day = future_weekday(3)
            placed = api.book("lib", local(day, 10), local(day, 11))
            assert placed.status_code == 201
            late_booking.append(head(api.engine))

    rebuilding.rebuild_swapping(
        api.engine, runner.by_name(["usage"])[0], 2, meanwhile, clock=system_clock
    )
    assert seen_during and seen_during[0] == live
    assert checkpoint(api.engine, "usage") >= late_booking[0]
    tables = set(inspect(api.engine).get_table_names())
    assert not {t for t in tables if t.endswith(rebuilding.REBUILD_SUFFIX)}
    with read_transaction(api.engine) as conn:
        names = set(conn.execute(select(checkpoints.c.name)).scalars())
    assert "usage__rebuild" not in names
    rebuilt = contents(api.engine, "usage")
    # Again: names are free.
    rebuilding.rebuild_swapping(api.engine, runner.by_name(["usage"])[0], clock=system_clock)
    assert contents(api.engine, "usage") == rebuilt
    column = list(runner.by_name(["usage"])[0].tables[7].c.keys()).index("bookings")
    assert sum(row[column] for row in rebuilt["usage_days"]) == 5  # with the one made meanwhile


def test_the_runner_wakes_on_new_events(api: Api) -> None:
    api.premises("lib")
    background = runner.BackgroundRunner(api.engine, system_clock, poll_seconds=0.2).start()
    try:
        deadline = time.monotonic() + 10
        while checkpoint(api.engine, "registry") < head(api.engine):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        api.premises("hall", free_of_charge=True)
        wanted = head(api.engine)
        began = time.monotonic()
        assert runner.wait_for(api.engine, "registry", wanted, timeout=5) >= wanted
        assert time.monotonic() - began < 2
        # A read that asks for its own write sees it, and says how far it reflects.
        listed = api.get(f"/api/v1/registry/free-premises?min_position={wanted}")
        assert listed.status_code == 200
        assert int(listed.headers["X-Log-Position"]) >= wanted
        assert [p["id"] for p in listed.get_json()["premises"]] == ["hall", "lib"]
    finally:
        background.close()
    assert not background.thread.is_alive()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_burst_of_commits_costs_few_catch_ups(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL every commit notifies (SQLite polls); the runner lets a burst settle and
    catches up once for many of them instead of once each."""
    passes = []
    real_catch_up = runner.catch_up

    def counted(*args: Any, **kwargs: Any) -> int:
        passes.append(time.monotonic())
        return real_catch_up(*args, **kwargs)

    monkeypatch.setattr(runner, "catch_up", counted)
    background = runner.BackgroundRunner(
        api.engine, system_clock, poll_seconds=3, settle_seconds=0.5
    )
    background.start()
    try:
        api.premises("lib")
        assert runner.wait_for(api.engine, "registry", head(api.engine), timeout=5)
        before = len(passes)
        day = future_weekday(2)
        for hour in range(8, 20):
            assert api.book("lib", local(day, hour), local(day, hour + 1)).status_code == 201
        wanted = head(api.engine)
        assert runner.wait_for(api.engine, "usage", wanted, timeout=5) >= wanted
        # Twelve commits, one wake-up each without settling; a few with it.
        assert len(passes) - before <= 6, len(passes) - before
    finally:
        background.close()
    assert not background.thread.is_alive()


def test_min_position_must_be_a_position(api: Api) -> None:
    response = api.get("/api/v1/registry/free-premises?min_position=soon")
    assert response.status_code == 422
    assert "min_position" in response.get_json()["errors"]


def test_cli_status_and_rebuild(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    some_history(api)
    monkeypatch.setenv("BOOKING_DATABASE_URL", api.engine.url.render_as_string(False))
    monkeypatch.setenv("BOOKING_SECRET_KEY", "tests")
    cli = CliRunner()
    status = cli.invoke(main, ["projections", "status"])
    assert status.exit_code == 0, status.output
    assert f"lag {head(api.engine)}" in next(
        line for line in status.output.splitlines() if line.startswith("usage")
    )
    rebuilt = cli.invoke(main, ["projections", "rebuild", "usage", "registry"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert checkpoint(api.engine, "usage") == head(api.engine)
    unknown = cli.invoke(main, ["projections", "rebuild", "nonsense"])
    assert unknown.exit_code != 0 and "nonsense" in unknown.output
