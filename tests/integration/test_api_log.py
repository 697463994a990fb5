"""The log API (/api/v1/events), /healthz and the OpenAPI document, over HTTP on both databases.

`event_count` lives here because the log is how other API tests prove that a refused request
appended nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Api, future_weekday, local


def all_events(api: Api) -> list[dict[str, Any]]:
    """Every event in the log, read page by page as an admin."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get(f"/api/v1/events?after={after}&limit=1000", role="admin")
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        found += body["events"]
        if not body["events"]:
            return found
        after = body["next"]


def event_count(api: Api) -> int:
    return len(all_events(api))


def warm_tokens(api: Api, *roles: str) -> None:
    """Create these roles' users (and the admin's) now, before counting events: a user's
    first token appends a UserRegistered event. Each costs an Argon2 hash, so ask for few."""
    for role in ("admin", *roles):
        api.token(role)


def test_events_page_by_page_in_position_order(api: Api) -> None:
    api.premises("room")
    day = future_weekday(1)
    for hour in (9, 11, 13):
        placed = api.book(
            "room", local(day, hour), local(day, hour + 1), notes="ovikoodi: kissankello"
        )
        assert placed.status_code == 201

    first = api.get("/api/v1/events?after=0&limit=3", role="admin")
    assert first.status_code == 200
    assert first.mimetype == "application/json"
    page = first.get_json()
    assert len(page["events"]) == 3
    positions = [e["position"] for e in page["events"]]
    assert positions == sorted(positions)
    assert page["next"] == positions[-1]
    for event in page["events"]:
        assert set(event) >= {
            "position",
            "stream",
            "version",
            "type",
            "schema_version",
            "recorded_at",
            "data",
        }

    rest = api.get(f"/api/v1/events?after={page['next']}&limit=1000", role="admin").get_json()
    assert rest["events"][0]["position"] > positions[-1]
    everything = page["events"] + rest["events"]
    all_positions = [e["position"] for e in everything]
    assert all_positions == sorted(set(all_positions))
    placed_events = [e for e in everything if e["type"] == "BookingPlaced"]
    assert len(placed_events) == 3
    for event in placed_events:
        assert event["stream"] == "premises-room"
        assert "notes" not in event["data"]
        assert event["data"]["premises_id"] == "room"
    assert "kissankello" not in str(everything)

    # Past the end: no events, and `next` stays where the client is.
    end = api.get(f"/api/v1/events?after={all_positions[-1]}", role="admin").get_json()
    assert end == {"events": [], "next": all_positions[-1]}


def test_events_pages_carry_a_link_and_utc_instants(api: Api) -> None:
    """API.md: a list that grows without bound is paged with `next` in the body and a
    `Link: <…>; rel="next"` header; instants that belong to no premises are UTC with `Z`."""
    api.premises("room")
    day = future_weekday(1)
    assert api.book("room", local(day, 9), local(day, 10)).status_code == 201
    positions = [e["position"] for e in all_events(api)]

    first = api.get("/api/v1/events?after=0&limit=2", role="admin")
    link = first.headers.get("Link")
    assert link is not None and link.endswith('>; rel="next"'), link
    target = re.fullmatch(r"<([^>]+)>; rel=\"next\"", link)
    assert target is not None
    second = api.get(target.group(1), role="admin").get_json()
    assert second["events"][0]["position"] == positions[2]
    for event in first.get_json()["events"]:
        assert event["recorded_at"].endswith("Z"), event["recorded_at"]

    # The last page names where to go on from, and no Link leads past the head.
    last = api.get(f"/api/v1/events?after={positions[-2]}&limit=5", role="admin")
    assert [e["position"] for e in last.get_json()["events"]] == [positions[-1]]
    assert last.get_json()["next"] == positions[-1]
    assert "Link" not in last.headers


@pytest.mark.parametrize("role", ["resident", "booker", "staff", "analyst"])
def test_events_are_for_admins_only(api: Api, role: str) -> None:
    response = api.get("/api/v1/events", role=role)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_events_need_a_token(api: Api) -> None:
    response = api.get("/api/v1/events")
    assert response.status_code == 401
    assert "Bearer" in response.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("query", ["after=-1", "limit=0", "limit=100000", "after=abc"])
def test_events_bad_query_is_422(api: Api, query: str) -> None:
    response = api.get(f"/api/v1/events?{query}", role="admin")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]


def test_healthz_reports_database_position_and_projections(api: Api) -> None:
    warm_tokens(api)
    api.premises("room")
    response = api.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    head = max(e["position"] for e in all_events(api))
    assert body["log_position"] == head
    assert isinstance(body["projections"], dict) and body["projections"]
    for name, found in body["projections"].items():
        assert set(found) >= {"position", "lag"}, name
        assert found["lag"] >= 0


# The paths of API.md that the foundation serves (other issues add the rest).
FOUNDATION_PATHS = {
    ("post", "/api/v1/premises"),
    ("get", "/api/v1/premises"),
    ("get", "/api/v1/premises/{}"),
    ("patch", "/api/v1/premises/{}"),
    ("post", "/api/v1/premises/{}/closures"),
    ("post", "/api/v1/premises/{}/retire"),
    ("get", "/api/v1/premises/{}/availability"),
    ("get", "/api/v1/availability"),
    ("post", "/api/v1/bookings"),
    ("get", "/api/v1/bookings"),
    ("get", "/api/v1/bookings/{}"),
    ("post", "/api/v1/bookings/{}/cancel"),
    ("post", "/api/v1/bookings/{}/approve"),
    ("post", "/api/v1/bookings/{}/reject"),
    ("post", "/api/v1/booking-series"),
    ("post", "/api/v1/booking-series/{}/cancel"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/users/me"),
    ("post", "/api/v1/users"),
}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_openapi_documents_412_and_the_series_conflict(api: Api) -> None:
    # API.md: every write to a resource with a `version` honours If-Match (412), and a series
    # with `on_conflict: "fail"` answers 409 with `conflicts`.
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in [
        ("/api/v1/premises/{premises_id}", "patch"),
        ("/api/v1/premises/{premises_id}/retire", "post"),
        ("/api/v1/bookings/{booking_id}/cancel", "post"),
        ("/api/v1/bookings/{booking_id}/approve", "post"),
        ("/api/v1/bookings/{booking_id}/reject", "post"),
        ("/api/v1/popup-requests/{request_id}/approve", "post"),
        ("/api/v1/popup-requests/{request_id}/reject", "post"),
        ("/api/v1/popup-requests/{request_id}/withdraw", "post"),
    ]:
        assert "412" in paths[path][method]["responses"], (method, path)
    assert "409" in paths["/api/v1/booking-series"]["post"]["responses"]


def test_openapi_lists_every_api_path(api: Api) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    documented = {
        (method, _shape(path))
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "patch", "put", "delete")
    }
    assert documented >= FOUNDATION_PATHS, FOUNDATION_PATHS - documented

    # Whatever /api/v1 route the app serves is documented too.
    served = set()
    for rule in api.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add(
                (method.lower(), _shape(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)))
            )
    assert served <= documented, served - documented
