"""Signing in with OpenID Connect against a real provider (panva's oidc-provider run by node,
tests/oidc/harness.py), driven in headless Chromium: sign in and come back signed in, the
same person on a second sign-in, strong and weak `acr`, no takeover by e-mail; a tampered
state, a replayed code, a wrong audience, an expired ID token and an unknown issuer are each
refused with a clear page, and nothing is stored. SQLite (the protocol is the same on both
databases; sessions and people are tested on both in tests/integration)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import time_machine
from argon2 import PasswordHasher
from sqlalchemy import func, select
from werkzeug.serving import make_server

from booking import accounts
from booking import sessions as sessions_module
from booking.app import create_app
from booking.domain.commands import Actor
from booking.migrate import upgrade
from booking.oidc_people import oidc_identities
from booking.sessions import sessions
from booking.tables import users
from booking.usecases.accounts import assign_role
from booking.usecases.privacy import erase_person
from events.sql import make_engine, read_transaction, write_transaction
from events.store import Metadata, read_stream
from tests.browser.conftest import PASSWORD, _seed, axe_violations, screenshot
from tests.oidc import harness


@dataclass
class OidcSite:
    url: str
    app: Any
    engine: Any
    provider: harness.Provider
    emails: dict[str, str]

    def counts(self) -> tuple[int, int, int]:
        """(people, provider identities, sessions): what a refused sign-in must not change."""
        with read_transaction(self.engine) as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (users, oidc_identities, sessions)
            )


@pytest.fixture(scope="module")
def oidc_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcSite]:
    original = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    path = tmp_path_factory.mktemp("oidc") / "site.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    app = create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": str(engine.url),
            "SECRET_KEY": "oidc-browser-tests",
            "BOOKING_INSTANCE_PATH": str(path.parent),
            "BOOKING_RUN_SCHEDULER": False,
        }
    )
    seeded = _seed(engine)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    provider = harness.start(f"{url}/auth/oidc/callback")
    app.config.update(
        BOOKING_OIDC_ISSUER=provider.issuer,
        BOOKING_OIDC_CLIENT_ID="tilavaraus",
        BOOKING_OIDC_CLIENT_SECRET=harness.SECRET,
        BOOKING_OIDC_STRONG_ACR=f"{harness.STRONG_ACR},http://ftn.ficora.fi/2017/loa2",
    )
    yield OidcSite(url, app, engine, provider, seeded.emails)
    provider.stop()
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()
    accounts._hasher = original


@pytest.fixture(autouse=True)
def _same_time_as_the_provider(
    oidc_site: OidcSite, clock: time_machine.Coordinates, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """This test's clock reads what the provider's does (see tests/oidc/harness.py)."""
    clock.move_to(oidc_site.provider.now())
    caplog.set_level(logging.INFO, logger="booking.pages.oidc")
    yield
    oidc_site.app.config["BOOKING_OIDC_CLIENT_ID"] = "tilavaraus"
    oidc_site.app.config["BOOKING_OIDC_ISSUER"] = oidc_site.provider.issuer
    oidc_site.app.config.pop("BOOKING_OIDC_ROLE_CLAIM", None)
    oidc_site.app.config.pop("BOOKING_OIDC_ROLE_MAP", None)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    made.set_default_timeout(15_000)
    yield made
    made.close()


def provider_sign_in(page: Any, site: OidcSite, account: str, start: str = "/login") -> Any:
    """From our sign-in page through the provider's form; the page where it ends."""
    page.goto(site.url + start)
    page.click("#oidc-login")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")
    page.fill("#login", account)
    with page.expect_response(lambda r: "/auth/oidc/callback" in r.url) as answer:
        page.click("button[type=submit]")
    page.wait_for_load_state()
    return answer.value


def provider_answer(page: Any, site: OidcSite, account: str) -> str:
    """Sign in at the provider from our sign-in page, but hold its answer: the callback URL
    (code and state) it sends the browser to, which the browser has not visited yet."""
    held: list[str] = []

    def hold(route: Any) -> None:
        # The form's POST is the first request of its chain, so it can be intercepted; the
        # redirects after it are followed here, in the browser context's cookies.
        answer = route.fetch(max_redirects=0)
        location = answer.headers["location"]
        while "/auth/oidc/callback" not in location:
            answer = page.request.get(location, max_redirects=0)
            location = answer.headers["location"]
        held.append(location)
        route.fulfill(status=200, content_type="text/html", body="<p>held</p>")

    page.route(f"{site.provider.issuer}/interaction/*/login", hold)
    page.goto(site.url + "/login")
    page.click("#oidc-login")
    page.wait_for_url(f"{site.provider.issuer}/interaction/**")
    page.fill("#login", account)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.unroute(f"{site.provider.issuer}/interaction/*/login")
    assert len(held) == 1
    return held[0]


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def param(url: str, name: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))[name]


def signed_in(page: Any) -> bool:
    return bool(page.locator(".who").count() == 1)


def my_sessions(page: Any, site: OidcSite) -> list[dict[str, Any]]:
    response = page.request.get(f"{site.url}/api/v1/users/me/sessions")
    assert response.status == 200, response.text()
    found: list[dict[str, Any]] = response.json()["sessions"]
    return found


def me(page: Any, site: OidcSite) -> dict[str, Any]:
    response = page.request.get(f"{site.url}/api/v1/users/me")
    assert response.status == 200, response.text()
    found: dict[str, Any] = response.json()
    return found


def test_sign_in_and_come_back_signed_in_as_the_same_person(
    context: Any, browser: Any, oidc_site: OidcSite, axe_source: str
) -> None:
    page = context.new_page()
    page.goto(oidc_site.url + "/login")
    assert axe_violations(page, axe_source) == []
    answer = provider_sign_in(page, oidc_site, "weak-resident")
    assert answer.status == 303
    assert signed_in(page), page.content()[:2000]
    assert "Heikki Heikko" in page.locator(".who").inner_text()
    screenshot(page, "oidc-signed-in")
    first = me(page, oidc_site)
    assert first["role"] == "resident" and first["email"] == "heikki@example.fi"
    assert [s["strong"] for s in my_sessions(page, oidc_site)] == [False]
    # Only the pseudonymous pair is in clear: the name and e-mail are sealed.
    with read_transaction(oidc_site.engine) as conn:
        row = conn.execute(select(users).where(users.c.id == first["id"])).one()
        pair = conn.execute(select(oidc_identities)).all()
    assert row.email.startswith("pd1.") and "heikki" not in row.email + row.name
    assert row.email_hash is None
    assert [(p.issuer, p.subject) for p in pair] == [(oidc_site.provider.issuer, "weak-resident")]
    # A second sign-in, in another browser, is the same person.
    other = browser.new_context(locale="en-GB")
    try:
        again = other.new_page()
        provider_sign_in(again, oidc_site, "weak-resident")
        assert signed_in(again)
        assert me(again, oidc_site)["id"] == first["id"]
        assert len(my_sessions(again, oidc_site)) == 2
    finally:
        other.close()


def test_a_strong_acr_makes_a_strong_session(context: Any, oidc_site: OidcSite) -> None:
    page = context.new_page()
    provider_sign_in(page, oidc_site, "strong-resident")
    assert signed_in(page)
    assert [s["strong"] for s in my_sessions(page, oidc_site)] == [True]


def test_a_matching_e_mail_never_takes_over_an_account(context: Any, oidc_site: OidcSite) -> None:
    page = context.new_page()
    provider_sign_in(page, oidc_site, "same-email")
    assert signed_in(page)
    found = me(page, oidc_site)
    assert found["role"] == "resident" and found["email"] == "booker@example.fi"
    with read_transaction(oidc_site.engine) as conn:
        booker = accounts.user_id_by_email(conn, "booker@example.fi")
    assert booker is not None and booker != found["id"]
    # The password still signs in the account that had the address.
    fresh = context.browser.new_context()
    try:
        password_page = fresh.new_page()
        password_page.goto(oidc_site.url + "/login")
        password_page.fill("#f-email", "booker@example.fi")
        password_page.fill("#f-password", PASSWORD)
        password_page.click("form.panel button[type=submit]")
        password_page.wait_for_load_state()
        assert me(password_page, oidc_site)["id"] == booker
    finally:
        fresh.close()


def _refused(page: Any, still_signed_in: bool = False) -> None:
    """The refusal page (a browser signed in before stays signed in as it was)."""
    assert page.locator("h1").inner_text() == "Sign-in did not succeed"
    assert signed_in(page) == still_signed_in


def test_a_tampered_state_is_refused_and_stores_nothing(
    context: Any, oidc_site: OidcSite, axe_source: str
) -> None:
    page = context.new_page()
    before = oidc_site.counts()
    answer = provider_answer(page, oidc_site, "weak-resident")
    tampered = with_param(answer, "state", param(answer, "state")[:-2] + "xy")
    response = page.goto(tampered)
    assert response.status == 400
    _refused(page)
    assert "Nothing was saved" in page.content()
    assert axe_violations(page, axe_source) == []
    screenshot(page, "oidc-refused")
    assert oidc_site.counts() == before
    # The real state is used up by the attempt: the untampered answer no longer works.
    assert page.goto(answer).status == 400
    assert oidc_site.counts() == before


def test_a_callback_without_state_is_refused(context: Any, oidc_site: OidcSite) -> None:
    page = context.new_page()
    response = page.goto(oidc_site.url + "/auth/oidc/callback?code=abc")
    assert response.status == 400
    _refused(page)


def test_an_answer_in_another_browser_is_refused(
    context: Any, browser: Any, oidc_site: OidcSite
) -> None:
    """The state is bound to the browser that began the sign-in (no login CSRF)."""
    answer = provider_answer(context.new_page(), oidc_site, "weak-resident")
    before = oidc_site.counts()
    other = browser.new_context()
    try:
        page = other.new_page()
        assert page.goto(answer).status == 400
        _refused(page)
    finally:
        other.close()
    assert oidc_site.counts() == before


def test_a_replayed_code_is_refused_and_stores_nothing(
    context: Any, oidc_site: OidcSite, caplog: pytest.LogCaptureFixture
) -> None:
    page = context.new_page()
    used = provider_answer(page, oidc_site, "weak-resident")
    assert page.goto(used).status == 200 and signed_in(page)
    before = oidc_site.counts()
    # The same answer again: its state is used up.
    assert page.goto(used).status == 400
    _refused(page, still_signed_in=True)
    # The used code under a fresh state of this browser's own: the provider will not trade
    # a code twice.
    fresh = provider_answer(page, oidc_site, "weak-resident")
    response = page.goto(with_param(fresh, "code", param(used, "code")))
    assert response.status == 400
    _refused(page, still_signed_in=True)
    assert "token endpoint: invalid_grant" in caplog.text  # refused by the provider itself
    assert oidc_site.counts() == before


def test_a_wrong_audience_is_refused_and_stores_nothing(
    context: Any, oidc_site: OidcSite, caplog: pytest.LogCaptureFixture
) -> None:
    oidc_site.app.config["BOOKING_OIDC_CLIENT_ID"] = "wrong-audience"
    before = oidc_site.counts()
    page = context.new_page()
    assert provider_sign_in(page, oidc_site, "weak-resident").status == 400
    _refused(page)
    assert "ID token" in caplog.text and "'aud'" in caplog.text
    assert oidc_site.counts() == before


def test_an_expired_id_token_is_refused_and_stores_nothing(
    context: Any,
    oidc_site: OidcSite,
    clock: time_machine.Coordinates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The `short-lived` client's ID tokens live one second; the app's clock reads five
    minutes later than the provider's when the token arrives (skew allowed: one minute)."""
    oidc_site.app.config["BOOKING_OIDC_CLIENT_ID"] = "short-lived"
    before = oidc_site.counts()
    page = context.new_page()
    page.goto(oidc_site.url + "/login")
    page.click("#oidc-login")
    page.wait_for_url(f"{oidc_site.provider.issuer}/interaction/**")
    clock.shift(timedelta(minutes=5))
    page.fill("#login", "weak-resident")
    with page.expect_response(lambda r: "/auth/oidc/callback" in r.url) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 400
    _refused(page)
    assert "ID token" in caplog.text and "expired" in caplog.text
    assert oidc_site.counts() == before


def test_the_short_lived_client_signs_in_when_the_clocks_agree(
    context: Any, oidc_site: OidcSite
) -> None:
    """The control for the test above: the same client, the same clocks, no delay."""
    oidc_site.app.config["BOOKING_OIDC_CLIENT_ID"] = "short-lived"
    page = context.new_page()
    assert provider_sign_in(page, oidc_site, "weak-resident").status == 303
    assert signed_in(page)


def test_an_unknown_issuer_gives_a_clear_page_and_passwords_still_work(
    context: Any, oidc_site: OidcSite, axe_source: str
) -> None:
    oidc_site.app.config["BOOKING_OIDC_ISSUER"] = f"http://127.0.0.1:{harness.free_port()}"
    before = oidc_site.counts()
    page = context.new_page()
    page.goto(oidc_site.url + "/login")
    with page.expect_response(lambda r: "/auth/oidc/login" in r.url) as answer:
        page.click("#oidc-login")
    assert answer.value.status == 502
    assert "could not be reached" in page.content()
    assert axe_violations(page, axe_source) == []
    api = page.request.get(
        f"{oidc_site.url}/auth/oidc/login", headers={"Accept": "application/json"}
    )
    assert api.status == 502 and api.headers["content-type"] == "application/problem+json"
    assert api.json()["status"] == 502
    assert oidc_site.counts() == before
    page.goto(oidc_site.url + "/login")
    page.fill("#f-email", oidc_site.emails["resident"])
    page.fill("#f-password", PASSWORD)
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state()
    assert signed_in(page)


def _signs_in_as(browser: Any, site: OidcSite, account: str) -> dict[str, Any]:
    """`account` signs in through the provider in a browser of its own; who they are then."""
    fresh = browser.new_context(locale="en-GB")
    try:
        page = fresh.new_page()
        assert provider_sign_in(page, site, account).status == 303
        assert signed_in(page)
        return me(page, site)
    finally:
        fresh.close()


def test_a_claim_maps_to_a_role_only_where_configured(browser: Any, oidc_site: OidcSite) -> None:
    """Unset, the provider's `groups` grant nothing; set, the highest mapped role is the
    person's, and taken back when the provider stops granting it; a role an admin gave is
    left alone when the claim maps to nothing."""
    config = oidc_site.app.config
    unmapped = _signs_in_as(browser, oidc_site, "staff-member")
    assert unmapped["role"] == "resident"
    config["BOOKING_OIDC_ROLE_CLAIM"] = "groups"
    config["BOOKING_OIDC_ROLE_MAP"] = "tilavaraus-staff=staff,tilavaraus-admin=admin"
    staff = _signs_in_as(browser, oidc_site, "staff-member")
    assert (staff["id"], staff["role"]) == (unmapped["id"], "staff")
    assert _signs_in_as(browser, oidc_site, "city-admin")["role"] == "admin"
    assert _signs_in_as(browser, oidc_site, "weak-resident")["role"] == "resident"
    # The directory no longer grants the role (here: the map no longer names the group).
    config["BOOKING_OIDC_ROLE_MAP"] = "tilavaraus-former-staff=staff"
    assert _signs_in_as(browser, oidc_site, "staff-member")["role"] == "resident"
    with read_transaction(oidc_site.engine) as conn:
        changes = [
            (e.data["role"], e.data["by"])
            for e in read_stream(conn, f"user-{unmapped['id']}")
            if e.type == "UserRoleChanged"
        ]
    assert changes == [("staff", "provider"), ("resident", "provider")]
    # An admin's choice stays while the claim maps to nothing.
    with write_transaction(oidc_site.engine) as conn:
        admin = Actor("some-admin", "admin", None)
        assign_role(
            conn, admin, unmapped["id"], "analyst", None, oidc_site.provider.now(), Metadata()
        )
    assert _signs_in_as(browser, oidc_site, "staff-member")["role"] == "analyst"


def test_a_disabled_person_is_signed_out_and_cannot_sign_in_again(
    context: Any, browser: Any, oidc_site: OidcSite, axe_source: str
) -> None:
    page = context.new_page()
    provider_sign_in(page, oidc_site, "to-be-disabled")
    person = me(page, oidc_site)["id"]
    with write_transaction(oidc_site.engine) as conn:
        sessions_module.disable(conn, person, oidc_site.provider.now(), "some-admin")
    page.goto(oidc_site.url + "/my")
    assert not signed_in(page)  # the session ended at once
    before = oidc_site.counts()
    again = browser.new_context(locale="en-GB")
    try:
        fresh = again.new_page()
        assert provider_sign_in(fresh, oidc_site, "to-be-disabled").status == 403
        assert "This account has been disabled." in fresh.content()
        assert axe_violations(fresh, axe_source) == []
        assert not signed_in(fresh)
    finally:
        again.close()
    assert oidc_site.counts() == before


def test_an_erased_person_who_comes_back_is_someone_new(browser: Any, oidc_site: OidcSite) -> None:
    first = _signs_in_as(browser, oidc_site, "to-be-erased")
    with write_transaction(oidc_site.engine) as conn:
        admin = Actor("some-admin", "admin", None)
        erase_person(
            conn,
            oidc_site.app.extensions["tilavaraus"].vault,
            admin,
            first["id"],
            oidc_site.provider.now(),
        )
    with read_transaction(oidc_site.engine) as conn:
        ended = conn.execute(
            select(func.count())
            .select_from(sessions)
            .where(sessions.c.user_id == first["id"], sessions.c.ended_at.is_(None))
        ).scalar_one()
    assert ended == 0
    second = _signs_in_as(browser, oidc_site, "to-be-erased")
    assert second["id"] != first["id"] and second["name"] == "Eeva Poistettava"
    with read_transaction(oidc_site.engine) as conn:
        pairs = conn.execute(
            select(oidc_identities.c.user_id).where(oidc_identities.c.subject == "to-be-erased")
        ).all()
    assert [p.user_id for p in pairs] == [second["id"]]


def test_an_issuer_that_discovery_does_not_confirm_is_refused(
    context: Any, oidc_site: OidcSite
) -> None:
    """Discovery must name exactly the configured issuer (here: one with a trailing slash,
    whose discovery document is the real provider's)."""
    oidc_site.app.config["BOOKING_OIDC_ISSUER"] = oidc_site.provider.issuer + "/"
    before = oidc_site.counts()
    page = context.new_page()
    response = page.goto(oidc_site.url + "/auth/oidc/login")
    assert response.status == 502 and "could not be reached" in page.content()
    assert oidc_site.counts() == before
