"""The OpenAPI document says what the service does (issue 14.6): the retire body is
optional, a feed token's scope is one of two, opening hours name only the seven days, date
limits are standard JSON Schema, and answers link to the operations that follow them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from tests.conftest import Api, premises_body


@pytest.fixture
def spec(api: Api) -> dict[str, Any]:
    found: dict[str, Any] = api.get("/api/v1/openapi.json").get_json()
    return found


def resolved(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every local $ref replaced (enough for the small schemas asked here)."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if "$ref" in value:
                name = value["$ref"].rsplit("/", 1)[-1]
                rest = {k: v for k, v in value.items() if k != "$ref"}
                return {**walk(spec["components"]["schemas"][name]), **walk(rest)}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    found: dict[str, Any] = walk(schema)
    return found


def test_no_non_standard_bounds(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert "x-minimum" not in text and "x-maximum" not in text


def test_feed_token_scope_is_one_of_premises_or_organisation(
    api: Api, spec: dict[str, Any]
) -> None:
    schema = resolved(spec, spec["components"]["schemas"]["FeedTokenIn"])
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert validator.is_valid({"scope": {"premises": ["a"]}})
    assert validator.is_valid({"scope": {"organisation": "o"}})
    assert not validator.is_valid({"scope": {"premises": ["a"], "organisation": "o"}})
    assert not validator.is_valid({"scope": {}})
    both = {"scope": {"premises": ["a"], "organisation": api.organisation_id}}
    assert api.post("/api/v1/feed-tokens", both, role="staff").status_code == 422


def test_opening_hours_name_only_the_seven_days(api: Api, spec: dict[str, Any]) -> None:
    for name in ("PremisesCreate", "PremisesPatch"):
        hours = spec["components"]["schemas"][name]["properties"]["opening_hours"]
        assert set(hours["properties"]) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
        assert hours["additionalProperties"] is False
        validator = jsonschema_rs.Draft202012Validator(hours)
        assert validator.is_valid({"mon": [["08:00", "20:00"]], "sun": []})
        assert not validator.is_valid({"holiday": [["08:00", "20:00"]]})
    body = premises_body("room", opening_hours={"holiday": [["08:00", "20:00"]]})
    response = api.post("/api/v1/premises", body, role="staff")
    assert response.status_code == 422
    assert "opening_hours" in response.get_json()["errors"]


def test_date_limits_agree_with_the_service(api: Api, spec: dict[str, Any]) -> None:
    api.premises("room")
    parameters = spec["paths"]["/api/v1/premises/{premises_id}/availability"]["get"]["parameters"]
    schema = next(p["schema"] for p in parameters if p["name"] == "from")
    validator = jsonschema_rs.Draft202012Validator(schema)
    path = "/api/v1/premises/room/availability"
    for day, ok in [
        ("1970-01-01", True),
        ("2199-12-25", True),
        ("1969-12-31", False),
        ("2200-01-01", False),
    ]:
        assert validator.is_valid(day) is ok, day
        answer = api.get(f"{path}?from={day}&to={day}")
        assert (answer.status_code == 200) is ok, (day, answer.get_json())


def test_answers_link_to_what_follows_them(spec: dict[str, Any]) -> None:
    def links(path: str, method: str, status: str) -> dict[str, Any]:
        found: dict[str, Any] = spec["paths"][path][method]["responses"][status]["links"]
        return found

    def target(link: dict[str, Any]) -> tuple[str, str]:
        pointer = link["operationRef"].removeprefix("#/paths/")
        path, method = pointer.rsplit("/", 1)
        path = path.replace("~1", "/").replace("~0", "~")
        assert method in spec["paths"][path], link  # it names an operation that exists
        return path, method

    booking = links("/api/v1/bookings", "post", "201")
    assert {target(v) for v in booking.values()} >= {
        ("/api/v1/bookings/{booking_id}/cancel", "post"),
        ("/api/v1/bookings/{booking_id}/approve", "post"),
        ("/api/v1/bookings/{booking_id}/messages", "get"),
        ("/api/v1/bookings/{booking_id}/messages", "post"),
    }
    assert booking["CancelBooking"]["parameters"] == {"booking_id": "$response.body#/id"}
    popup = links("/api/v1/popup-requests", "post", "201")
    assert {target(v) for v in popup.values()} >= {
        ("/api/v1/popup-requests/{request_id}/approve", "post"),
        ("/api/v1/popup-requests/{request_id}/reject", "post"),
        ("/api/v1/popup-requests/{request_id}/withdraw", "post"),
        ("/api/v1/popup-requests/{request_id}/messages", "post"),
    }
    token = links("/api/v1/feed-tokens", "post", "201")
    assert {target(v) for v in token.values()} == {("/api/v1/feed-tokens/{token_id}", "delete")}
    for found in (booking, popup, token, links("/api/v1/premises", "post", "201")):
        for link in found.values():
            target(link)
