"""Signing in and out through the pages: passwords, CSRF, the rate limit, safe redirects and
the residents' e-mailed sign-in link. Both databases."""

from __future__ import annotations

import logging
import re

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from booking.outbox import outbox
from booking.pages import signin
from booking.tables import users
from events.sql import read_transaction
from tests.integration.test_pages_helpers import (
    PASSWORD,
    Site,
    _fresh_limits,
    csrf_token,
    post_form,
    site,
    text,
)

__all__ = ["_fresh_limits", "site"]


def test_sign_in_with_password_and_out_again(site: Site) -> None:
    site.user_id("booker")
    client = site.client(lang="en")
    response = post_form(
        client, "/login", {"email": "BOOKER@example.fi ", "password": PASSWORD, "next": "/my"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/my"
    page = text(client.get("/my"))
    assert "Signed in as Test booker" in page
    assert client.get("/my/bookings").status_code == 200
    out = post_form(client, "/logout", {}, page="/my")
    assert out.status_code == 303
    assert client.get("/my/bookings").status_code == 302  # to the sign-in page again
    assert '<html lang="en">' in text(client.get("/"))  # the language outlives the session


def test_wrong_password_shows_the_error_in_finnish_and_keeps_the_address(site: Site) -> None:
    site.user_id("booker")
    client = site.client()
    response = post_form(client, "/login", {"email": "booker@example.fi", "password": "nope"})
    assert response.status_code == 422
    page = text(response)
    assert "Sähköpostiosoite tai salasana on väärin." in page
    assert 'value="booker@example.fi"' in page and 'value="nope"' not in page
    assert 'href="#f-email"' in page
    assert client.get("/my").status_code == 302  # still signed out


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    site.user_id("booker")
    client = site.client()
    client.get("/login")
    response = client.post("/login", data={"email": "booker@example.fi", "password": PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == "text/html" and "Lomake oli vanhentunut" in text(response)
    assert client.get("/my").status_code == 302
    # The bearer-token API needs no CSRF token (it never reads the session cookie).
    assert client.post("/api/v1/bookings", json={}).status_code == 401


def test_sign_in_is_rate_limited_per_address(site: Site) -> None:
    site.user_id("staff"), site.user_id("booker")
    client = site.client(lang="en")
    for _ in range(5):
        wrong = post_form(client, "/login", {"email": "staff@example.fi", "password": "x"})
        assert wrong.status_code == 422
    blocked = post_form(client, "/login", {"email": "staff@example.fi", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in text(blocked)
    # Another address from the same client is not blocked by these five.
    fine = post_form(client, "/login", {"email": "booker@example.fi", "password": PASSWORD})
    assert fine.status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:x"])
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    site.user_id("booker")
    client = site.client()
    response = post_form(
        client, "/login", {"email": "booker@example.fi", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_pages_that_need_a_role_redirect_or_refuse(site: Site) -> None:
    anonymous = site.client()
    response = anonymous.get("/my/bookings")
    assert (
        response.status_code == 302 and "/login?next=/my/bookings" in response.headers["Location"]
    )
    resident = site.client("resident")
    assert resident.get("/my/bookings").status_code == 403
    assert resident.get("/staff/requests").status_code == 403
    assert site.client("booker").get("/staff/premises").status_code == 403
    assert site.client("analyst").get("/stats").status_code == 200


def _mailed_links(site: Site) -> list[tuple[str, str, str]]:
    """(recipient id, language, link path) of every sign-in mail in the outbox."""
    with read_transaction(site.api.engine) as conn:
        rows = conn.execute(
            select(outbox.c.recipient_id, outbox.c.language, outbox.c.body).where(
                outbox.c.dedupe_key.like("sign-in-link:%")
            )
        ).all()
    return [
        (r.recipient_id, r.language, re.search(r"http://localhost(/login/link/\S+)", r.body)[1])
        for r in rows
    ]


def test_resident_signs_up_and_in_with_an_emailed_link(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = site.client(lang="en")
    with caplog.at_level(logging.INFO):
        response = post_form(
            client, "/signup", {"email": "Asukas@Example.fi", "name": "Aino Asukas"}
        )
    assert response.status_code == 200
    assert "We sent a sign-in link to asukas@example.fi" in text(response)
    mailed = _mailed_links(site)
    assert len(mailed) == 1 and mailed[0][1] == "en"
    links = [mailed[0][2]]
    assert "asukas@example.fi" not in caplog.text.lower()  # logs name people by id only
    assert links[0] not in caplog.text  # nor do they carry the link
    # Opening the link signs nobody in (mail scanners open links); the button does.
    page = client.get(links[0])
    assert page.status_code == 200 and client.get("/my").status_code == 302
    signed = post_form(client, links[0], {}, page=links[0])
    assert signed.status_code == 303
    assert "Signed in as Aino Asukas" in text(client.get("/my"))
    assert client.get("/popup/new").status_code == 200
    assert client.get("/my/bookings").status_code == 403  # bookings are for organisations


def test_a_known_address_gets_a_link_too_and_nothing_is_created_twice(site: Site) -> None:
    client = site.client()
    booker = site.user_id("booker")
    post_form(client, "/signup", {"email": "booker@example.fi"}, page="/signup")
    # Asking twice within a second gives the same link: the outbox keeps one mail.
    post_form(client, "/signup", {"email": "booker@example.fi"}, page="/signup")
    assert {m[0] for m in _mailed_links(site)} == {booker}
    with read_transaction(site.api.engine) as conn:
        assert len(conn.execute(select(users.c.id)).all()) == 1


def test_bad_and_expired_links_are_refused(site: Site) -> None:
    client = site.client(lang="en")
    assert client.get("/login/link/not-a-token").status_code == 404
    old = URLSafeTimedSerializer("tests", salt="tilavaraus-sign-in-link").dumps(
        {"user": site.user_id("resident")}
    )
    original = signin.LINK_MAX_AGE
    signin.LINK_MAX_AGE = -1
    try:
        assert client.get(f"/login/link/{old}").status_code == 410
    finally:
        signin.LINK_MAX_AGE = original
    forged = URLSafeTimedSerializer("other", salt="tilavaraus-sign-in-link").dumps({"user": "x"})
    assert client.get(f"/login/link/{forged}").status_code == 404


def test_signup_checks_the_address(site: Site) -> None:
    client = site.client()
    response = post_form(client, "/signup", {"email": "not an address"}, page="/signup")
    assert response.status_code == 422
    assert "Tämä ei ole sähköpostiosoite." in text(response)
    assert csrf_token(client, "/signup")
