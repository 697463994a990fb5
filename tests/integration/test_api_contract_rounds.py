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
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from events.sql import read_transaction
from events.store import events_table
from tests.conftest import Api
from tests.integration.test_allocation_api import application, round_body, rounds

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
