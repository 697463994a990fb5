"""Browser tests: the real app served by a real HTTP server thread on 127.0.0.1, driven by
Debian's Chromium through Playwright, with axe-core injected for accessibility checks.

Without Chromium (or axe-core) these tests skip locally; under CI=true they fail instead.
Screenshots go to test-artifacts/screenshots/ (git-ignored, kept by CI as artifacts).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from werkzeug.serving import make_server

from booking import accounts
from booking.app import create_app
from booking.clock import system_clock
from booking.migrate import upgrade
from booking.tables import organisations
from events.sql import make_engine, write_transaction
from projections.runner import catch_up
from tests.conftest import premises_body

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TILAVARAUS_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "salasana-123"
HELSINKI = ZoneInfo("Europe/Helsinki")


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: browser tests must not skip)")
    pytest.skip(message)


def axe_path() -> Path | None:
    candidates = [
        os.environ.get("AXE_CORE_PATH", ""),
        str(ROOT / "node_modules" / "axe-core" / "axe.min.js"),
        str(ROOT / ".ci" / "node_modules" / "axe-core" / "axe.min.js"),
        str(Path.home() / ".cache" / "tilavaraus-axe" / "node_modules" / "axe-core" / "axe.min.js"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def axe_source() -> str:
    found = axe_path()
    if found is None:
        _missing("axe-core not found: set AXE_CORE_PATH or `npm install axe-core@4`")
    assert found is not None
    return found.read_text()


_FAKETIME = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")


def _without_faketime_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _FAKETIME}


@contextmanager
def _without_faketime() -> Iterator[None]:
    """Child processes started inside run on the machine's real clock."""
    saved = {k: os.environ.pop(k) for k in _FAKETIME if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    # Chromium hangs under libfaketime (CI runs the suite with the machine's clock faked): the
    # browser and its driver run on the real clock. The app they talk to keeps the tests'.
    with _without_faketime():
        playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        env=_without_faketime_env(),
        headless=True,
        args=[
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
        ],
    )
    yield browser
    browser.close()
    playwright.stop()


@dataclass
class Site:
    """The served app and what was put in it."""

    url: str
    engine: Any
    emails: dict[str, str] = field(default_factory=dict)
    day: date = date(2000, 1, 1)  # the Monday of the week the tests book in (set below)
    booking_id: str = ""

    def week_url(self, premises_id: str = "kirjasto-kokoushuone") -> str:
        return f"{self.url}/premises/{premises_id}?week={self.day.isoformat()}"


def _seed(engine: Any) -> Site:
    site = Site(url="", engine=engine)
    with write_transaction(engine) as conn:
        org = accounts.create_organisation(
            conn, "Mikkelin Shakkikerho ry", "association", None, None
        )
        for role in ("booker", "staff", "analyst", "resident"):
            email = f"{role}@example.fi"
            accounts.create_user(
                conn,
                email=email,
                name=f"Testi {role}",
                role=role,
                organisation_id=org if role == "booker" else None,
                password=PASSWORD,
            )
            site.emails[role] = email
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # Cheapest Argon2 settings for the seeded passwords (verification reads them from the hash).
    original = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    path = tmp_path_factory.mktemp("browser") / "site.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    app = create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": str(engine.url),
            "SECRET_KEY": "browser-tests",
            "BOOKING_INSTANCE_PATH": str(path.parent),
            "BOOKING_RUN_SCHEDULER": False,
        }
    )
    site = _seed(engine)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_port}"
    today = datetime.now(UTC).astimezone(HELSINKI).date()
    site.day = today + timedelta(days=7 - today.weekday() + 7)  # the Monday after next
    _premises(site, app)
    # The asynchronous projections (statistics, registry) see the history.
    catch_up(engine, clock=system_clock)
    yield site
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()
    accounts._hasher = original


def _premises(site: Site, app: Any) -> None:
    """Premises through the real API, as staff would add them."""
    client = app.test_client()
    with write_transaction(site.engine) as conn:
        token = accounts.issue_token(conn, _user_id(conn, site.emails["staff"]))
    headers = {"Authorization": f"Bearer {token}"}
    for body in (
        premises_body(
            "kirjasto-kokoushuone",
            name={"fi": "Kirjaston kokoushuone", "en": "Library meeting room"},
            rules={"popup_allowed": True},
        ),
        premises_body(
            "nuorisotalo-sali",
            name={"fi": "Nuorisotalon sali", "en": "Youth centre hall"},
            district="rantakylä",
            capacity=60,
            free_of_charge=False,
            hourly_price_cents=2500,
            rules={"requires_approval": True},
        ),
        # A gym that splits in halves: the whole and one half (premises made of spaces).
        premises_body(
            "koulu-sali",
            name={"fi": "Koulun sali", "en": "School gym"},
            spaces=["koulu-ita", "koulu-lansi"],
        ),
        premises_body(
            "koulu-sali-ita",
            name={"fi": "Koulun sali, itäpää", "en": "School gym, east end"},
            spaces=["koulu-ita"],
        ),
    ):
        response = client.post("/api/v1/premises", json=body, headers=headers)
        assert response.status_code == 201, response.get_json()
    whole = client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "koulu-sali",
            "start": datetime.combine(site.day, datetime.min.time(), HELSINKI)
            .replace(hour=17)
            .isoformat(),
            "end": datetime.combine(site.day, datetime.min.time(), HELSINKI)
            .replace(hour=19)
            .isoformat(),
            "title": "Salibandy",
            "organisation_id": _organisation_id(site),
        },
        headers=headers,
    )
    assert whole.status_code == 201, whole.get_json()
    placed = client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "kirjasto-kokoushuone",
            "start": datetime.combine(site.day, datetime.min.time(), HELSINKI)
            .replace(hour=10)
            .isoformat(),
            "end": datetime.combine(site.day, datetime.min.time(), HELSINKI)
            .replace(hour=12)
            .isoformat(),
            "title": "Lukupiiri",
            "public": True,
            "organisation_id": _organisation_id(site),
        },
        headers=headers,
    )
    assert placed.status_code == 201, placed.get_json()
    site.booking_id = placed.get_json()["id"]


def _user_id(conn: Any, email: str) -> str:
    return str(accounts.user_id_by_email(conn, email))  # found by the address's keyed hash


def _organisation_id(site: Site) -> str:
    with write_transaction(site.engine) as conn:
        return str(conn.execute(select(organisations.c.id)).scalar_one())


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(locale="fi-FI", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda message: (
            page.csp_errors.append(message.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield page
    context.close()


def sign_in(page: Any, site: Site, role: str) -> None:
    page.goto(f"{site.url}/login")
    page.fill("#f-email", site.emails[role])
    page.fill("#f-password", PASSWORD)
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".who").count() == 1, page.content()[:2000]


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))",
        WCAG_21_AA,
    )
    return list(result)
