"""Premises with `rules.requires_strong_identity` take bookings, series, pop-up requests and
allocation applications only from sessions that signed in strongly; staff acting on behalf
are not asked; everyone else gets 403 `urn:tilavaraus:problem:strong-identity-required`, and
the pages say how to sign in strongly. Both databases.

A strong session is made with booking.sessions directly, as the OpenID Connect callback
makes it (the whole flow against a real provider: tests/browser/test_oidc_browser.py)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from booking import sessions
from booking.auth import COOKIE
from events.sql import read_transaction, write_transaction
from projections.allocation import applications_table
from tests.conftest import future_weekday, local
from tests.integration.test_allocation_api import EVENINGS, application, round_body
from tests.integration.test_pages_helpers import PASSWORD, Site, _fresh_limits, site, text

__all__ = ["_fresh_limits", "site"]
STRONG_ONLY = "strong-room"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
DAY = future_weekday(2)


def session_client(site: Site, role: str, strong: bool) -> tuple[FlaskClient, str]:
    """A browser signed in as `role`, strongly or not; and its CSRF token."""
    user_id = site.user_id(role)
    with write_transaction(site.api.engine) as conn:
        made = sessions.start(
            conn, user_id, datetime.now(UTC), str(uuid.uuid4()), "oidc", strong=strong
        )
    client = site.app.test_client()
    client.set_cookie(COOKIE, made.secret)
    found = _META.search(text(client.get("/")))
    assert found
    return client, found.group(1)


def premises(site: Site) -> None:
    site.api.premises(STRONG_ONLY, rules={"requires_strong_identity": True, "popup_allowed": True})
    site.api.premises("room", rules={"popup_allowed": True})


def booking(premises_id: str, hour: int) -> dict[str, Any]:
    return {
        "premises_id": premises_id,
        "start": local(DAY, hour).isoformat(),
        "end": local(DAY, hour + 1).isoformat(),
        "title": "Kerhoilta",
        "attendees": 5,
        "organisation_id": None,
    }


def popup(premises_id: str) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=2)
    start = start.replace(minute=0, second=0, microsecond=0)
    start = local(start.astimezone(local(DAY, 0).tzinfo).date(), 12)
    return {
        "premises_id": premises_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Pop-up",
        "description": "",
        "expected_attendees": 3,
    }


def _is_strong_refusal(response: Any) -> None:
    assert response.status_code == 403, response.get_json()
    body = response.get_json()
    assert body["type"] == "urn:tilavaraus:problem:strong-identity-required"
    assert response.mimetype == "application/problem+json"


def test_the_rule_is_kept_and_shown(site: Site) -> None:
    premises(site)
    shown = site.api.get(f"/api/v1/premises/{STRONG_ONLY}").get_json()
    assert shown["rules"]["requires_strong_identity"] is True
    assert site.api.get("/api/v1/premises/room").get_json()["rules"].get(
        "requires_strong_identity"
    ) in (False, None)


def test_bookings_need_a_strong_session(site: Site) -> None:
    premises(site)
    body = {k: v for k, v in booking(STRONG_ONLY, 10).items() if k != "organisation_id"}
    # A bearer token is no strong sign-in.
    _is_strong_refusal(site.api.post("/api/v1/bookings", body, role="booker"))
    weak, weak_csrf = session_client(site, "booker", strong=False)
    _is_strong_refusal(
        weak.post("/api/v1/bookings", json=body, headers={"X-CSRF-Token": weak_csrf})
    )
    strong, strong_csrf = session_client(site, "booker", strong=True)
    placed = strong.post("/api/v1/bookings", json=body, headers={"X-CSRF-Token": strong_csrf})
    assert placed.status_code == 201, placed.get_json()
    # Premises without the rule take the weak session's booking.
    other = {**body, "premises_id": "room"}
    ok = weak.post("/api/v1/bookings", json=other, headers={"X-CSRF-Token": weak_csrf})
    assert ok.status_code == 201, ok.get_json()


def test_staff_on_behalf_are_not_asked(site: Site) -> None:
    premises(site)
    body = {**booking(STRONG_ONLY, 12), "organisation_id": site.api.organisation_id}
    placed = site.api.post("/api/v1/bookings", body, role="staff")
    assert placed.status_code == 201, placed.get_json()


def test_series_need_a_strong_session(site: Site) -> None:
    premises(site)
    body = {
        **{k: v for k, v in booking(STRONG_ONLY, 14).items() if k != "organisation_id"},
        "rrule": "FREQ=WEEKLY;COUNT=2",
        "on_conflict": "skip",
    }
    _is_strong_refusal(site.api.post("/api/v1/booking-series", body, role="booker"))


def test_popup_requests_need_a_strong_session(site: Site) -> None:
    premises(site)
    weak, weak_csrf = session_client(site, "resident", strong=False)
    refused = weak.post(
        "/api/v1/popup-requests", json=popup(STRONG_ONLY), headers={"X-CSRF-Token": weak_csrf}
    )
    _is_strong_refusal(refused)
    strong, strong_csrf = session_client(site, "resident", strong=True)
    made = strong.post(
        "/api/v1/popup-requests", json=popup(STRONG_ONLY), headers={"X-CSRF-Token": strong_csrf}
    )
    assert made.status_code == 201, made.get_json()


def test_the_booking_page_says_how_to_sign_in_strongly(site: Site) -> None:
    premises(site)
    client, csrf = session_client(site, "booker", strong=False)
    client.get("/?lang=en")
    response = client.post(
        "/bookings/new",
        data={
            "csrf_token": csrf,
            "premises_id": STRONG_ONLY,
            "date": DAY.isoformat(),
            "start": "16:00",
            "end": "17:00",
            "title": "Kerhoilta",
            "attendees": "5",
        },
    )
    assert response.status_code == 403
    page = text(response)
    assert "Strong identification needed" in page
    assert PASSWORD not in page


def _round(site: Site) -> str:
    """An open allocation round over a strong-only gym and an ordinary hall."""
    rules = {
        "max_advance_days": 365,
        "max_duration_minutes": 180,
        "requires_strong_identity": True,
    }
    site.api.premises("gym", opening_hours=EVENINGS, rules=rules, capacity=60)
    site.api.premises("hall", opening_hours=EVENINGS, rules={"max_advance_days": 365}, capacity=60)
    made = site.api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert made.status_code == 201, made.get_json()
    return str(made.get_json()["id"])


def test_allocation_applications_need_a_strong_session(site: Site) -> None:
    """API.md: premises with the rule take allocation applications only from strong
    sessions — refused when any premises the application wishes for asks for it."""
    round_id = _round(site)
    path = f"/api/v1/allocation-rounds/{round_id}/applications"
    both = application()  # wishes for the gym (strong only) and the hall
    hall_only = application()
    hall_only["sections"][0]["premises"] = ["hall"]
    # A bearer token is no strong sign-in; nor is a weak session.
    _is_strong_refusal(site.api.post(path, both, role="booker"))
    weak, weak_csrf = session_client(site, "booker", strong=False)
    _is_strong_refusal(weak.post(path, json=both, headers={"X-CSRF-Token": weak_csrf}))
    with read_transaction(site.api.engine) as conn:
        assert conn.execute(select(func.count()).select_from(applications_table)).scalar() == 0
    # The weak session applies for the hall alone, but cannot add the gym afterwards.
    made = weak.post(path, json=hall_only, headers={"X-CSRF-Token": weak_csrf})
    assert made.status_code == 201, made.get_json()
    changed = weak.patch(
        f"/api/v1/applications/{made.get_json()['id']}",
        json={"sections": both["sections"]},
        headers={"X-CSRF-Token": weak_csrf, "If-Match": f'"{made.get_json()["version"]}"'},
    )
    _is_strong_refusal(changed)
    # A strong session applies for both; staff on behalf of an organisation are not asked.
    strong, strong_csrf = session_client(site, "other_booker", strong=True)
    placed = strong.post(path, json=both, headers={"X-CSRF-Token": strong_csrf})
    assert placed.status_code == 201, placed.get_json()
    staff = site.api.post(
        path, {**both, "organisation_id": site.api.organisation("Kolmas ry")}, role="staff"
    )
    assert staff.status_code == 201, staff.get_json()


def test_the_application_form_takes_strong_only_premises_from_strong_sessions(
    site: Site,
) -> None:
    """The page passes the session's strength to the use case: a weak session is told how
    to sign in strongly and nothing is stored; a strong one applies for the same wishes."""
    from tests.integration.test_rounds_pages import good_form

    round_id = _round(site)
    path = f"/rounds/{round_id}/apply"
    weak, weak_csrf = session_client(site, "booker", strong=False)
    weak.get("/?lang=en")
    refused = weak.post(path, data={**good_form(), "csrf_token": weak_csrf})
    assert refused.status_code == 403
    assert "Strong identification needed" in text(refused)
    with read_transaction(site.api.engine) as conn:
        assert conn.execute(select(func.count()).select_from(applications_table)).scalar() == 0
    strong, strong_csrf = session_client(site, "other_booker", strong=True)
    placed = strong.post(path, data={**good_form(), "csrf_token": strong_csrf})
    assert placed.status_code == 303, text(placed)[:2000]
    with read_transaction(site.api.engine) as conn:
        assert conn.execute(select(func.count()).select_from(applications_table)).scalar() == 1
