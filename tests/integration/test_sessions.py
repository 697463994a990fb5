"""Sessions that end (API.md "Signing in with OpenID Connect"): kept in the database, ended
at once by /logout, by the person, by disabling or erasing them; cookies HttpOnly, Lax,
Secure over https and new at each sign-in; the API with the cookie needs the CSRF token;
sign-in limits hold across workers. Both databases."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import func, select

from booking.app import create_app
from booking.auth import COOKIE
from booking.sessions import sessions
from events.sql import read_transaction
from tests.integration.test_pages_helpers import (
    PASSWORD,
    Site,
    _fresh_limits,
    post_form,
    sign_in,
    site,
    text,
)

__all__ = ["_fresh_limits", "site"]
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None, "no session cookie"
    return found.value


def meta_token(client: FlaskClient, path: str = "/my") -> str:
    found = _META.search(text(client.get(path)))
    assert found, "no csrf-token meta"
    return found.group(1)


def signed_in_page(client: FlaskClient) -> bool:
    return client.get("/my").status_code == 200


def test_cookie_is_httponly_lax_and_secure_only_over_https(site: Site) -> None:
    site.user_id("booker")
    plain = site.client()
    response = post_form(plain, "/login", {"email": "booker@example.fi", "password": PASSWORD})
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    assert "Max-Age=43200" in header
    secure = site.app.test_client()
    page = secure.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = secure.post(
        "/login",
        base_url="https://localhost",
        data={"email": "booker@example.fi", "password": PASSWORD, "csrf_token": token[1]},
        headers={"Referer": "https://localhost/login"},
    )
    assert response.status_code == 303
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
    assert "Secure" in header and "HttpOnly" in header


def test_logout_ends_the_session_and_a_copied_cookie_stops_working(site: Site) -> None:
    site.user_id("booker")
    client = site.client("booker")
    stolen = cookie(client)
    thief = site.app.test_client()
    thief.set_cookie(COOKIE, stolen)
    assert signed_in_page(thief)
    assert post_form(client, "/logout", {}, page="/my").status_code == 303
    assert not signed_in_page(client)
    assert not signed_in_page(thief)  # the copy is dead too
    with read_transaction(site.api.engine) as conn:
        ended = conn.execute(select(sessions.c.ended_at)).scalar_one()
    assert ended is not None


def test_each_sign_in_gets_a_new_cookie_and_ends_the_old_session(site: Site) -> None:
    site.user_id("booker")
    client = site.client("booker")
    first = cookie(client)
    sign_in(client, "booker@example.fi")
    second = cookie(client)
    assert first != second
    old = site.app.test_client()
    old.set_cookie(COOKIE, first)
    assert not signed_in_page(old)
    assert signed_in_page(client)


def test_only_the_hash_of_the_cookie_is_stored(site: Site) -> None:
    site.user_id("booker")
    client = site.client("booker")
    secret = cookie(client)
    with read_transaction(site.api.engine) as conn:
        row = conn.execute(select(sessions)).one()
    assert secret not in (row.id, row.secret_hash) and len(row.secret_hash) == 64


def test_a_session_ends_after_idle_time_and_after_its_lifetime(
    site: Site, clock: time_machine.Coordinates
) -> None:
    site.user_id("booker")
    idle = site.client("booker")
    clock.shift(timedelta(hours=2, minutes=1))
    assert not signed_in_page(idle)
    busy = site.client("booker")
    for _ in range(7):  # used every 110 minutes: never idle, but 12 hours is the end
        clock.shift(timedelta(minutes=110))
        if not signed_in_page(busy):
            break
    else:
        raise AssertionError("a session outlived its 12 hours")


def test_people_list_and_end_their_sessions_with_the_api(site: Site) -> None:
    site.user_id("booker")
    laptop, phone, tablet = (site.client("booker") for _ in range(3))
    listed = laptop.get("/api/v1/users/me/sessions")
    assert listed.status_code == 200
    found = listed.get_json()["sessions"]
    assert len(found) == 3
    assert [s["current"] for s in found].count(True) == 1
    assert all(s["strong"] is False for s in found)
    assert set(found[0]) == {"id", "created_at", "last_seen_at", "current", "strong"}
    # API.md: instants that belong to no premises are in UTC, written with `Z`.
    assert found[0]["created_at"].endswith("Z") and found[0]["last_seen_at"].endswith("Z")
    phone_id = phone.get("/api/v1/users/me/sessions").get_json()["sessions"]
    phone_id = next(s["id"] for s in phone_id if s["current"])
    token = meta_token(laptop)
    # A write with the cookie but without the CSRF token is refused and changes nothing.
    refused = laptop.delete(f"/api/v1/users/me/sessions/{phone_id}")
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
    assert signed_in_page(phone)
    keyed = {"X-CSRF-Token": token, "Idempotency-Key": "end-phone"}
    ended = laptop.delete(f"/api/v1/users/me/sessions/{phone_id}", headers=keyed)
    assert ended.status_code == 204
    assert not signed_in_page(phone) and signed_in_page(laptop) and signed_in_page(tablet)
    # API.md: the same Idempotency-Key returns the first response again (not a 404).
    replay = laptop.delete(f"/api/v1/users/me/sessions/{phone_id}", headers=keyed)
    assert replay.status_code == 204
    again = laptop.delete(f"/api/v1/users/me/sessions/{phone_id}", headers={"X-CSRF-Token": token})
    assert again.status_code == 404
    rest = laptop.delete("/api/v1/users/me/sessions", headers={"X-CSRF-Token": token})
    assert rest.status_code == 204
    assert signed_in_page(laptop) and not signed_in_page(tablet)
    left = laptop.get("/api/v1/users/me/sessions").get_json()["sessions"]
    assert [s["current"] for s in left] == [True]


def test_nobody_ends_another_persons_session(site: Site) -> None:
    site.user_id("booker"), site.user_id("staff")
    booker, staff = site.client("booker"), site.client("staff")
    booker_session = booker.get("/api/v1/users/me/sessions").get_json()["sessions"][0]["id"]
    response = staff.delete(
        f"/api/v1/users/me/sessions/{booker_session}",
        headers={"X-CSRF-Token": meta_token(staff)},
    )
    assert response.status_code == 404
    assert signed_in_page(booker)


def test_the_api_reads_with_the_cookie_and_a_bearer_token_needs_no_csrf(site: Site) -> None:
    site.user_id("booker")
    client = site.client("booker")
    me = client.get("/api/v1/users/me")
    assert me.status_code == 200 and me.get_json()["role"] == "booker"
    token = site.api.token("admin")
    response = site.app.test_client().delete(
        "/api/v1/users/me/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204
    assert site.app.test_client().get("/api/v1/users/me").status_code == 401


def _disable(site: Site, user_id: str, role: str = "admin") -> Any:
    return site.api.post(f"/api/v1/users/{user_id}/disable", role=role)


def test_disabling_ends_sessions_and_tokens_and_sign_in(site: Site) -> None:
    user_id = site.user_id("booker")
    client = site.client("booker")
    token = site.api.user("resident")
    assert _disable(site, user_id, role="staff").status_code == 403
    assert site.api.post("/api/v1/users/nobody/disable", role="admin").status_code == 404
    response = _disable(site, user_id)
    assert response.status_code == 200 and response.get_json()["disabled"] is True
    assert not signed_in_page(client)
    again = post_form(
        site.app.test_client(), "/login", {"email": "booker@example.fi", "password": PASSWORD}
    )
    assert again.status_code == 403
    assert _disable(site, user_id).get_json() == response.get_json()  # twice: no change
    # Disabling a resident revokes their API token at once.
    resident_id = site.api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    resident_id = resident_id.get_json()["id"]
    assert _disable(site, resident_id).status_code == 200
    me = site.app.test_client().get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 401


def test_erasing_a_person_ends_their_sessions(site: Site) -> None:
    user_id = site.user_id("booker")
    client = site.client("booker")
    assert site.api.post(f"/api/v1/users/{user_id}/erase", role="admin").status_code == 200
    assert not signed_in_page(client)
    with read_transaction(site.api.engine) as conn:
        live = conn.execute(
            select(func.count()).select_from(sessions).where(sessions.c.ended_at.is_(None))
        ).scalar_one()
    assert live == 0


def test_every_page_carries_the_csrf_token_in_a_meta_tag(site: Site) -> None:
    anonymous = site.client()
    assert _META.search(text(anonymous.get("/")))
    assert _META.search(text(anonymous.get("/login")))


def test_sign_in_limits_hold_across_workers(site: Site) -> None:
    """Two app instances (two workers) on one database share the count."""
    site.user_id("staff")
    other_worker = create_app(dict(site.app.config))
    first, second = site.app.test_client(), other_worker.test_client()
    for n in range(5):
        client = first if n % 2 else second
        wrong = post_form(client, "/login", {"email": "staff@example.fi", "password": "x"})
        assert wrong.status_code == 422
    for client in (first, second):
        blocked = post_form(client, "/login", {"email": "staff@example.fi", "password": PASSWORD})
        assert blocked.status_code == 429
