"""The answer to a cancel, an approval or a rejection is the booking as the use case
(booking/usecases/bookings.py) returns it, on SQLite and PostgreSQL: exactly what reading
the booking afterwards gives, also when another command of the premises came between the
handler's load and the decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from booking.domain.commands import Actor, DecideBooking
from booking.service import run_premises_command
from booking.usecases import unit
from events.store import Metadata
from tests.conftest import Api, future_weekday, local


def read_back(api: Api, booking_id: str) -> tuple[Any, str]:
    found = api.get(f"/api/v1/bookings/{booking_id}", role="staff")
    assert found.status_code == 200
    return found.get_json(), found.headers["ETag"]


def test_a_cancel_answers_what_reading_the_booking_gives(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 11), notes="Ovikoodi 1234").get_json()

    cancelled = api.post(f"/api/v1/bookings/{placed['id']}/cancel", {"reason": "Ei"}, role="booker")

    assert cancelled.status_code == 200, cancelled.get_json()
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
    """Another booking of the premises approved after the handler loaded the booking (as a
    writer that took the premises' lock first would): the answer is still what it is."""
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(4)
    first = api.book("hall", local(day, 10), local(day, 11)).get_json()
    other = api.book("hall", local(day, 12), local(day, 13)).get_json()

    def another_first(
        conn: Any, repository: Any, premises_id: str, *rest: Any, **named: Any
    ) -> Any:
        staff = Actor("someone-of-staff", "staff")
        approve = DecideBooking(staff, other["id"], True, "", datetime.now(UTC))
        run_premises_command(conn, repository, premises_id, approve, Metadata(actor=None), **named)
        return run_premises_command(conn, repository, premises_id, *rest, **named)

    monkeypatch.setattr(unit, "run_premises_command", another_first)
    cancelled = api.post(f"/api/v1/bookings/{first['id']}/cancel", {"reason": "Ei"}, role="booker")
    monkeypatch.undo()

    assert cancelled.status_code == 200, cancelled.get_json()
    assert (cancelled.get_json(), cancelled.headers["ETag"]) == read_back(api, first["id"])
    assert read_back(api, other["id"])[0]["status"] == "confirmed"
