"""API.md read to the letter once more (the third audit, after test_api_contract.py and
test_api_contract_2.py): what the service did otherwise, kept as regression tests. Both
databases through the Flask test client.

- The strong-identity 403 told everyone to sign in at `/auth/oidc/login`, also where no
  OpenID Connect provider is configured (that address is then a 404): it now names it only
  where OpenID Connect is configured, and otherwise says to ask staff, who may act on the
  person's behalf.
- Feed links (/feeds, /api/v1/feed-tokens, /api/v1/premises/{id}/feed) and e-mailed sign-in
  links took the request's scheme and host, which behind a reverse proxy are the proxy
  hop's (`http://127.0.0.1:8000/…`): they are made under BOOKING_PUBLIC_URL when it is set.
- `GET /api/v1/users/me/sessions` was not paged (API.md: every list that can grow without
  bound is): `?limit=`/`?after=`, `next` and the `Link` header, the shape kept.
- `GET /api/v1/stats/usage?from=0001-01-01` was a 422 without `errors` (the calendar's
  overflow caught at the last line): its dates are bounded like every other date.
- `GET /api/v1/events?after=` beyond the log's head answered 200 with that `next`: a client
  that polled on from it would skip, silently, every event appended up to it. It is 422 on
  `after`, as `min_position` beyond the head is.
- RFC 3339 lets `t` and `z` be written in lower case (5.6); `…t18:00:00z` was a 422.
- "Applications are taken from … until …" wrote the round's instants as `+00:00` where every
  other instant of no premises is written in UTC with `Z`.
- A round took applications closing after its season had ended (no offer could ever be
  booked), a season of a hundred years (an accepted offer is a weekly series over it) and
  the same premises twice: each is 422 on its field now.
- A NUL in a page's form reached PostgreSQL (`/my/organisations/ask`): a 500 there, where
  the API refuses a NUL anywhere up front. Forms are refused the same way now (422).
- The CLI: `booking serve --port 99999` and `booking events export` into a missing folder
  ended in a Python traceback; they are usage errors with a one-line message now.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from click.testing import CliRunner

from booking import accounts, sessions
from booking.auth import COOKIE
from booking.cli import main
from booking.pages import signin
from booking.queries.paging import encode_cursor
from events.sql import write_transaction
from tests.conftest import Api, future_weekday, local
from tests.integration.test_allocation_api import CLOSE, application, round_body, rounds
from tests.integration.test_pages_helpers import Site, _fresh_limits, csrf_token, site, text

__all__ = ["_fresh_limits", "rounds", "site"]

PUBLIC = "https://tilat.example.fi"


# --- the strong-identity refusal says what can be done here ------------------------------


def _strong_refusal(api: Api) -> dict[str, Any]:
    api.premises("strong-room", rules={"requires_strong_identity": True})
    day = future_weekday(2)
    refused = api.book("strong-room", local(day, 18), local(day, 19))
    assert refused.status_code == 403, refused.get_json()
    assert refused.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = refused.get_json()
    assert body["type"] == "urn:tilavaraus:problem:strong-identity-required"
    assert (body["status"], body["title"]) == (403, "Strong identification required")
    return body


def test_the_strong_identity_refusal_names_no_sign_in_that_is_not_configured(api: Api) -> None:
    assert api.client.get("/auth/oidc/login").status_code == 404  # no provider here
    detail = _strong_refusal(api)["detail"]
    assert "/auth/oidc/login" not in detail
    assert "strong-room" in detail and "staff" in detail


def test_the_strong_identity_refusal_names_the_sign_in_where_it_is_configured(
    api: Api,
) -> None:
    api.app.config.update(
        BOOKING_OIDC_ISSUER="https://idp.example.fi", BOOKING_OIDC_CLIENT_ID="tilavaraus"
    )
    detail = _strong_refusal(api)["detail"]
    assert "/auth/oidc/login" in detail and "strong-room" in detail


# --- absolute links under BOOKING_PUBLIC_URL ----------------------------------------------


def test_feed_links_follow_the_public_url_when_it_is_set(site: Site) -> None:
    site.api.premises("room")
    path = "/feeds/premises/room.ics"
    # Behind a proxy that speaks plain HTTP to the app: without the setting, the request's.
    page = text(site.client(lang="en").get("/feeds", base_url="http://127.0.0.1:8000"))
    assert f"http://127.0.0.1:8000{path}" in page and f"webcal://127.0.0.1:8000{path}" in page
    links = site.api.get("/api/v1/premises/room/feed", base_url="http://127.0.0.1:8000")
    assert links.get_json()["url"] == f"http://127.0.0.1:8000{path}"

    site.app.config["BOOKING_PUBLIC_URL"] = PUBLIC + "/"
    page = text(site.client(lang="en").get("/feeds", base_url="http://127.0.0.1:8000"))
    assert f"{PUBLIC}{path}" in page and f"webcal://tilat.example.fi{path}" in page
    assert "127.0.0.1" not in page
    found = site.api.get("/api/v1/premises/room/feed", base_url="http://127.0.0.1:8000")
    assert found.get_json() == {
        "premises_id": "room",
        "url": f"{PUBLIC}{path}",
        "https_url": f"{PUBLIC}{path}",
        "webcal_url": f"webcal://tilat.example.fi{path}",
    }
    created = site.api.post(
        "/api/v1/feed-tokens",
        {"scope": {"premises": ["room"]}},
        role="staff",
        base_url="http://127.0.0.1:8000",
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["url"].startswith(PUBLIC + "/feeds/private/")
    assert created.get_json()["webcal_url"].startswith("webcal://tilat.example.fi/feeds/private/")
    # The e-mailed sign-in link as well.
    site.app.config["BOOKING_PUBLIC_URL"] = PUBLIC
    with site.app.test_request_context(base_url="http://127.0.0.1:8000"):
        link = signin.sign_in_link(site.user_id("resident"))
    assert link.startswith(PUBLIC + "/")
    assert site.app.test_client().get(urlsplit(link).path).status_code == 200


# --- the sessions list is paged ------------------------------------------------------------


def test_the_sessions_list_is_paged_newest_first(api: Api) -> None:
    with write_transaction(api.engine) as conn:
        person = accounts.create_user(
            conn, email="many@example.fi", name="Many", role="resident", password="salasana-123"
        )
        started = datetime.now(UTC)
        made = [
            sessions.start(
                conn, person.user_id, started - timedelta(minutes=n), str(uuid.uuid4()), "link"
            )
            for n in range(5)
        ]
    browser = api.app.test_client()
    browser.set_cookie(COOKIE, made[2].secret)
    seen: list[dict[str, Any]] = []
    url = "/api/v1/users/me/sessions?limit=2"
    while url:
        page = browser.get(url)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        assert set(body) == {"sessions", "next"} and len(body["sessions"]) <= 2
        seen += body["sessions"]
        if body["next"] is None:
            assert "Link" not in page.headers
            break
        link = page.headers["Link"]
        assert link.endswith('>; rel="next"') and "limit=2" in link
        url = link[1 : link.index(">")].removeprefix("http://localhost")
    assert [s["id"] for s in seen] == [m.session.id for m in made]
    assert [s["current"] for s in seen] == [False, False, True, False, False]
    whole = browser.get("/api/v1/users/me/sessions").get_json()
    assert whole["next"] is None and whole["sessions"] == seen
    # Bad paging input is a 422 like on every list, never a 500.
    for query in ("limit=0", "limit=1001", "limit=x", "after=bm90LWEtY3Vyc29y", "after=WyJpIiwxXQ"):
        bad = browser.get(f"/api/v1/users/me/sessions?{query}")
        assert bad.status_code == 422, (query, bad.get_json())
        assert bad.headers["Content-Type"] == "application/problem+json"
    cursor = browser.get("/api/v1/users/me/sessions?limit=1").get_json()["next"]
    token = api.token("booker")  # another person's cursor leads through their own list
    other = api.client.get(
        f"/api/v1/users/me/sessions?after={cursor}", headers={"Authorization": f"Bearer {token}"}
    )
    assert other.status_code == 200 and other.get_json() == {"sessions": [], "next": None}


def test_a_sessions_cursor_of_the_wrong_types_is_422(api: Api) -> None:
    token = api.token("resident")
    for values in ([1, "x"], ["x", "y"], [datetime.now(UTC)], [datetime.now(UTC), "x", 3]):
        bad = api.client.get(
            f"/api/v1/users/me/sessions?after={encode_cursor(values)}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert bad.status_code == 422, (values, bad.get_json())
        assert "after" in bad.get_json()["errors"]


# --- 422s carry their field ---------------------------------------------------------------


def test_usage_statistics_dates_out_of_range_are_422_on_the_field(api: Api) -> None:
    for query, fields in (
        ("from=0001-01-01&to=2027-01-01", {"from"}),
        ("from=2027-01-01&to=9999-12-31", {"to"}),
        ("from=1969-12-31&to=2200-01-01", {"from", "to"}),
    ):
        bad = api.get(f"/api/v1/stats/usage?{query}&group_by=premises", role="analyst")
        assert bad.status_code == 422, (query, bad.get_json())
        assert bad.headers["Content-Type"] == "application/problem+json"
        assert set(bad.get_json()["errors"]) == fields, query
    fine = api.get("/api/v1/stats/usage?from=2026-01-01&to=2026-02-01", role="analyst")
    assert fine.status_code == 200, fine.get_json()


def test_the_log_refuses_a_position_beyond_its_head(api: Api) -> None:
    api.premises("room")
    page = api.get("/api/v1/events?after=0&limit=1000", role="admin").get_json()
    head = page["next"]
    assert head == page["events"][-1]["position"]
    at_head = api.get(f"/api/v1/events?after={head}", role="admin")
    assert at_head.status_code == 200
    assert at_head.get_json() == {"events": [], "next": head} and "Link" not in at_head.headers
    beyond = api.get(f"/api/v1/events?after={head + 1}", role="admin")
    assert beyond.status_code == 422, beyond.get_json()
    assert beyond.headers["Content-Type"] == "application/problem+json"
    assert list(beyond.get_json()["errors"]) == ["after"]
    assert str(head) in beyond.get_json()["errors"]["after"][0]


# --- the command line ------------------------------------------------------------------------


def test_cli_usage_errors_are_one_line_not_a_traceback(tmp_path: Any) -> None:
    env = {
        "BOOKING_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "BOOKING_INSTANCE_PATH": str(tmp_path),
        "BOOKING_SECRET_KEY": "tests",
    }
    runner = CliRunner()
    for args in (
        ["serve", "--port", "99999"],
        ["serve", "--port", "-1"],
        ["serve", "--workers", "0"],
        ["serve", "--threads", "0"],
    ):
        refused = runner.invoke(main, args, env=env)
        assert refused.exit_code == 2, (args, refused.output)
        assert "Invalid value" in refused.output and refused.exception is not None
        assert isinstance(refused.exception, SystemExit), args
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    missing = str(tmp_path / "no-such-folder" / "log.jsonl")
    refused = runner.invoke(main, ["events", "export", missing], env=env)
    assert refused.exit_code == 1, refused.output
    assert isinstance(refused.exception, SystemExit)
    assert refused.output.startswith("Error: cannot write") and "Traceback" not in refused.output
    written = runner.invoke(main, ["events", "export", str(tmp_path / "log.jsonl")], env=env)
    assert written.exit_code == 0, written.output


# --- instants -----------------------------------------------------------------------------


def test_an_instant_may_write_t_and_z_in_lower_case(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    start, end = local(day, 18).astimezone(UTC), local(day, 19).astimezone(UTC)
    lower = {
        "start": start.strftime("%Y-%m-%dt%H:%M:%Sz"),
        "end": end.strftime("%Y-%m-%dt%H:%M:%S+00:00"),
    }
    body = {"premises_id": "room", "title": "Kerhoilta", "attendees": 5, **lower}
    booked = api.post("/api/v1/bookings", body, role="booker")
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["start"] == local(day, 18).isoformat()
    found = api.client.get("/api/v1/availability", query_string=lower)
    assert found.status_code == 200 and found.get_json()["premises"] == []
    for broken in ("2027-01-01t10:00:00", "2027-01-01t10:00:00y", "2027-01-01 10:00:00z"):
        refused = api.post("/api/v1/bookings", {**body, "start": broken}, role="booker")
        assert refused.status_code == 422 and "start" in refused.get_json()["errors"], broken


def test_the_application_window_is_written_in_utc_with_z(
    api: Api, rounds: dict[str, Any], clock: Any
) -> None:
    rid = rounds["round"]["id"]
    clock.move_to(CLOSE + timedelta(minutes=1))
    late = api.post(f"/api/v1/allocation-rounds/{rid}/applications", application(), role="booker")
    assert late.status_code == 422
    message = late.get_json()["errors"]["applications_close"][0]
    opened, closes = rounds["round"]["applications_open"], rounds["round"]["applications_close"]
    assert opened.endswith("Z") and closes.endswith("Z")
    assert f"from {opened} until {closes}" in message.replace(".000000", "")
    assert "+00:00" not in message


# --- no 500 for hostile input -------------------------------------------------------------


def test_a_nul_in_a_pages_form_is_refused_before_it_reaches_the_database(site: Site) -> None:
    resident = site.client("resident", lang="en")
    token = csrf_token(resident, "/my/organisations")
    organisation = site.api.organisation_id
    for data in (
        {"organisation_id": "\x00", "message": "Hei"},
        {"organisation_id": organisation, "message": "a\x00b"},
        {"organisation_id": organisation, "message": "Hei", "x\x00": "1"},
    ):
        refused = resident.post("/my/organisations/ask", data={**data, "csrf_token": token})
        assert refused.status_code == 422, data
        assert refused.headers["Content-Type"] == "application/problem+json"
    asked = resident.post(
        "/my/organisations/ask",
        data={"organisation_id": organisation, "message": "Hei", "csrf_token": token},
    )
    assert asked.status_code in (302, 303), text(asked)[:500]


def test_a_round_refuses_what_no_season_could_use(api: Api, rounds: dict[str, Any]) -> None:
    for changes, field in (
        ({"applications_close": "2027-03-01T08:00:00Z"}, "applications_close"),
        ({"season_end": "2028-01-12"}, "season_end"),
        ({"premises": ["gym", "hall", "gym"]}, "premises"),
    ):
        refused = api.post("/api/v1/allocation-rounds", round_body(**changes), role="staff")
        assert refused.status_code == 422, (changes, refused.get_json())
        assert list(refused.get_json()["errors"]) == [field], changes
    # The edges are fine: applications closing on the season's last day, a season of a year.
    for changes in (
        {"applications_close": "2027-02-28T20:00:00Z"},
        {"season_end": "2028-01-11"},
    ):
        made = api.post("/api/v1/allocation-rounds", round_body(**changes), role="staff")
        assert made.status_code == 201, (changes, made.get_json())
