"""A cancellation with held writes (issue 18): its reads — the premises' lock, the stream's
tail, the booking's row, the mail's names — in one round trip with the BEGIN, its writes
with the COMMIT in another, and its answer built from the row read and the event. The same
rows in every table and the same answers as the same commands run statement by statement
(the answer read back from the bookings projection); on PostgreSQL two round trips."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg._pipeline_base import BasePipeline
from sqlalchemy import Engine, event

from booking.domain.commands import Actor
from booking.domain.errors import DomainError
from booking.usecases.bookings import (
    BookingInput,
    Changed,
    cancel_booking,
    cancel_series,
    place_booking,
    place_series,
)
from booking.usecases.unit import Unit
from events.sql import make_engine
from tests.conftest import fresh_database
from tests.integration.test_held_writes import NOW, STAFF, START, Runner, _register, _tables

Handler = Callable[[Unit], Any]
SERIES = "5e1e5000-0000-4000-8000-000000000001"


def _book(premises_id: str, hour: int, booking_id: str, notes: str = "", days: int = 0) -> Handler:
    start = START + timedelta(days=days, hours=hour)
    given = BookingInput(premises_id, start, start + timedelta(hours=1), "Kerho", 5, notes=notes)
    return lambda unit: place_booking(unit, STAFF, given, booking_id, NOW)


def _cancel(booking_id: str, actor: Actor = STAFF, version: int | None = None) -> Handler:
    return lambda unit: cancel_booking(unit, actor, booking_id, "Ei tarvita", NOW, version)


def _answer(found: Any) -> Any:
    if isinstance(found, Changed):
        return found.booking
    return [r for r in getattr(found, "bookings", [])]


def _history(runner: Runner) -> list[Any]:
    """Cancellations of every kind beside bookings: on a premises the process knows and on
    one it has forgotten (the booking found by its row first), with notes (opened in the
    answer), late, with an Idempotency-Key (and its replay), refused (already cancelled,
    another organisation's, a stale If-Match, no such booking), a series' cancellation."""
    other = Actor("booker-9", "booker", "org-9")
    steps: list[tuple[Handler, str | None, bool]] = [
        (_register("hall", buffer_minutes=30), None, False),
        (_register("room", cancellation_deadline_minutes=60 * 24 * 30), None, False),
        (_book("hall", 0, "b-1", notes="Avain vahtimestarilta"), None, False),
        (_book("hall", 3, "b-2"), None, False),
        (_book("room", 0, "b-3"), None, False),
        (_book("room", 2, "b-4"), None, False),
        (_book("room", 4, "b-5"), None, False),
        (_cancel("b-1"), None, False),  # notes opened in the answer
        (_cancel("b-3"), "k-1", False),  # late (the room's deadline is 30 days)
        (_cancel("b-3"), "k-1", False),  # the first outcome again
        (_cancel("b-3"), "k-2", False),  # refused: already cancelled
        (_cancel("b-2", other), "k-3", False),  # refused: another organisation's
        (_cancel("b-4", version=7), "k-4", False),  # refused: If-Match names another version
        (_cancel("b-4", version=1), None, True),  # the premises forgotten: found by its row
        (_cancel("no-such"), "k-5", False),
        (_cancel("no-such"), None, True),
        (_book("hall", 1, "b-6"), "k-6", False),  # the slot b-1 freed, buffer and all
        (
            lambda unit: place_series(
                unit,
                STAFF,
                BookingInput("room", START + timedelta(hours=6), START + timedelta(hours=7), "S"),
                "FREQ=WEEKLY;COUNT=3",
                "skip",
                SERIES,
                NOW,
            ),
            None,
            False,
        ),
        (lambda unit: cancel_series(unit, STAFF, SERIES, "Kausi ohi", NOW), None, False),
        (_cancel("b-5"), None, False),
    ]
    found: list[Any] = []
    for n, (handler, key, forget) in enumerate(steps):
        if forget:
            runner.repository.forget()
        answers: list[Any] = []
        try:
            outcome = runner.run(n, lambda unit, h=handler, a=answers: a.append(h(unit)), key)
            found.append((outcome.status, outcome.body, [_answer(a) for a in answers]))
        except DomainError as error:
            found.append(type(error).__name__)
    return found


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_held_cancellations_make_the_same_rows_and_answers(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with (
        fresh_database(kind, request, tmp_path / "old.sqlite") as old_url,
        fresh_database(kind, request, tmp_path / "new.sqlite") as new_url,
    ):
        old, new = make_engine(old_url), make_engine(new_url)
        try:
            held, plain = _history(Runner(new, held=True)), _history(Runner(old, held=False))
            assert held == plain
            cancelled = [a for _, _, answers in held[7:9] for a in answers]
            assert [a.status for a in cancelled] == ["cancelled", "cancelled"]
            assert cancelled[0].notes == "Avain vahtimestarilta" and cancelled[1].late
            # Notes are sealed with a random nonce under a random key: compared opened (above).
            before, after = _sealed_masked(_tables(old)), _sealed_masked(_tables(new))
            assert any("'cancelled'" in row for row in before["feed_entries"])
            assert len(before["outbox"]) >= 8
            for name in before:
                assert after[name] == before[name], name
        finally:
            old.dispose()
            new.dispose()


_SEALED = re.compile(r"pd1\.([^.']+)\.[A-Za-z0-9_=-]+")


def _sealed_masked(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    masked = {
        name: sorted(_SEALED.sub(r"pd1.\1.*", row) for row in rows) for name, rows in tables.items()
    }
    masked["person_keys"] = [row.split(",")[0] for row in masked.get("person_keys", [])]
    return masked


def _counting(engine: Engine) -> tuple[list[str], list[int], Callable[[], None]]:
    """Statements run through SQLAlchemy, and the pipelines' Syncs on the driver: each a
    round trip (psycopg's implicit BEGIN in a pipeline and its commit() would each add one;
    none is left out: a fetch inside a pipeline waits on a flush request instead)."""
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    syncs: list[int] = []
    original = BasePipeline._enqueue_sync

    def counted(self: Any) -> Any:
        syncs.append(1)
        return original(self)

    BasePipeline._enqueue_sync = counted  # type: ignore[method-assign]

    def undo() -> None:
        BasePipeline._enqueue_sync = original  # type: ignore[method-assign]

    return sent, syncs, undo


def test_a_cancellation_and_a_booking_are_two_round_trips_on_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        runner, elsewhere = Runner(engine, held=True), Runner(engine, held=True)
        runner.run(0, _register("hall"))
        for n in range(3):
            runner.run(1 + n, _book("hall", 2 * n, f"b-{n}"))
        sent, syncs, undo = _counting(engine)
        try:
            runner.run(10, _cancel("b-0"))
            runner.run(11, _cancel("b-1"), key="k-1")
            assert (sent, len(syncs)) == ([], 4)  # two a cancellation, keyed or not
            runner.run(12, _book("hall", 9, "b-4"))
            runner.run(13, _book("hall", 11, "b-5"), key="k-2")
            assert (sent, len(syncs)) == ([], 8)  # and a booking
            elsewhere.run(4, _book("hall", 7, "b-3"))  # another process: this one's state lags
            del syncs[8:], sent[:]
            runner.run(14, _cancel("b-3"))  # the kept state does not know it: found by its row
            assert (sent, len(syncs)) == ([], 8 + 3)
        finally:
            undo()
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, status, version FROM booking_list").all()
        assert sorted(rows) == [
            ("b-0", "cancelled", 2),
            ("b-1", "cancelled", 2),
            ("b-2", "confirmed", 1),
            ("b-3", "cancelled", 2),
            ("b-4", "confirmed", 1),
            ("b-5", "confirmed", 1),
        ]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_kept_state_naming_the_wrong_premises_is_forgotten_and_the_cancellation_goes_on(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A kept state that took in a booking that never committed may name a booking id of
    another premises: the cancellation then locked the wrong premises, so it decides again
    with that state forgotten."""
    with fresh_database(kind, request, tmp_path / "wrong.sqlite") as url:
        engine = make_engine(url)
        try:
            runner = Runner(engine, held=True)
            runner.run(0, _register("hall"))
            runner.run(1, _register("room"))
            runner.run(2, _book("hall", 0, "b-1"))
            runner.run(3, _book("room", 0, "b-2"))
            states = runner.repository._states
            states["room"].bookings["b-1"] = states["hall"].bookings["b-1"]
            del states["hall"]  # so that only the room's state names b-1
            answers: list[Any] = []
            outcome = runner.run(4, lambda unit: answers.append(_cancel("b-1")(unit)))
            assert outcome.status == 201
            assert [(a.booking.id, a.booking.status) for a in answers[-1:]] == [
                ("b-1", "cancelled")
            ]
            assert "room" not in states or "b-1" not in states["room"].bookings
        finally:
            engine.dispose()


def test_a_held_transaction_leaves_its_connection_out_of_autocommit(postgres_url: str) -> None:
    """A held transaction runs in psycopg's autocommit mode behind its own BEGIN
    (`events.pipeline.read_together`); the pool hands the connection out again in
    transaction mode, after a commit, a refusal or a failed commit alike."""
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        runner = Runner(engine, held=True)

        def autocommit() -> bool:
            with engine.connect() as conn:
                return bool(conn.connection.driver_connection.autocommit)  # type: ignore[union-attr]

        runner.run(0, _register("hall"))
        runner.run(1, _book("hall", 0, "b-1"))
        runner.run(2, _cancel("b-1"))
        assert not autocommit()
        assert runner.run(3, _cancel("b-1"), key="k-1").status == 409  # refused: stored
        assert not autocommit()
        with pytest.raises(DomainError):
            runner.run(4, _cancel("b-1"))  # refused, not keyed: rolled back
        assert not autocommit()
        with engine.begin() as conn:  # a plain transaction is one transaction again
            conn.exec_driver_sql("CREATE TABLE held_probe (n INT)")
            conn.exec_driver_sql("INSERT INTO held_probe VALUES (1)")
            assert conn.connection.driver_connection.pgconn.transaction_status != 0  # type: ignore[union-attr]
    finally:
        engine.dispose()
