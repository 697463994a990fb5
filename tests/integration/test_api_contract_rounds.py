"""API.md's "Seasonal allocation rounds", "Premises made of spaces" and "Signing in with
OpenID Connect, and organisations" read to the letter (an audit): what the service did
otherwise, kept as regression tests. Both databases through the Flask test client.

- Staff applying on an organisation's behalf named any `organisation_id`, also one that does
  not exist: the application was taken (201) for nobody, and would have become offers and a
  booking series of no organisation. Bad input is a 4xx that changes nothing: 422 on
  `organisation_id`.
- Dates were read by `date.fromisoformat`, which takes ISO 8601's basic and week spellings
  too (`20270111`, `2027-W02-1`): API.md says `YYYY-MM-DD`, and so does the OpenAPI
  document's pattern. Other spellings are 422 on the field.
- The same for bookings and weekly series: staff booking on behalf of an organisation that
  does not exist got a confirmed booking (201) for nobody; it is 422 on `organisation_id`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from events.sql import read_transaction
from events.store import events_table
from tests.conftest import HELSINKI, Api, future_weekday, local
from tests.integration.test_allocation_api import CLOSE, application, round_body, rounds

__all__ = ["rounds"]


def log_length(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def test_staff_apply_only_for_an_organisation_that_exists(api: Api, rounds: dict[str, Any]) -> None:
    path = f"/api/v1/allocation-rounds/{rounds['round']['id']}/applications"
    before = log_length(api)
    refused = api.post(path, application(organisation_id="no-such-organisation"), role="staff")
    assert refused.status_code == 422, refused.get_json()
    assert refused.mimetype == "application/problem+json"
    assert "organisation_id" in refused.get_json()["errors"]
    assert log_length(api) == before
    listed = api.get(path, role="staff").get_json()
    assert listed["applications"] == []
    taken = api.post(path, application(organisation_id=api.other_organisation_id), role="staff")
    assert taken.status_code == 201, taken.get_json()


def test_a_round_s_dates_are_yyyy_mm_dd_only(api: Api, rounds: dict[str, Any]) -> None:
    """API.md: dates are `YYYY-MM-DD` (the OpenAPI document says so with a pattern); ISO
    8601's basic and week spellings were read as dates all the same."""
    before = log_length(api)
    for written in ("20270111", "2027-W02-1", "2027W021", "2027-011", "2027-1-11", 20270111):
        body = round_body(season_start=written)
        refused = api.post("/api/v1/allocation-rounds", body, role="staff")
        assert refused.status_code == 422, (written, refused.get_json())
        assert "season_start" in refused.get_json()["errors"]
    assert log_length(api) == before
    made = api.post(
        "/api/v1/allocation-rounds", round_body(season_start="2027-01-11"), role="staff"
    )
    assert made.status_code == 201 and made.get_json()["season_start"] == "2027-01-11"


def test_a_round_s_steps_out_of_order_are_refused_and_change_nothing(
    api: Api, rounds: dict[str, Any], clock: Any
) -> None:
    """API.md: `upcoming` → `open` → `allocating` → `published` → `closed`; applications
    only while open, the proposal and adjustments only while allocating. Each step out of
    its turn is a 4xx problem that appends nothing (checked here; the service kept it)."""
    rid = rounds["round"]["id"]
    path = f"/api/v1/allocation-rounds/{rid}"

    def refused(response: Any, status: int) -> None:
        assert response.status_code == status, response.get_json()
        assert response.mimetype == "application/problem+json"

    later = round_body(applications_open=(CLOSE - timedelta(days=1)).isoformat())
    upcoming = api.post("/api/v1/allocation-rounds", later, role="staff").get_json()
    assert upcoming["status"] == "upcoming"
    before = log_length(api)
    early = api.post(
        f"/api/v1/allocation-rounds/{upcoming['id']}/applications", application(), role="booker"
    )
    refused(early, 422)
    mine = api.post(f"{path}/applications", application(), role="booker").get_json()
    before = log_length(api)
    adjustment = {
        "application_id": mine["id"],
        "section": "P10",
        "premises_id": "gym",
        "weekday": "mon",
        "start_time": "17:00",
        "end_time": "18:30",
    }
    refused(api.post(f"{path}/proposal", role="staff"), 409)
    refused(api.post(f"{path}/publish", role="staff"), 409)
    refused(api.post(f"{path}/allocations", adjustment, role="staff"), 409)
    assert log_length(api) == before

    clock.move_to(CLOSE + timedelta(minutes=1))
    refused(api.patch(f"/api/v1/applications/{mine['id']}", {"group_size": 5}, role="booker"), 422)
    refused(api.post(f"/api/v1/applications/{mine['id']}/withdraw", role="booker"), 422)
    assert api.post(f"{path}/proposal", role="staff").status_code == 200
    published = api.post(f"{path}/publish", role="staff")
    assert published.status_code == 200, published.get_json()
    (offer,) = published.get_json()["offers"]
    before = log_length(api)
    refused(api.post(f"{path}/publish", role="staff"), 409)
    refused(api.post(f"{path}/proposal", role="staff"), 409)
    refused(api.post(f"{path}/allocations", {**adjustment, "weekday": "tue"}, role="staff"), 409)
    gone = api.client.delete(f"{path}/allocations/{offer['id']}", headers=api.headers("staff"))
    refused(gone, 409)
    assert log_length(api) == before

    declined = api.post(f"/api/v1/allocations/{offer['id']}/decline", role="booker")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    before = log_length(api)
    refused(api.post(f"/api/v1/allocations/{offer['id']}/accept", role="booker"), 409)
    assert log_length(api) == before
    clock.move_to(datetime(2027, 3, 1, 12, 0, tzinfo=HELSINKI))
    assert api.client.get(path).get_json()["status"] == "closed"


def test_staff_book_only_for_an_organisation_that_exists(api: Api) -> None:
    """API.md (organisations): a booking names the organisation it is for; staff may name
    any, but a booking or a weekly series for an organisation that does not exist was
    confirmed (201) for nobody. It is 422 on `organisation_id` and appends nothing."""
    api.premises("room")
    day = future_weekday(2)
    before = log_length(api)
    for body in (
        {"organisation_id": "no-such-organisation"},
        {"organisation_id": "no-such-organisation", "rrule": "FREQ=WEEKLY;COUNT=3"},
    ):
        path = "/api/v1/booking-series" if "rrule" in body else "/api/v1/bookings"
        sent = {
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 11).isoformat(),
            "title": "Kerhoilta",
            "attendees": 5,
            **body,
        }
        refused = api.post(path, sent, role="staff")
        assert refused.status_code == 422, (path, refused.get_json())
        assert refused.mimetype == "application/problem+json"
        assert "organisation_id" in refused.get_json()["errors"]
    assert log_length(api) == before
    named = api.book(
        "room",
        local(day, 12),
        local(day, 13),
        role="staff",
        organisation_id=api.other_organisation_id,
    )
    assert named.status_code == 201 and named.get_json()["organisation_id"] == (
        api.other_organisation_id
    )
