"""GET /api/v1/bookings?from&to counts days in each booking's premises' zone (API.md,
"Conventions": "Dates are `YYYY-MM-DD` in the premises' zone"), not in the service's
zone: a booking late in the evening in Stockholm or New York is on that evening's date
there, though it is already the next day in Helsinki. Both databases."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import Api, future_weekday, local

ALWAYS = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _listed(api: Api, first: date, last: date, premises_id: str | None = None) -> set[str]:
    query = f"from={first}&to={last}" + (f"&premises_id={premises_id}" if premises_id else "")
    response = api.get(f"/api/v1/bookings?{query}", role="staff")
    assert response.status_code == 200, response.get_json()
    return {b["id"] for b in response.get_json()["bookings"]}


def test_from_and_to_are_days_in_the_premises_zone(api: Api) -> None:
    api.premises("room", opening_hours=ALWAYS)
    api.premises("tukholma", timezone="Europe/Stockholm", opening_hours=ALWAYS)
    api.premises("new-york", timezone="America/New_York", opening_hours=ALWAYS)
    day = future_weekday(2)
    evening = {
        "tukholma": datetime.combine(day, time(23), tzinfo=ZoneInfo("Europe/Stockholm")),
        "new-york": datetime.combine(day, time(20), tzinfo=ZoneInfo("America/New_York")),
    }
    ids = {}
    for premises_id, start in evening.items():
        placed = api.book(premises_id, start, start + timedelta(minutes=45))
        assert placed.status_code == 201, placed.get_json()
        ids[premises_id] = placed.get_json()["id"]
    helsinki = api.book("room", local(day, 23), local(day, 23, 45))
    assert helsinki.status_code == 201, helsinki.get_json()
    ids["room"] = helsinki.get_json()["id"]
    next_day = day + timedelta(days=1)

    assert _listed(api, day, day) == set(ids.values())
    assert _listed(api, next_day, next_day) == set()
    for premises_id, booking_id in ids.items():
        assert _listed(api, day, day, premises_id) == {booking_id}
        assert _listed(api, next_day, next_day, premises_id) == set()
        assert _listed(api, day - timedelta(days=1), day - timedelta(days=1), premises_id) == set()
