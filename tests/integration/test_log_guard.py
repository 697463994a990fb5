"""The log is the backup: `booking events export` and `booking events import` into an empty
database — of the same kind or the other one — give back everything people read:
availability, the free-premises registry, the usage statistics and the feeds, identical
to the original (compared by checksums of the responses and of the read models' tables).

That the database itself refuses UPDATE, DELETE and TRUNCATE of the events table is proved
by raw SQL in test_store.py (`test_raw_update_and_delete_are_refused` and the two after it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import Engine

from booking.app import create_app
from booking.cli import main
from booking.clock import system_clock
from events.sql import make_engine, read_transaction
from events.store import head_position
from projections import rebuilding, runner
from tests.conftest import Api, PostgresServer, future_weekday, local

FIRST = future_weekday(0)  # a Monday two weeks ahead
WINDOW = f"from={FIRST}&to={FIRST + timedelta(days=27)}"


def _cli(url: str, tmp_path: Path, *args: str) -> str:
    env = {
        "BOOKING_DATABASE_URL": url,
        "BOOKING_INSTANCE_PATH": str(tmp_path / "instance"),
        "BOOKING_SECRET_KEY": "tests",
        "BOOKING_RUN_SCHEDULER": "0",
    }
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _history(api: Api) -> None:
    """A little of everything that reaches the read models, through the API."""
    api.premises("room", district="keskusta")
    api.premises("hall", district="rantakylä", free_of_charge=False, hourly_price_cents=2500)
    api.premises("studio", rules={"requires_approval": True, "popup_allowed": True})
    api.premises("old")
    assert api.post("/api/v1/premises/old/retire", {}, role="staff").status_code == 200
    for day, premises_id, hour in [
        (0, "room", 10),
        (1, "room", 17),
        (2, "hall", 9),
        (8, "room", 12),
    ]:
        start = local(FIRST + timedelta(days=day), hour)
        placed = api.book(premises_id, start, start + timedelta(hours=2), public=day % 2 == 0)
        assert placed.status_code == 201, placed.get_json()
    start = local(FIRST + timedelta(days=3), 18)
    cancelled = api.book("room", start, start + timedelta(hours=1)).get_json()["id"]
    assert api.post(f"/api/v1/bookings/{cancelled}/cancel", {"reason": "Sairastuminen"}, "booker")
    pending = api.book("studio", start, start + timedelta(hours=1)).get_json()["id"]
    assert api.post(f"/api/v1/bookings/{pending}/approve", {}, role="staff").status_code == 200
    series = {
        "premises_id": "hall",
        "start": local(FIRST, 19).isoformat(),
        "end": local(FIRST, 21).isoformat(),
        "rrule": "FREQ=WEEKLY;COUNT=4",
        "title": "Kuoro",
        "attendees": 10,
        "on_conflict": "skip",
    }
    assert api.post("/api/v1/booking-series", series, role="booker").status_code == 201
    closure = {
        "start": local(FIRST + timedelta(days=8), 8).isoformat(),
        "end": local(FIRST + timedelta(days=8), 22).isoformat(),
        "reason": "Remontti",
        "cancel_conflicting": True,
    }
    assert api.post("/api/v1/premises/room/closures", closure, role="staff").status_code == 201
    soon = future_weekday(2, weeks_ahead=0) + timedelta(days=7)
    popup = {
        "premises_id": "studio",
        "start": local(soon, 12).isoformat(),
        "end": local(soon, 14).isoformat(),
        "title": "Kirpputori",
        "description": "",
        "expected_attendees": 10,
    }
    request_id = api.post("/api/v1/popup-requests", popup, role="resident").get_json()["id"]
    assert api.post(f"/api/v1/popup-requests/{request_id}/approve", {}, "staff").status_code == 200
    runner.catch_up(api.engine, clock=system_clock)


def _sha(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_side(app: Flask, analyst: str) -> dict[str, str]:
    """A checksum of every public read and of the statistics, as clients see them."""
    client = app.test_client()
    auth = {"Authorization": f"Bearer {analyst}"}
    found = {}
    for premises_id in ("room", "hall", "studio", "old"):
        availability = client.get(f"/api/v1/premises/{premises_id}/availability?{WINDOW}")
        found[f"availability {premises_id}"] = _sha(availability.get_json())
        feed = client.get(f"/feeds/premises/{premises_id}.ics")
        found[f"feed {premises_id}"] = _sha(feed.get_data(as_text=True))
        found[f"feed {premises_id} validators"] = f"{feed.headers.get('ETag')}"
    start, end = local(FIRST, 10).isoformat(), local(FIRST, 11).isoformat()
    search = client.get("/api/v1/availability", query_string={"start": start, "end": end})
    found["search"] = _sha(search.get_json())
    for fmt in ("json", "csv"):
        registry = client.get(f"/api/v1/registry/free-premises?format={fmt}")
        found[f"registry {fmt}"] = _sha(registry.get_data(as_text=True))
    for group_by in ("premises", "district", "weekday,hour", "organisation_type", "week"):
        stats = client.get(f"/api/v1/stats/usage?{WINDOW}&group_by={group_by}", headers=auth)
        assert stats.status_code == 200, stats.get_json()
        found[f"stats {group_by}"] = _sha(stats.get_json())
    return found


def _lines(file: Path) -> list[Any]:
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]


def _tables(engine: Engine) -> dict[str, str]:
    with read_transaction(engine) as conn:
        return {p.name: _sha(repr(rebuilding.contents(conn, p))) for p in runner.ALL}


@pytest.fixture
def restored_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """An empty database of the other kind than the original, or of the same kind."""
    kind = request.param
    original = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    target = (
        original if kind == "same" else {"sqlite": "postgresql", "postgresql": "sqlite"}[original]
    )
    if target == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    yield url
    server.drop(url)


@pytest.mark.parametrize("restored_url", ["same", "other"], indirect=True)
def test_a_restored_log_rebuilds_what_everyone_reads(
    api: Api, database_url: str, restored_url: str, tmp_path: Path
) -> None:
    _history(api)
    analyst = api.token("analyst")  # tokens are not in the log: the restored one is new
    # So that every projection reflects the same position.
    runner.catch_up(api.engine, clock=system_clock)
    original = _read_side(api.app, analyst)
    file = tmp_path / "log.jsonl"
    with read_transaction(api.engine) as conn:
        position = head_position(conn)
    assert _cli(database_url, tmp_path, "events", "export", str(file)).endswith(
        f"exported {position} events to {file}\n"
    )
    _cli(restored_url, tmp_path, "events", "import", str(file))

    engine = make_engine(restored_url)
    try:
        app = create_app(
            {
                "ENGINE": engine,
                "BOOKING_DATABASE_URL": restored_url,
                "SECRET_KEY": "tests",
                "BOOKING_INSTANCE_PATH": str(tmp_path),
                "BOOKING_RUN_SCHEDULER": False,
                "TESTING": True,
            }
        )
        # The restored log exports as the same events (PostgreSQL orders JSON keys its way).
        again = tmp_path / "again.jsonl"
        _cli(restored_url, tmp_path, "events", "export", str(again))
        assert _lines(again) == _lines(file)
        restored = Api(app, app.test_client())
        restored._tokens["analyst"] = restored.user("analyst")
        if restored_url.split(":")[0] == database_url.split(":")[0]:
            assert _tables(engine) == _tables(api.engine)
        read = _read_side(app, restored._tokens["analyst"])
        if read != original:  # a read may straddle the hour the registry counts from
            original, read = (
                _read_side(api.app, analyst),
                _read_side(app, restored.token("analyst")),
            )
        assert read == original

        # The restored log takes new events after the old ones.
        start = local(FIRST + timedelta(days=5), 10)
        placed = restored.book("room", start, start + timedelta(hours=1))
        assert placed.status_code == 201, placed.get_json()
        with read_transaction(engine) as conn:
            assert head_position(conn) > position
    finally:
        engine.dispose()
