"""Paging of GET /api/v1/registry/free-premises (JSON; the CSV stays one whole file) and
GET /api/v1/allocation-rounds/{id}/allocations (with and without `?preview=series`), over
HTTP on both databases, like every other list (API.md conventions: `limit`, `after`, `next`,
`Link`; a list is never cut silently)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from booking.clock import system_clock
from projections import runner
from tests.conftest import Api
from tests.integration.test_allocation_api import CLOSE, EVENINGS, application, round_body
from tests.integration.test_api_paging import follow

REGISTRY = "/api/v1/registry/free-premises"


def _registry_ready(api: Api, ids: list[str]) -> None:
    for premises_id in ids:
        api.premises(premises_id)
    api.premises("maksullinen", free_of_charge=False, hourly_price_cents=1000)
    runner.catch_up(api.engine, clock=system_clock)


def test_the_registry_comes_in_pages_by_id(api: Api) -> None:
    _registry_ready(api, ["d-talo", "a-talo", "c-talo", "e-talo", "b-talo"])

    pages = follow(api, f"{REGISTRY}?limit=2", "premises", "staff")

    assert pages == [["a-talo", "b-talo"], ["c-talo", "d-talo"], ["e-talo"]]
    # Each page is a whole registry answer: its position and each entry's next free hour.
    second = api.get(f"{REGISTRY}?limit=2").get_json()
    page = api.get(f"{REGISTRY}?limit=2&after={second['next']}")
    assert page.status_code == 200 and "X-Log-Position" in page.headers
    assert all(e["next_free_hour"] for e in page.get_json()["premises"])
    whole = api.get(REGISTRY).get_json()  # the default page holds a whole city's register
    assert [e["id"] for e in whole["premises"]] == [i for p in pages for i in p]
    assert whole["next"] is None


def test_the_registry_csv_is_the_whole_register_and_refuses_paging(api: Api) -> None:
    ids = [f"talo-{n:03d}" for n in range(105)]  # more than a default JSON page
    _registry_ready(api, ids)

    response = api.get(f"{REGISTRY}?format=csv")

    assert response.status_code == 200 and "Link" not in response.headers
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8"))))
    assert [r["id"] for r in rows] == ids
    json_page = api.get(REGISTRY).get_json()
    assert len(json_page["premises"]) == 100 and json_page["next"]
    for query in ("limit=10", f"after={json_page['next']}", "limit=5&after=x"):
        refused = api.get(f"{REGISTRY}?format=csv&{query}")
        assert refused.status_code == 422, query
        assert refused.mimetype == "application/problem+json"
        named = {part.split("=")[0] for part in query.split("&")}
        assert set(refused.get_json()["errors"]) == named


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "after=not-a-cursor", "after=W1siaSIsMV1d"]
)
def test_bad_registry_paging_is_422(api: Api, query: str) -> None:
    response = api.get(f"{REGISTRY}?{query}")
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert query.split("=")[0] in response.get_json()["errors"]


@pytest.fixture
def proposed(api: Api, clock: Any) -> dict[str, Any]:
    """A round in `allocating` with a proposal of five weekly slots on two premises."""
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", opening_hours=EVENINGS, rules=rules, capacity=60)
    created = api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    every_evening = [
        {"weekday": d, "from": "17:00", "to": "18:30", "priority": "primary"}
        for d in ("mon", "tue", "wed", "thu", "fri")
    ]
    for name, premises in (("P10", ["gym"]), ("P12", ["hall"])):
        section = {
            "name": name,
            "slots_per_week": 3 if name == "P10" else 2,
            "duration_minutes": 90,
            "premises": premises,
            "times": every_evening,
        }
        sent = api.post(
            f"/api/v1/allocation-rounds/{rid}/applications",
            application(sections=[section]),
            role="booker",
        )
        assert sent.status_code == 201, sent.get_json()
    clock.move_to(CLOSE + timedelta(minutes=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff")
    assert proposal.status_code == 200, proposal.get_json()
    body = proposal.get_json()
    assert len(body["allocations"]) == 5
    return {"id": rid, "proposal": body}


def test_allocations_come_in_pages_that_add_up_to_the_proposal(
    api: Api, proposed: dict[str, Any]
) -> None:
    path = f"/api/v1/allocation-rounds/{proposed['id']}/allocations"

    pages = follow(api, f"{path}?limit=2", "allocations", "staff")

    assert [len(p) for p in pages] == [2, 2, 1]
    every = [a["id"] for a in proposed["proposal"]["allocations"]]
    assert [i for p in pages for i in p] == every  # the proposal's order, nothing twice
    first = api.get(f"{path}?limit=2", role="staff").get_json()
    # The round's own figures come whole with every page.
    assert first["round_id"] == proposed["id"] and first["version"] >= 1
    assert first["metrics"] == proposed["proposal"]["metrics"]
    assert first["unallocated"] == proposed["proposal"]["unallocated"]
    whole = api.get(path, role="staff").get_json()
    assert [a["id"] for a in whole["allocations"]] == every and whole["next"] is None
    assert api.get(f"{path}?limit=2", role="booker").status_code == 403


def test_the_series_preview_is_paged_too(api: Api, proposed: dict[str, Any]) -> None:
    path = f"/api/v1/allocation-rounds/{proposed['id']}/allocations?preview=series&limit=3"

    pages = follow(api, path, "allocations", "staff")

    assert [len(p) for p in pages] == [3, 2]
    first = api.get(path, role="staff")
    assert "preview=series" in first.headers["Link"]  # the next page previews as well
    for allocation in first.get_json()["allocations"]:
        assert allocation["series_preview"]["bookings"] > 0
    last = api.get(f"{path}&after={first.get_json()['next']}", role="staff").get_json()
    assert len(last["allocations"]) == 2 and last["next"] is None
    assert all("series_preview" in a for a in last["allocations"])


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "after=not-a-cursor", "after=W1siaSIsMV1d"]
)
def test_bad_allocation_paging_is_422(api: Api, proposed: dict[str, Any], query: str) -> None:
    path = f"/api/v1/allocation-rounds/{proposed['id']}/allocations"
    for extra in ("", "&preview=series"):
        response = api.get(f"{path}?{query}{extra}", role="staff")
        assert response.status_code == 422, response.get_json()
        assert query.split("=")[0] in response.get_json()["errors"]


def test_the_openapi_document_shows_both_lists_paged(api: Api) -> None:
    spec = api.get("/api/v1/openapi.json").get_json()
    for path in (REGISTRY, "/api/v1/allocation-rounds/{round_id}/allocations"):
        get = spec["paths"][path]["get"]
        assert {"limit", "after"} <= {p["name"] for p in get["parameters"]}, path
        assert "Link" in get["responses"]["200"]["headers"], path
    schemas = spec["components"]["schemas"]
    assert "next" in schemas["RegistryOut"]["properties"]
    assert "next" in schemas["AllocationPage"]["properties"]
    formats = next(p for p in spec["paths"][REGISTRY]["get"]["parameters"] if p["name"] == "format")
    assert "not paged" in formats["description"]
