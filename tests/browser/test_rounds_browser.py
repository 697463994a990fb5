"""The allocation rounds' pages in headless Chromium with axe-core (no WCAG 2.1 A/AA
violation): the public rounds in fi/sv/en, the application form with its round trips and
errors, "my applications" with offers, and the staff round page with the weekday grid."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import timedelta
from typing import Any

from booking import accounts
from events.sql import write_transaction
from tests.browser.conftest import Site, axe_violations, screenshot, sign_in
from tests.conftest import TEST_NOW

PREMISES = ["koulu-sali", "koulu-sali-ita", "kirjasto-kokoushuone"]


def _api(site: Site, role: str, path: str, body: Any = None) -> Any:
    """The real API of the served app, with a token of the seeded person in `role`."""
    with write_transaction(site.engine) as conn:
        user_id = accounts.user_id_by_email(conn, site.emails[role])
        token = accounts.issue_token(conn, str(user_id))
    request = urllib.request.Request(
        site.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _round(site: Site, name: str, closes_in: timedelta) -> str:
    body = {
        "name": {"fi": f"{name} (fi)", "sv": f"{name} (sv)", "en": name},
        "season_start": "2027-01-11",
        "season_end": "2027-02-28",
        "applications_open": (TEST_NOW - timedelta(hours=1)).isoformat(),
        "applications_close": (TEST_NOW + closes_in).isoformat(),
        "premises": PREMISES,
        "criteria": [{"key": "age_group"}, {"key": "purpose", "in": ["juniori"]}],
        "confirm_days": 7,
    }
    return str(_api(site, "staff", "/api/v1/allocation-rounds", body)["id"])


def _check(page: Any, axe_source: str, name: str) -> list[Any]:
    screenshot(page, name)
    return axe_violations(page, axe_source)


def test_the_rounds_and_the_application_form(page: Any, site: Site, axe_source: str) -> None:
    round_id = _round(site, "Spring season", timedelta(days=7))
    found: dict[str, Any] = {}
    for language in ("fi", "sv", "en"):
        page.goto(f"{site.url}/rounds?lang={language}")
        found[f"rounds-{language}"] = _check(page, axe_source, f"rounds-{language}")
    page.goto(f"{site.url}/rounds/{round_id}?lang=fi")
    assert "Ryhmän ikä" in page.locator("#criteria").inner_text()
    found["round"] = _check(page, axe_source, "round")

    sign_in(page, site, "booker")
    page.goto(f"{site.url}/rounds/{round_id}?lang=en")
    page.click("text=Apply for weekly slots")
    page.wait_for_url(re.compile(r"/apply"))
    found["form"] = _check(page, axe_source, "round-form")
    page.fill("#f-purpose", "Juniorisalibandy")
    page.click("text=Add another section")
    page.wait_for_load_state()
    assert page.locator("fieldset.section").count() == 2
    assert page.input_value("#f-purpose") == "Juniorisalibandy"  # kept over the round trip
    found["form-two-sections"] = _check(page, axe_source, "round-form-two")
    page.click("button[value=submit]")
    page.wait_for_load_state()
    assert page.locator("#error-summary").is_visible()
    found["form-errors"] = _check(page, axe_source, "round-form-errors")

    page.select_option("#f-age_group", "7-14")
    page.fill("#f-group_size", "12")
    page.fill("#f-s0-name", "P10")
    page.fill("#f-s0-slots", "1")
    page.fill("#f-s0-duration", "90")
    page.select_option("#f-s0-p0", "koulu-sali")
    page.select_option("#f-s0-p1", "koulu-sali-ita")
    page.select_option("#f-s0-t0-day", "mon")
    page.fill("#f-s0-t0-from", "17:00")
    page.fill("#f-s0-t0-to", "19:00")
    page.check("#f-terms_accepted")
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"/my/applications"))
    assert "Application sent." in page.locator(".flash").inner_text()
    assert "P10" in page.content()
    found["my-applications"] = _check(page, axe_source, "my-applications")
    assert {k: v for k, v in found.items() if v} == {}
    assert page.csp_errors == []


def test_the_staff_grid_and_answering_offers(
    page: Any, browser: Any, site: Site, axe_source: str, clock: Any
) -> None:
    round_id = _round(site, "Winter season", timedelta(hours=2))
    section = {
        "name": "Naiset",
        "slots_per_week": 2,
        "duration_minutes": 90,
        "premises": ["koulu-sali", "koulu-sali-ita"],
        "times": [
            {"weekday": "tue", "from": "18:00", "to": "20:00", "priority": "primary"},
            {"weekday": "thu", "from": "18:00", "to": "21:00", "priority": "secondary"},
        ],
    }
    _api(
        site,
        "booker",
        f"/api/v1/allocation-rounds/{round_id}/applications",
        {
            "purpose": "Lentopallo",
            "age_group": "20-64",
            "group_size": 12,
            "terms_accepted": True,
            "sections": [section],
        },
    )
    # A group on the east half right after: each grid shows the other's slot as taken.
    half = {
        **section,
        "name": "Juniorit",
        "slots_per_week": 1,
        "premises": ["koulu-sali-ita"],
        "times": [{"weekday": "tue", "from": "19:30", "to": "21:00", "priority": "primary"}],
    }
    _api(
        site,
        "booker",
        f"/api/v1/allocation-rounds/{round_id}/applications",
        {
            "purpose": "Juniorilentopallo",
            "age_group": "7-14",
            "group_size": 10,
            "terms_accepted": True,
            "sections": [half],
        },
    )
    clock.move_to(TEST_NOW + timedelta(hours=3))
    found: dict[str, Any] = {}
    sign_in(page, site, "staff")
    page.goto(f"{site.url}/staff/rounds?lang=en")
    found["staff-rounds"] = _check(page, axe_source, "staff-rounds")
    page.goto(f"{site.url}/staff/rounds/new?lang=en")
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#error-summary").is_visible()
    found["staff-round-new-errors"] = _check(page, axe_source, "staff-round-new-errors")

    page.goto(f"{site.url}/staff/rounds/{round_id}?lang=en")
    found["staff-round"] = _check(page, axe_source, "staff-round")
    page.click("text=Make a proposal")
    page.wait_for_load_state()
    grid = page.locator("table.alloc-grid").first
    assert grid.locator("thead th").count() == 8  # the time column and seven weekdays
    assert "Naiset" in grid.inner_text()
    assert "Taken through School gym, east end: Juniorit" in grid.inner_text()
    east = page.locator("table.alloc-grid").nth(1)
    assert "Taken through School gym: Naiset 18:00–19:30" in east.inner_text()
    assert page.locator("#allocations tbody tr").count() == 3
    for language in ("fi", "sv", "en"):
        page.goto(f"{site.url}/staff/rounds/{round_id}?lang={language}")
        found[f"staff-grid-{language}"] = _check(page, axe_source, f"staff-grid-{language}")
    page.goto(f"{site.url}/staff/rounds/{round_id}?preview=series&lang=en")
    assert "Dates skipped" in page.content()
    found["staff-preview"] = _check(page, axe_source, "staff-preview")
    page.select_option("#f-section", index=1)
    page.select_option("#f-premises_id", "kirjasto-kokoushuone")
    page.select_option("#f-weekday", "wed")
    page.fill("#f-start_time", "10:00")
    page.fill("#f-end_time", "11:30")
    page.click("text=Add the allocation")
    page.wait_for_load_state()
    assert "Give a reason to override." in page.locator("#f-override_reason-error").inner_text()
    found["staff-add-errors"] = _check(page, axe_source, "staff-add-errors")
    page.click("text=Publish and send the offers")
    page.wait_for_load_state()
    assert "published" in page.locator("#round-status").inner_text()
    found["staff-published"] = _check(page, axe_source, "staff-published")

    booker_context = browser.new_context(locale="fi-FI")
    try:
        booker = booker_context.new_page()
        sign_in(booker, site, "booker")
        booker.goto(f"{site.url}/my/applications?lang=en")
        assert "offered, waiting for your answer" in booker.content()
        found["my-offers"] = _check(booker, axe_source, "my-offers")
        booker.locator("button", has_text="Accept").first.click()
        booker.wait_for_load_state()
        assert "Offer accepted" in booker.locator(".flash").first.inner_text()
        found["my-offers-accepted"] = _check(booker, axe_source, "my-offers-accepted")
    finally:
        booker_context.close()
    assert {k: v for k, v in found.items() if v} == {}
    assert page.csp_errors == []
