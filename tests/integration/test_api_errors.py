"""Errors and Idempotency-Key over HTTP on SQLite and PostgreSQL (API.md, "Conventions").

Every refusal is application/problem+json with type, title, status and detail, and changes
nothing: the event count is the same before and after.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, future_weekday, local, premises_body
from tests.integration.test_api_log import event_count, warm_tokens

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.get_data(as_text=True)
    return dict(body)


def booking(day: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "premises_id": "room",
        "start": local(day, 10).isoformat(),
        "end": local(day, 11).isoformat(),
        "title": "Kerhoilta",
        **overrides,
    }


def test_bad_bookings_are_422_and_change_nothing(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    warm_tokens(api, "booker")
    before = event_count(api)
    cases: list[tuple[dict[str, Any], str]] = [
        (booking(day, start=f"{day}T10:00:00"), "start"),  # naive
        (booking(day, end=f"{day}T11:00:00"), "end"),  # naive
        (booking(day, start=str(day)), "start"),  # a date, not an instant
        (booking(day, end=local(day, 10).isoformat()), "end"),  # end == start
        (booking(day, end=local(day, 9).isoformat()), "end"),  # end before start
        (booking(day, start="9999-12-31T23:59:59-14:00"), "start"),  # past year 9999 in UTC
        (booking(day, start="0001-01-01T00:00:00+14:00"), "start"),
        (booking(day, colour="red"), "colour"),  # unknown field
        (booking(day, attendees="five"), "attendees"),
        (booking(day, attendees=5.5), "attendees"),
        (booking(day, attendees=10**30), "attendees"),
        (booking(day, attendees=0), "attendees"),
        (booking(day, public="perhaps"), "public"),
        (booking(day, title=7), "title"),
        (booking(day, title=None), "title"),
        (booking(day, title="   "), "title"),
        (booking(day, title="x" * 301), "title"),
        (booking(day, title="a\u0000b"), "title"),
        ({"premises_id": "room"}, "start"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/bookings", body, role="booker")
        problem = assert_problem(response, 422)
        assert field in problem["errors"], (body, problem)
        assert all(isinstance(m, str) for m in problem["errors"][field]), problem
    assert event_count(api) == before


def test_errors_in_nested_fields_are_lists_of_messages(api: Api) -> None:
    # API.md: a 422 adds `errors: {field: [messages]}` — also for fields inside objects,
    # whose messages say where inside the field they are.
    api.premises("room")
    warm_tokens(api, "staff")
    before = event_count(api)
    hours = {"mon": [["25:00", "26:00"]], "funday": []}
    cases: list[tuple[str, str, dict[str, Any], dict[str, set[str]]]] = [
        (
            "patch",
            "/api/v1/premises/room",
            {"rules": {"min_duration_minutes": "x", "bookable_by": "all"}},
            {"rules": {"min_duration_minutes", "bookable_by"}},
        ),
        ("patch", "/api/v1/premises/room", {"rules": "x"}, {"rules": set()}),
        (
            "post",
            "/api/v1/premises",
            premises_body("other", opening_hours=hours, equipment=[1], name={"xx": "Sali"}),
            {
                "opening_hours": {"mon.0.0", "mon.0.1", "funday"},
                "equipment": {"0"},
                "name": {"xx"},
            },
        ),
        ("post", "/api/v1/feed-tokens", {"scope": {"premises": [1]}}, {"scope": {"premises.0"}}),
        ("post", "/api/v1/feed-tokens", {"scope": "x"}, {"scope": set()}),
    ]
    for method, path, body, expected in cases:
        response = getattr(api, method)(path, body, role="staff")
        errors = assert_problem(response, 422)["errors"]
        assert set(errors) == set(expected), (body, errors)
        for field, messages in errors.items():
            assert messages and all(isinstance(m, str) for m in messages), errors
            named = {m.split(": ", 1)[0] for m in messages if ": " in m}
            assert named == expected[field], (field, messages)
    assert event_count(api) == before


def test_body_that_is_not_an_object(api: Api) -> None:
    api.premises("room")
    warm_tokens(api, "booker")
    before = event_count(api)
    malformed = api.client.post(
        "/api/v1/bookings",
        data='{"premises_id": "room", ',
        content_type="application/json",
        headers=api.headers("booker"),
    )
    assert_problem(malformed, 400)
    for body in ([1, 2], "text", 42, None):
        response = api.client.post(
            "/api/v1/bookings",
            data=json.dumps(body),
            content_type="application/json",
            headers=api.headers("booker"),
        )
        assert response.status_code in (400, 422), body
        assert_problem(response, response.status_code)
    assert event_count(api) == before


def test_body_over_the_size_limit_is_413(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    warm_tokens(api, "booker")
    before = event_count(api)
    huge = booking(day, notes="x" * 300_000)
    assert_problem(api.post("/api/v1/bookings", huge, role="booker"), 413)
    assert event_count(api) == before


def test_unknown_route_and_method(api: Api) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/premises/room/nothing", "/api/v1/"):
        assert_problem(api.get(path), 404)
    not_allowed = api.client.delete("/api/v1/premises", headers=api.headers("staff"))
    assert_problem(not_allowed, 405)
    assert {"GET", "POST"} <= {m.strip() for m in not_allowed.headers["Allow"].split(",")}
    assert_problem(api.client.put("/api/v1/bookings", headers=api.headers("staff")), 405)
    assert_problem(api.get("/api/v1/booking-series", role="staff"), 405)


def test_query_errors(api: Api) -> None:
    api.premises("room")
    for path, field in [
        ("/api/v1/premises?min_capacity=99999999999999999999", "min_capacity"),
        ("/api/v1/premises?q=a%00b", "q"),
        ("/api/v1/premises/room/availability?from=2027-01-01", "to"),
        ("/api/v1/premises/room/availability?from=9999-12-30&to=9999-12-31", "from"),
        ("/api/v1/premises/room/availability?from=0001-01-01&to=0001-01-02", "from"),
        ("/api/v1/premises/room/availability?from=2027-01-05&to=2027-01-01", "to"),
        ("/api/v1/premises/room/availability?from=2027-01-01&to=2028-01-01", "to"),
        ("/api/v1/availability?start=2027-01-05T10:00:00&end=2027-01-05T11:00:00Z", "start"),
    ]:
        problem = assert_problem(api.get(path, role="staff"), 422)
        assert field in problem["errors"], (path, problem)
    for path in ("/api/v1/bookings?to=9999-12-31", "/api/v1/bookings?from=0001-01-01"):
        assert_problem(api.get(path, role="booker"), 422)
    assert_problem(api.get("/api/v1/events?after=99999999999999999999", role="admin"), 422)
    # A NUL byte in a path names nothing.
    assert_problem(api.get("/api/v1/premises/a%00b"), 404)


def test_nul_characters_anywhere_are_refused_alike(api: Api) -> None:
    # PostgreSQL text cannot hold NUL; SQLite could. Both databases answer the same.
    api.premises("room")
    warm_tokens(api, "staff")
    before = event_count(api)
    body = premises_body("other", address="Katu\u00001")
    problem = assert_problem(api.post("/api/v1/premises", body, role="staff"), 422)
    assert "address" in problem["errors"]
    nested = premises_body("other", name={"fi": "Sali\u0000"})
    problem = assert_problem(api.post("/api/v1/premises", nested, role="staff"), 422)
    assert "name.fi" in problem["errors"]
    retire = api.post("/api/v1/premises/room/retire", {"reason": "\u0000"}, role="staff")
    assert_problem(retire, 422)
    assert event_count(api) == before


def test_if_match_that_is_not_a_version(api: Api) -> None:
    api.premises("room")
    response = api.patch(
        "/api/v1/premises/room", {"capacity": 3}, role="staff", headers={"If-Match": "soon"}
    )
    problem = assert_problem(response, 422)
    assert "If-Match" in problem["errors"]
    assert api.get("/api/v1/premises/room").get_json()["capacity"] == 12


def test_domain_refusals_are_problems(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    assert api.book("room", local(day, 10), local(day, 11)).status_code == 201
    conflict = assert_problem(api.book("room", local(day, 10), local(day, 11)), 409)
    assert conflict["conflicts"]
    rule = assert_problem(api.book("room", local(day, 6), local(day, 7)), 422)
    assert rule["errors"]
    assert_problem(api.book("nowhere", local(day, 6), local(day, 7)), 404)
    assert_problem(api.get("/api/v1/bookings/nope", role="booker"), 404)
    assert_problem(api.get("/api/v1/premises/nope"), 404)


# --- Idempotency-Key ------------------------------------------------------------------------


def test_same_key_and_body_replays_the_first_response(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    body = booking(day)
    first = api.post("/api/v1/bookings", body, role="booker", headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = event_count(api)
    again = api.post("/api/v1/bookings", body, role="booker", headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Location") == first.headers.get("Location")
    assert event_count(api) == before
    listed = api.get("/api/v1/bookings", role="booker").get_json()["bookings"]
    assert [b["id"] for b in listed] == [first.get_json()["id"]]

    # Without a key the same body is a new request: the slot is taken now.
    assert api.post("/api/v1/bookings", body, role="booker").status_code == 409


def test_same_key_with_another_body_is_422(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    key = {"Idempotency-Key": "k-2"}
    assert api.post("/api/v1/bookings", booking(day), role="booker", headers=key).status_code == 201
    before = event_count(api)
    other = booking(day, start=local(day, 12).isoformat(), end=local(day, 13).isoformat())
    response = api.post("/api/v1/bookings", other, role="booker", headers=key)
    problem = assert_problem(response, 422)
    assert "Idempotency-Key" in problem["errors"]
    assert event_count(api) == before
    # The same key on another path is another request too.
    closure = {"start": local(day, 14).isoformat(), "end": local(day, 15).isoformat()}
    reused = api.post(
        "/api/v1/premises/room/closures", {**closure, "reason": "x"}, role="booker", headers=key
    )
    assert reused.status_code == 403  # bookers may not close premises, key or not


def test_keys_belong_to_their_user(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    key = {"Idempotency-Key": "shared-key"}
    mine = api.post("/api/v1/bookings", booking(day), role="booker", headers=key)
    assert mine.status_code == 201
    other = api.user("booker", api.other_organisation_id)
    theirs = api.client.post(
        "/api/v1/bookings",
        json=booking(day, start=local(day, 12).isoformat(), end=local(day, 13).isoformat()),
        headers={**key, "Authorization": f"Bearer {other}"},
    )
    assert theirs.status_code == 201
    assert theirs.get_json()["id"] != mine.get_json()["id"]


def test_refusals_replay_too(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    assert api.book("room", local(day, 10), local(day, 11)).status_code == 201
    key = {"Idempotency-Key": "k-409"}
    first = api.post("/api/v1/bookings", booking(day), role="booker", headers=key)
    assert_problem(first, 409)
    # The slot frees up, but the key still answers what it answered first.
    booked = api.get("/api/v1/bookings", role="booker").get_json()["bookings"][0]
    assert api.post(f"/api/v1/bookings/{booked['id']}/cancel", {}, role="booker").status_code == 200
    before = event_count(api)
    again = api.post("/api/v1/bookings", booking(day), role="booker", headers=key)
    assert_problem(again, 409)
    assert again.get_json() == first.get_json()
    assert event_count(api) == before

    rule_key = {"Idempotency-Key": "k-422"}
    early = booking(day, start=local(day, 6).isoformat(), end=local(day, 7).isoformat())
    first = api.post("/api/v1/bookings", early, role="booker", headers=rule_key)
    assert_problem(first, 422)
    again = api.post("/api/v1/bookings", early, role="booker", headers=rule_key)
    assert again.get_json() == first.get_json()


def test_idempotent_cancel_and_premises_writes(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 11)).get_json()
    path = f"/api/v1/bookings/{placed['id']}/cancel"
    key = {"Idempotency-Key": "cancel-1"}
    first = api.post(path, {"reason": "x"}, role="booker", headers=key)
    assert first.status_code == 200
    again = api.post(path, {"reason": "x"}, role="booker", headers=key)
    assert again.status_code == 200  # not 409: it is the same request, answered again
    assert again.get_json() == first.get_json()

    body = premises_body("hall")
    key = {"Idempotency-Key": "hall-1"}
    created = api.post("/api/v1/premises", body, role="staff", headers=key)
    assert created.status_code == 201
    before = event_count(api)
    replay = api.post("/api/v1/premises", body, role="staff", headers=key)
    assert replay.status_code == 201
    assert replay.get_json() == created.get_json()
    assert event_count(api) == before


def test_bad_idempotency_keys(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    warm_tokens(api, "booker")
    before = event_count(api)
    for key in ("k" * 201, "tab\there"):
        response = api.post(
            "/api/v1/bookings", booking(day), role="booker", headers={"Idempotency-Key": key}
        )
        assert_problem(response, 400)
    assert event_count(api) == before


def test_odd_request_ids_do_not_break_writes(api: Api) -> None:
    # A client's X-Request-Id ends up in event metadata; PostgreSQL's JSONB refuses a NUL.
    api.premises("room")
    day = future_weekday(2)
    for hour, request_id in ((9, "a\x00b"), (11, "r" * 100_000), (13, "ok-123")):
        body = booking(
            day, start=local(day, hour).isoformat(), end=local(day, hour + 1).isoformat()
        )
        response = api.post(
            "/api/v1/bookings", body, role="booker", headers={"X-Request-Id": request_id}
        )
        assert response.status_code == 201, (request_id[:10], response.get_json())
