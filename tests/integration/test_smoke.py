"""The shortest path through the service: register premises, book, see it busy, cancel."""

from __future__ import annotations

from tests.conftest import Api, future_weekday, local


def test_book_see_busy_and_cancel(api: Api) -> None:
    api.premises("library-room-2")
    day = future_weekday(2)
    placed = api.book("library-room-2", local(day, 10), local(day, 12))
    assert placed.status_code == 201, placed.get_json()
    booking = placed.get_json()
    assert booking["status"] == "confirmed"

    seen = api.get(f"/api/v1/premises/library-room-2/availability?from={day}&to={day}")
    busy = seen.get_json()["days"][0]["busy"]
    assert [(b["start"], b["kind"]) for b in busy] == [(local(day, 10).isoformat(), "booking")]

    cancelled = api.post(f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "flu"}, "booker")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    seen = api.get(f"/api/v1/premises/library-room-2/availability?from={day}&to={day}")
    assert seen.get_json()["days"][0]["busy"] == []
