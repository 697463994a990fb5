"""The answer to a cancel, an approval or a rejection is made from the booking's row read
before the command plus the command's events (booking/api/bookings.py `changed_row`), on
SQLite and PostgreSQL: it is exactly what reading the booking afterwards gives, also when
another command of the premises came between the read and the decision."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from booking.api import bookings
from booking.domain.commands import Actor, DecideBooking
from booking.service import run_premises_command
from events.store import Metadata
from tests.conftest import Api, future_weekday, local


def read_back(api: Api, booking_id: str) -> tuple[Any, str]:
    found = api.get(f"/api/v1/bookings/{booking_id}", role="staff")
    assert found.status_code == 200
    return found.get_json(), found.headers["ETag"]


def test_a_cancel_answers_what_reading_the_booking_gives(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.premises("room")
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 11), notes="Ovikoodi 1234").get_json()
    made: list[Any] = []
    changed_row = bookings.changed_row
    monkeypatch.setattr(
        bookings, "changed_row", lambda *a: made.append(changed_row(*a)) or made[-1]
    )

    cancelled = api.post(f"/api/v1/bookings/{placed['id']}/cancel", {"reason": "Ei"}, role="booker")

    assert cancelled.status_code == 200, cancelled.get_json()
    assert len(made) == 1 and made[0] is not None  # made from the row read before
    body = cancelled.get_json()
    assert (body["status"], body["version"], body["notes"]) == ("cancelled", 2, "Ovikoodi 1234")
    assert (body, cancelled.headers["ETag"]) == read_back(api, placed["id"])


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_answers_what_reading_the_booking_gives(api: Api, decision: str) -> None:
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(3)
    held = api.book("hall", local(day, 10), local(day, 11)).get_json()
    reason = {"reason": "Ei käy"} if decision == "reject" else None

    decided = api.post(f"/api/v1/bookings/{held['id']}/{decision}", reason, role="staff")

    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["version"] == 2
    assert (decided.get_json(), decided.headers["ETag"]) == read_back(api, held["id"])


def test_a_command_of_the_premises_between_read_and_decision_is_read_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another booking of the premises approved after the row was read (as a writer that
    took the premises' lock first would): the answer is read back, not made up."""
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(4)
    first = api.book("hall", local(day, 10), local(day, 11)).get_json()
    other = api.book("hall", local(day, 12), local(day, 13)).get_json()
    made_up: list[Any] = []

    def another_first(
        conn: Any, repository: Any, premises_id: str, *rest: Any, now: datetime
    ) -> Any:
        staff = Actor("someone-of-staff", "staff")
        approve = DecideBooking(staff, other["id"], True, "", now)
        run_premises_command(conn, repository, premises_id, approve, Metadata(actor=None), now=now)
        return run_premises_command(conn, repository, premises_id, *rest, now=now)

    def recorded_answer(before: Any, recorded: Any) -> Any:
        made_up.append(found := changed_row(before, recorded))
        return found

    changed_row = bookings.changed_row
    monkeypatch.setattr(bookings, "run_premises_command", another_first)
    monkeypatch.setattr(bookings, "changed_row", recorded_answer)
    cancelled = api.post(f"/api/v1/bookings/{first['id']}/cancel", {"reason": "Ei"}, role="booker")
    monkeypatch.undo()

    assert cancelled.status_code == 200, cancelled.get_json()
    assert made_up == [None]  # the stream moved on since the read: not made from it
    assert (cancelled.get_json(), cancelled.headers["ETag"]) == read_back(api, first["id"])
    assert read_back(api, other["id"])[0]["status"] == "confirmed"


def test_a_row_read_at_another_stream_version_is_not_changed() -> None:
    before = SimpleNamespace(stream_version=3, id="b", version=1)
    assert bookings.changed_row(before, [SimpleNamespace(version=5)]) is None  # type: ignore[list-item]
    assert bookings.changed_row(before, []) is None
