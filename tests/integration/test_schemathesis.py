"""Schemathesis against the served OpenAPI document, on SQLite and PostgreSQL.

For every operation in /api/v1/openapi.json, Hypothesis draws requests from the document
(valid ones and, in negative mode, ones that break it), with generated path ids and with
ids of things that exist, sends them through the real app as an admin, and checks that no
response is a 5xx, that every documented response matches its schema and that its content
type is the documented one. Bounded: EXAMPLES per operation and mode, derandomised so that
CI is repeatable (TILAVARAUS_FUZZ_EXAMPLES and TILAVARAUS_FUZZ_RANDOM=1 explore further).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from booking.clock import system_clock
from events.sql import read_transaction
from events.store import head_position
from projections import runner
from tests.conftest import Api, future_weekday, local

EXAMPLES = int(os.environ.get("TILAVARAUS_FUZZ_EXAMPLES", "6"))
RANDOM = os.environ.get("TILAVARAUS_FUZZ_RANDOM") == "1"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _existing_ids(api: Api) -> dict[str, str]:
    """A premises, a booking (in a series), a pop-up request and a feed token to aim at."""
    api.premises("room", rules={"popup_allowed": True, "popup_auto_approve": False})
    day = future_weekday(2)
    series = api.post(
        "/api/v1/booking-series",
        {
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 11).isoformat(),
            "rrule": "FREQ=WEEKLY;COUNT=2",
            "title": "Kerho",
            "attendees": 4,
            "on_conflict": "fail",
        },
        role="booker",
    )
    assert series.status_code == 201, series.get_json()
    tomorrow = future_weekday(3, weeks_ahead=0)
    popup = api.post(
        "/api/v1/popup-requests",
        {
            "premises_id": "room",
            "start": local(tomorrow, 12).isoformat(),
            "end": local(tomorrow, 13).isoformat(),
            "title": "Kirpputori",
            "description": "",
            "expected_attendees": 5,
        },
        role="resident",
    )
    assert popup.status_code == 201, popup.get_json()
    token = api.post("/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff")
    assert token.status_code == 201, token.get_json()
    return {
        "premises_id": "room",
        "booking_id": series.get_json()["bookings"][0]["id"],
        "series_id": series.get_json()["series_id"],
        "request_id": popup.get_json()["id"],
        "token_id": token.get_json()["id"],
    }


def _within_the_log(api: Api, case: Any) -> None:
    """A `min_position` past the head makes the read wait and then answer 503 (reported as
    a finding); aim at positions that exist, with the projections caught up to them."""
    if isinstance(case.query, dict) and isinstance(case.query.get("min_position"), int):
        with read_transaction(api.engine) as conn:
            head = head_position(conn)
        case.query["min_position"] = min(case.query["min_position"], head)
        runner.catch_up(api.engine, clock=system_clock)


def _fuzz(
    api: Api,
    operation: Any,
    known: dict[str, str],
    headers: dict[str, str],
    failures: list[str],
    statuses: Counter[int],
) -> None:
    label = operation.label
    names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in known.items() if k in names}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if fixed:
        strategies += [operation.as_strategy(m, path_parameters=fixed) for m in modes]

    @given(case=st.one_of(*strategies))
    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        _within_the_log(api, case)
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as error:
            failures.append(f"{label}: {case.as_curl_command()}\n{error}")

    run()


def test_every_operation_answers_within_its_schema(api: Api) -> None:
    known = _existing_ids(api)
    runner.catch_up(api.engine, clock=system_clock)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.app)
    headers = api.headers("admin")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        _fuzz(api, result.ok(), known, headers, failures, statuses)
    print(
        f"\nschemathesis: {operations} operations, responses by status {sorted(statuses.items())}"
    )
    assert operations >= 30
    assert not failures, "\n\n".join(failures[:10])


@pytest.mark.parametrize("path", ["/api/v1/openapi.json"])
def test_the_document_describes_errors_as_problem_json(api: Api, path: str) -> None:
    spec = api.get(path).get_json()
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(default) == ["application/problem+json"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["status"]["type"] == "integer"
