"""What a request's reading does once rather than per reader (issue 18's HTTP layer), and
that it answers as before: a JSON body parsed once by the guards and handed to webargs only
when webargs would read its bytes alike; one argument schema per view serving every request;
a correlation id per request made only when a write asks; the security headers without
Headers.setdefault; no session signer for a request without the session cookie."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from sqlalchemy import func, select

from events.sql import read_transaction
from events.store import events_table, read_all
from tests.conftest import Api, future_weekday, local

DAY = future_weekday(2)


def _booking(hour: int, **overrides: Any) -> dict[str, Any]:
    return {
        "premises_id": "room",
        "start": local(DAY, hour).isoformat(),
        "end": local(DAY, hour, 45).isoformat(),
        "title": "Kerhoilta",
        "attendees": 5,
        **overrides,
    }


def _events(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def _post_bytes(api: Api, data: bytes) -> Any:
    headers = {**api.headers("booker"), "Content-Type": "application/json"}
    return api.client.post("/api/v1/bookings", data=data, headers=headers)


def test_a_body_webargs_would_not_read_as_utf8_is_refused_as_before(api: Api) -> None:
    """json.loads takes UTF-16 and a UTF-8 signature; webargs reads UTF-8 only: the guards'
    value must not reach the schema for those bytes (that would book where the API refused)."""
    api.premises()
    api.token("booker")  # made before the count: a new user is an event
    text = json.dumps(_booking(10))
    before = _events(api)
    for data in (text.encode("utf-16"), text.encode("utf-16-le"), b"\xef\xbb\xbf" + text.encode()):
        refused = _post_bytes(api, data)
        assert refused.status_code == 400, (data[:6], refused.get_json())
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["errors"] == {"json": ["Invalid JSON body."]}
    assert _events(api) == before
    assert _post_bytes(api, text.encode()).status_code == 201  # the same body as UTF-8


def test_one_schema_serves_every_request_and_keeps_nothing_of_one(api: Api) -> None:
    api.premises()
    no_title = api.post("/api/v1/bookings", {**_booking(8), "title": None}, "booker")
    assert no_title.status_code == 422
    assert set(no_title.get_json()["errors"]) == {"title"}
    placed = api.post("/api/v1/bookings", _booking(9, title="Shakki"), "booker")
    assert placed.status_code == 201, placed.get_json()
    assert placed.get_json()["title"] == "Shakki"
    bad_count = api.post("/api/v1/bookings", {**_booking(11), "attendees": "x"}, "booker")
    assert bad_count.status_code == 422
    assert set(bad_count.get_json()["errors"]) == {"attendees"}
    query = api.get(f"/api/v1/premises/room/availability?from={DAY}&to=soon")
    assert query.status_code == 422 and set(query.get_json()["errors"]) == {"to"}
    week = api.get(f"/api/v1/premises/room/availability?from={DAY}&to={DAY}")
    assert week.status_code == 200 and week.get_json()["days"][0]["date"] == DAY.isoformat()


def test_every_request_has_a_correlation_id_of_its_own(api: Api) -> None:
    """Without X-Request-Id each write request gets one id, also where the test holds the app
    context (so `g` is shared between requests): the id is kept in the request."""
    api.premises()
    with api.app.app_context():
        for hour in (8, 10):
            assert api.post("/api/v1/bookings", _booking(hour), "booker").status_code == 201
        given = {"X-Request-Id": "kutsu-1"}
        placed = api.post("/api/v1/bookings", _booking(12), "booker", headers=given)
        assert placed.status_code == 201
    with read_transaction(api.engine) as conn:
        placed = read_all(conn, types=["BookingPlaced"])
    ids = [event.metadata["correlation_id"] for event in placed]
    assert len(ids) == 3 and ids[2] == "kutsu-1"
    assert ids[0] and ids[1] and ids[0] != ids[1]


def test_security_headers_are_added_once_and_a_views_own_stand(api: Api) -> None:
    def own() -> Response:
        return Response("x", headers={"content-security-policy": "default-src 'none'"})

    api.app.add_url_rule("/test-own-headers", view_func=own)
    answer = api.client.get("/test-own-headers")
    assert answer.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ):
        assert answer.headers.getlist(name) == [value]
    assert "Strict-Transport-Security" not in answer.headers
    secure = api.client.get("/test-own-headers", base_url="https://localhost")
    assert secure.headers.getlist("Strict-Transport-Security") == ["max-age=31536000"]
    api_answer = api.get("/api/v1/premises")
    assert api_answer.headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in api_answer.headers and "Vary" not in api_answer.headers
