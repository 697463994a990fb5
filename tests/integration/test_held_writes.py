"""Held writes (events.pipeline, issue 18): a booking's reads in one round trip and its writes
with the COMMIT in another write the same rows, in every table, as the same commands run
statement by statement; and on PostgreSQL a booking takes two round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, event, select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor, RegisterPremises
from booking.domain.errors import DomainError
from booking.http import outcome_of_error
from booking.privacy import Vault
from booking.service import (
    IdempotencyKey,
    Outcome,
    PremisesRepository,
    _store_outcome,
    _stored_outcome,
    execute,
)
from booking.usecases.bookings import BookingInput, cancel_booking, place_booking
from booking.usecases.unit import Unit, record
from events import pipeline
from events.sql import make_engine, write_transaction
from events.store import Metadata
from projections.feed_entries import calendars_table as feed_calendars
from tests.conftest import fresh_database

NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
STAFF = Actor("staff-1", "staff", "org-1")
START = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _profile(name: str, **rules: Any) -> dict[str, Any]:
    every_day = {d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return {
        "name": {"fi": name, "en": name},
        "description": {"fi": "Tila", "en": "A room"},
        "address": "Raatihuoneenkatu 6, 50100 Mikkeli",
        "district": "keskusta",
        "capacity": 20,
        "free_of_charge": True,
        "hourly_price_cents": None,
        "free_use_conditions": {},
        "accessibility": [],
        "equipment": [],
        "timezone": "Europe/Helsinki",
        "opening_hours": every_day,
        "rules": {"min_notice_minutes": 0, "max_advance_days": 3650, **rules},
    }


Handler = Callable[[Unit], Any]


class Runner:
    """Runs handlers on one database, held (through `execute`, as the API does) or not
    (the same handler in a plain write transaction: every statement on its own)."""

    def __init__(self, engine: Engine, held: bool) -> None:
        self.engine, self.held = engine, held
        self.repository = PremisesRepository()
        self.vault = Vault("held-writes-test", clock=lambda: NOW)

    def unit(self, conn: Connection, n: int) -> Unit:
        meta = Metadata(STAFF.user_id, correlation_id=f"c{n}")
        return Unit(conn, self.repository, self.vault, meta, lambda: NOW)

    def run(self, n: int, handler: Handler, key: str | None = None) -> Outcome:
        def handle(conn: Connection) -> Outcome:
            handler(self.unit(conn, n))
            return Outcome(201, {"n": n})

        if self.held:
            idem = (
                IdempotencyKey.of(STAFF.user_id, key, "POST", "/x", {"k": key}, NOW)
                if key
                else None
            )
            return execute(self.engine, handle, idem, outcome_of_error if key else None)
        with write_transaction(self.engine) as conn:
            if key is None:
                return handle(conn)
            idem = IdempotencyKey.of(STAFF.user_id, key, "POST", "/x", {"k": key}, NOW)
            stored = _stored_outcome(conn, idem)
            if stored is not None:
                return stored
            savepoint = conn.begin_nested()
            try:
                outcome = handle(conn)
            except DomainError as error:
                savepoint.rollback()
                outcome = outcome_of_error(error)
            else:
                savepoint.commit()
            _store_outcome(conn, idem, outcome)
            return outcome


def _book(premises_id: str, hour: int, booking_id: str) -> Handler:
    start = START + timedelta(hours=hour)
    given = BookingInput(premises_id, start, start + timedelta(hours=1), "Kerhoilta", 5)
    return lambda unit: place_booking(unit, STAFF, given, booking_id, NOW)


def _register(premises_id: str, **rules: Any) -> Handler:
    return lambda unit: record(
        unit, premises_id, RegisterPremises(STAFF, premises_id, _profile(premises_id, **rules))
    )


def _history(runner: Runner) -> list[int]:
    """Registrations, bookings (buffered and not, keyed, refused, replayed), a cancellation."""
    steps: list[tuple[Handler, str | None]] = [
        (_register("hall", buffer_minutes=30), None),
        (_register("room"), None),
        (_book("hall", 0, "b-1"), None),
        (_book("hall", 3, "b-2"), None),
        (_book("room", 0, "b-3"), "k-1"),
        (_book("room", 0, "b-4"), "k-2"),  # refused: the room is taken
        (_book("room", 0, "b-3"), "k-1"),  # the first outcome again
        (_book("hall", 1, "b-5"), None),  # 09:00, after b-1's 30-minute buffer? refused
        (lambda unit: cancel_booking(unit, STAFF, "b-2", "", NOW), None),
        (_book("hall", 5, "b-6"), "k-3"),
    ]
    statuses = []
    for n, (handler, key) in enumerate(steps):
        try:
            statuses.append(runner.run(n, handler, key).status)
        except DomainError:
            statuses.append(422)
    return statuses


def _tables(engine: Engine) -> dict[str, list[str]]:
    found = MetaData()
    found.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for name, table in found.tables.items()
            if name != "alembic_version"
        }


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_held_writes_make_the_same_rows_in_every_table(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with (
        fresh_database(kind, request, tmp_path / "old.sqlite") as old_url,
        fresh_database(kind, request, tmp_path / "new.sqlite") as new_url,
    ):
        old, new = make_engine(old_url), make_engine(new_url)
        try:
            assert _history(Runner(new, held=True)) == _history(Runner(old, held=False))
            before, after = _tables(old), _tables(new)
            assert before["availability_busy"] and before["feed_entries"] and before["outbox"]
            assert before["idempotency_keys"]
            for name in before:
                assert after[name] == before[name], name
        finally:
            old.dispose()
            new.dispose()


def test_a_booking_is_two_round_trips_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        runner = Runner(engine, held=True)
        runner.run(0, _register("hall", buffer_minutes=30))
        runner.run(1, _book("hall", 0, "b-1"))  # loads the premises' state
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        pipelines: list[int] = []
        driver_pipeline = type(engine.raw_connection().driver_connection).pipeline

        def counted(self: Any) -> Any:
            pipelines.append(1)
            return driver_pipeline(self)

        type(engine.raw_connection().driver_connection).pipeline = counted  # type: ignore[method-assign]
        try:
            runner.run(2, _book("hall", 3, "b-2"))
            runner.run(3, _book("hall", 6, "b-3"), key="k-1")
        finally:
            type(engine.raw_connection().driver_connection).pipeline = driver_pipeline  # type: ignore[method-assign]
        # Nothing went through SQLAlchemy one by one: two pipelines per booking, keyed or not.
        assert sent == []
        assert len(pipelines) == 4
    finally:
        engine.dispose()


def test_a_booking_on_sqlite_runs_no_statement_through_sqlalchemy(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """On SQLite a booking's statements — BEGIN IMMEDIATE, its reads (what other premises
    hold there among them), its writes — run on the driver, each compiled once: SQLAlchemy's
    work per statement weighed as much as SQLite's own (issue 18)."""
    with fresh_database("sqlite", request, tmp_path / "driver.sqlite") as url:
        engine = make_engine(url)
        _run_on_the_driver(engine)


def _run_on_the_driver(engine: Engine) -> None:
    try:
        runner = Runner(engine, held=True)
        runner.run(0, _register("hall", buffer_minutes=30))
        runner.run(1, _book("hall", 0, "b-1"))  # loads the premises' state
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        runner.run(2, _book("hall", 3, "b-2"))
        runner.run(3, _book("hall", 6, "b-3"), key="k-1")
        assert sent == []
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT ref_id FROM availability_busy").all()
        assert sorted(r[0] for r in rows) == ["b-1", "b-2", "b-3"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_booking_and_a_cancellation_move_both_feed_calendars_in_one_statement(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The premises' and the organisation's feed calendars move to the event's position in
    one upsert (a statement each before), held or not."""
    with fresh_database(kind, request, tmp_path / "touch.sqlite") as url:
        engine = make_engine(url)
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        was = pipeline.observer
        pipeline.observer = lambda sql, _params: sent.append(sql)
        try:
            for held in (True, False):
                runner = Runner(engine, held=held)
                hour = 0 if held else 4
                runner.run(0, _register(f"hall-{held}"))
                for n, handler in enumerate(
                    [
                        _book(f"hall-{held}", hour, f"b-{held}"),
                        lambda unit, held=held: cancel_booking(unit, STAFF, f"b-{held}", "", NOW),
                    ]
                ):
                    sent.clear()
                    runner.run(n + 1, handler)
                    touches = [s for s in sent if "INTO feed_calendars" in s.replace('"', "")]
                    assert len(touches) == 1, (held, n, touches)
                    with engine.connect() as conn:
                        head = conn.exec_driver_sql("SELECT max(position) FROM events").scalar()
                        calendars = conn.execute(select(feed_calendars)).all()
                        moved = [(c.scope, c.key) for c in calendars if c.position == head]
                    assert sorted(moved) == [
                        ("organisation", "org-1"),
                        ("premises", f"hall-{held}"),
                    ]
        finally:
            pipeline.observer = was
            engine.dispose()
