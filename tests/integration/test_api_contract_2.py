"""API.md read to the letter, as an outside tester reads it (the second audit): what the
service did otherwise, kept as regression tests. Both databases through the Flask test
client, and a real `booking serve` with the CLI on SQLite.

- HEAD is GET without a body (RFC 9110): on the pages that also take a POST it answered as
  a POST would — HEAD /login was 422 where GET is 200, and HEAD /logout signed the person
  out (a HEAD carries no CSRF token: any site could sign a visitor out), HEAD on a sign-in
  link signed its holder in.
- An instant in a query string written as API.md writes it (`?start=2027-03-02T18:00:00+02:00`,
  unencoded) arrived with a space for the `+` and was refused with 422.
- The log's `data` wrote instants as recorded (`…+00:00`): neither the premises' local
  offset nor UTC's `Z` that API.md asks for "everywhere".
- `GET …/allocations?preview=series` wrote its skipped dates in UTC (`…+00:00`) where the
  offers and series that follow write the same dates in the premises' offset.
- A private feed kept its ETag and Last-Modified when a person in it was erased: a calendar
  revalidating its copy got 304 and kept the erased name and e-mail (API.md: unreadable
  everywhere, also in feeds).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from booking.pages import signin
from tests.conftest import (
    HELSINKI,
    TEST_NOW,
    Api,
    at_test_time,
    future_weekday,
    local,
    premises_body,
)
from tests.integration.test_allocation_api import CLOSE, application, rounds
from tests.integration.test_faults import Server
from tests.integration.test_pages_helpers import (
    Site,
    _fresh_limits,
    csrf_token,
    post_form,
    site,
)

__all__ = ["_fresh_limits", "rounds", "site"]

OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/api/v1/users/me").status_code == 200


# --- HEAD on the pages -------------------------------------------------------------------


def test_head_on_a_page_that_also_takes_a_post_is_its_get(site: Site) -> None:
    anonymous = site.client(lang="en")
    for path in ("/login", "/signup", "/logout"):
        got, head = anonymous.get(path), anonymous.head(path)
        assert (head.status_code, got.status_code) == (200, 200), path
        assert head.get_data() == b"" and head.headers["Content-Type"].startswith("text/html")

    staff = site.client("staff")
    for path in ("/staff/premises/new", "/staff/rounds/new"):
        assert staff.head(path).status_code == staff.get(path).status_code == 200, path
    assert site.api.get("/api/v1/premises").get_json()["premises"] == []


def test_head_never_signs_anyone_in_or_out(site: Site, api: Api) -> None:
    booker = site.client("booker")
    assert _signed_in(booker)
    assert booker.head("/logout").status_code == 200
    assert _signed_in(booker)  # the HEAD changed nothing
    assert post_form(booker, "/logout", {}, page="/my").status_code == 303
    assert not _signed_in(booker)

    resident = site.user_id("resident")
    with site.app.test_request_context():
        link = urlsplit(signin.sign_in_link(resident)).path
    visitor = site.app.test_client()
    assert visitor.head(link).status_code == 200
    assert not _signed_in(visitor)  # a mail scanner's HEAD is not a sign-in
    form = visitor.get(link)
    assert form.status_code == 200
    posted = visitor.post(link, data={"csrf_token": csrf_token(visitor, link)})
    assert posted.status_code in (302, 303) and _signed_in(visitor)


# --- instants in query strings -----------------------------------------------------------


def test_a_search_instant_written_into_the_url_unencoded_keeps_its_offset(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    start, end = local(day, 18).isoformat(), local(day, 19).isoformat()
    assert "+02:00" in start
    raw = api.client.get(f"/api/v1/availability?start={start}&end={end}")
    assert raw.status_code == 200, raw.get_json()
    found = raw.get_json()
    assert (found["start"], found["end"]) == (start, end)
    assert [p["id"] for p in found["premises"]] == ["room"]
    # The encoded form means the same; naive or broken instants are still refused.
    encoded = api.client.get("/api/v1/availability", query_string={"start": start, "end": end})
    assert encoded.get_json() == found
    naive = api.client.get(f"/api/v1/availability?start={start[:19]}&end={end[:19]}")
    assert naive.status_code == 422 and set(naive.get_json()["errors"]) == {"start", "end"}
    broken = api.client.get(f"/api/v1/availability?start={start[:19]} 2&end={end}")
    assert broken.status_code == 422 and "start" in broken.get_json()["errors"]


# --- the log -------------------------------------------------------------------------------


def _instants(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [found for v in value.values() for found in _instants(v)]
    if isinstance(value, list):
        return [found for v in value for found in _instants(v)]
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return [value]
    return []


def test_the_logs_instants_are_local_for_premises_and_z_elsewhere(api: Api) -> None:
    api.premises("room", rules={"popup_allowed": True})
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 11))
    assert placed.status_code == 201
    booking_id = placed.get_json()["id"]
    cancelled = api.post(f"/api/v1/bookings/{booking_id}/cancel", {"reason": "x"}, role="booker")
    assert cancelled.status_code == 200
    soon = TEST_NOW + timedelta(hours=5)
    popup = {
        "premises_id": "room",
        "start": soon.isoformat(),
        "end": (soon + timedelta(hours=1)).isoformat(),
        "title": "Pop-up",
    }
    assert api.post("/api/v1/popup-requests", popup, role="resident").status_code == 201
    message = api.post(f"/api/v1/bookings/{booking_id}/messages", {"body": "Hei"}, role="booker")
    assert message.status_code == 201

    events = api.get("/api/v1/events?limit=1000", role="admin").get_json()["events"]
    by_type = {e["type"]: e for e in events}
    booked = by_type["BookingPlaced"]["data"]
    assert booked["start"] == local(day, 10).isoformat()  # as GET /bookings/{id} writes it
    assert booked["placed_at"].endswith("+02:00")
    assert by_type["PopupRequested"]["data"]["start"] == soon.isoformat()
    assert by_type["MessagePosted"]["data"]["posted_at"].endswith("Z")  # a thread's: UTC
    for event in events:
        assert event["recorded_at"].endswith("Z")
        for instant in _instants(event["data"]):
            offset = OFFSET.search(instant)
            assert offset and offset.group(1) in ("Z", "+02:00"), (event["type"], instant)
            assert "+00:00" not in instant
            datetime.fromisoformat(instant)


# --- private feeds and erasure -------------------------------------------------------------


def test_an_erasure_moves_the_validators_of_the_private_feeds_showing_the_person(
    api: Api, clock: Any
) -> None:
    api.premises("room")
    day = future_weekday(2)
    token = api.user("booker", api.organisation_id, email="liisa@example.fi")
    mine = {"Authorization": f"Bearer {token}"}
    body = {
        "premises_id": "room",
        "start": local(day, 10).isoformat(),
        "end": local(day, 11).isoformat(),
        "title": "Kerho",
        "notes": "Avain Liisalta",
    }
    assert api.client.post("/api/v1/bookings", json=body, headers=mine).status_code == 201
    person = api.client.get("/api/v1/users/me", headers=mine).get_json()["id"]
    made = api.post("/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff")
    feed = urlsplit(made.get_json()["url"]).path
    public = "/feeds/premises/room.ics"

    clock.shift(timedelta(minutes=5))  # the booking's change has settled
    before, public_before = api.client.get(feed), api.client.get(public)
    assert "liisa@example.fi" in before.get_data(as_text=True)
    etag, modified = before.headers["ETag"], before.headers["Last-Modified"]
    assert api.client.get(feed, headers={"If-None-Match": etag}).status_code == 304

    clock.shift(timedelta(minutes=5))
    assert api.post(f"/api/v1/users/{person}/erase", role="admin").status_code == 200
    clock.shift(timedelta(minutes=5))  # the erasure has settled too
    after = api.client.get(feed, headers={"If-None-Match": etag})
    assert after.status_code == 200
    shown = after.get_data(as_text=True)
    assert "liisa@example.fi" not in shown and "Avain Liisalta" not in shown
    assert after.headers["ETag"] != etag and after.headers["Last-Modified"] != modified
    since = api.client.get(feed, headers={"If-Modified-Since": modified})
    assert since.status_code == 200
    # Stable again until the next change; the public feed never showed the person.
    again = api.client.get(feed, headers={"If-None-Match": after.headers["ETag"]})
    assert again.status_code == 304
    assert api.client.get(public).headers["ETag"] == public_before.headers["ETag"]


# --- allocation rounds ----------------------------------------------------------------------


def test_the_series_preview_writes_its_skipped_dates_in_the_premises_offset(
    api: Api, rounds: dict[str, Any], clock: Any
) -> None:
    rid = rounds["round"]["id"]
    path = f"/api/v1/allocation-rounds/{rid}"
    assert api.post(f"{path}/applications", application(), role="booker").status_code == 201
    clock.move_to(CLOSE + timedelta(hours=1))
    proposal = api.post(f"{path}/proposal", role="staff").get_json()
    (allocation,) = proposal["allocations"]
    assert (allocation["premises_id"], allocation["weekday"]) == ("gym", "mon")
    monday = datetime(2027, 1, 18, 17, 0, tzinfo=HELSINKI)
    assert (
        api.book(
            "gym",
            monday,
            monday + timedelta(hours=1),
            role="staff",
            organisation_id=api.other_organisation_id,
        ).status_code
        == 201
    )

    preview = api.get(f"{path}/allocations?preview=series", role="staff").get_json()
    (planned,) = preview["allocations"]
    (skipped,) = planned["series_preview"]["skipped"]
    assert skipped["start"] == monday.isoformat()  # as the offer and the series write it
    assert skipped["end"] == (monday + timedelta(minutes=90)).isoformat()
    assert skipped["reason_text"]

    published = api.post(f"{path}/publish", role="staff").get_json()
    (offer,) = published["offers"]
    assert [s["start"] for s in offer["skipped"]] == [skipped["start"]]


# --- a real `booking serve`, set up with the CLI --------------------------------------------


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "booking.cli", *args],
        env=at_test_time(env),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _exchange(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = dict(headers or {})
        payload = json.dumps(body) if body is not None else None
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, payload, sent)
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


@pytest.fixture
def served(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'contract.sqlite'}"
    env = {
        **os.environ,
        "BOOKING_DATABASE_URL": url,
        "BOOKING_SECRET_KEY": "tests",
        "BOOKING_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    organisation = _cli(
        env,
        *("admin", "create-organisation", "--name", "Mikkelin Shakkikerho ry"),
        *("--type", "association", "--business-id", "1234567-8"),
    )
    tokens = {
        role: _cli(
            env,
            *("admin", "create-user", "--email", f"{role}@example.fi", "--name", role.title()),
            *("--role", role, "--password", "salasana-123"),
            *(("--organisation", organisation) if role == "booker" else ()),
        )
        for role in ("staff", "booker", "admin")
    }
    server = Server(url, tmp_path).start()
    try:
        yield server, organisation, tokens
    finally:
        server.stop()


def test_a_served_app_set_up_with_the_cli_answers_as_api_md_says(served: Any) -> None:
    server, organisation, tokens = served
    port = server.port

    def call(method: str, path: str, body: Any = None, role: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
        return _exchange(port, method, path, body, headers)

    # The CLI's last lines: an organisation id and tokens that work, with the person's role.
    assert re.fullmatch(r"[0-9a-f-]{36}", organisation)
    for role in tokens:
        status, _, raw = call("GET", "/api/v1/users/me", role=role)
        assert status == 200 and json.loads(raw)["role"] == role
    status, _, raw = call("GET", "/api/v1/users/me", role="booker")
    me = json.loads(raw)
    assert set(me) >= {"id", "email", "name", "role", "organisation_id", "language"}
    assert me["organisation_id"] == organisation and me["organisations"][0]["id"] == organisation

    status, _, _ = call("POST", "/api/v1/premises", premises_body("kylatalo"), role="staff")
    assert status == 201
    day = future_weekday(2)
    start, end = local(day, 18).isoformat(), local(day, 19).isoformat()
    status, response, raw = call(
        "POST",
        "/api/v1/bookings",
        {"premises_id": "kylatalo", "start": start, "end": end, "title": "Shakki"},
        role="booker",
    )
    assert status == 201, raw
    booking = json.loads(raw)
    assert booking["start"] == start and booking["created_at"].endswith("+02:00")
    assert response.getheader("Content-Type") == "application/json"

    # Unencoded `+` in the search's instants, as API.md writes them.
    status, _, raw = call("GET", f"/api/v1/availability?start={start}&end={end}")
    assert status == 200 and json.loads(raw)["premises"] == []  # taken
    free_start, free_end = local(day, 20).isoformat(), local(day, 21).isoformat()
    status, _, raw = call("GET", f"/api/v1/availability?start={free_start}&end={free_end}")
    assert status == 200 and [p["id"] for p in json.loads(raw)["premises"]] == ["kylatalo"]

    # HEAD answers as GET does, without a body, on API reads, feeds and pages alike.
    for path in (
        "/api/v1/premises",
        "/api/v1/premises/kylatalo",
        f"/api/v1/premises/kylatalo/availability?from={day}&to={day}",
        "/feeds/premises/kylatalo.ics",
        "/healthz",
        "/",
        "/login",
        "/logout",
        "/registry",
        "/rounds",
    ):
        got, _, _ = call("GET", path)
        head, headed, empty = call("HEAD", path)
        assert (head, got) == (200, 200) and empty == b"", path
        assert headed.getheader("Content-Type") is not None

    # Errors: problem+json everywhere under /api/v1, 401 without a token, 403 with a wrong one.
    for method, path, role, expected in (
        ("GET", "/api/v1/nope", None, 404),
        ("GET", "/api/v1/premises/", None, 404),
        ("DELETE", "/api/v1/premises", "staff", 405),
        ("GET", "/api/v1/bookings", None, 401),
        ("GET", "/api/v1/events", "booker", 403),
        ("POST", "/api/v1/premises/kylatalo/retire", "booker", 403),
    ):
        status, response, raw = call(method, path, role=role)
        assert status == expected, (method, path, raw)
        assert response.getheader("Content-Type") == "application/problem+json"
        problem = json.loads(raw)
        assert set(problem) >= {"type", "title", "status", "detail"}
        assert problem["status"] == expected

    # The log: Link while more follows, instants by the convention.
    status, response, raw = call("GET", "/api/v1/events?limit=1", role="admin")
    assert status == 200 and 'rel="next"' in response.getheader("Link", "")
    status, _, raw = call("GET", "/api/v1/events?limit=1000", role="admin")
    for event in json.loads(raw)["events"]:
        for instant in _instants(event["data"]):
            assert not instant.endswith("+00:00"), (event["type"], instant)


def test_a_204_answer_has_no_body_and_no_content_type(api: Api) -> None:
    api.premises("room")
    made = api.post("/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff")
    token_id = made.get_json()["id"]
    revoked = api.client.delete(f"/api/v1/feed-tokens/{token_id}", headers=api.headers("staff"))
    assert revoked.status_code == 204 and revoked.data == b""
    assert "Content-Type" not in revoked.headers
