"""The pages in a real headless Chromium: sign in, book from the week view, cancel, switch
language, keyboard-only booking, and axe-core on every page (zero WCAG 2.1 A/AA violations)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.browser.conftest import (
    ROOT,
    Site,
    axe_violations,
    screenshot,
    sign_in,
)

RESULTS = ROOT / "test-artifacts" / "axe-results.json"


def _check_pages(page: Any, site: Site, axe_source: str, paths: dict[str, str]) -> dict[str, Any]:
    found = {}
    for name, path in paths.items():
        response = page.goto(site.url + path)
        assert response is not None and response.status < 500, (name, response and response.status)
        screenshot(page, name)
        found[name] = axe_violations(page, axe_source)
    return found


def _record(results: dict[str, Any]) -> None:
    """Keep the per-page results for the CI artifacts (and the report)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    known.update({name: len(v) for name, v in results.items()})
    RESULTS.write_text(json.dumps(known, indent=2, sort_keys=True))


def test_public_pages_have_no_accessibility_violations(
    page: Any, site: Site, axe_source: str
) -> None:
    day = site.day.isoformat()
    results = _check_pages(
        page,
        site,
        axe_source,
        {
            "search": "/",
            "search-results": f"/?date={day}&start=18:00&end=20:00&free=1",
            "search-errors": "/?date=2027-13-40&start=x&end=",
            "premises-list": "/premises?feature=step_free_access",
            "premises-week": f"/premises/kirjasto-kokoushuone?week={day}",
            "premises-week-en": f"/premises/kirjasto-kokoushuone?week={day}&lang=en",
            "registry": "/registry?lang=fi",
            "login": "/login",
            "signup": "/signup",
            "feeds": "/feeds",
            "accessibility": "/accessibility",
            "not-found": "/no-such-page",
            "search-sv": "/?lang=sv",
        },
    )
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}
    assert page.csp_errors == []


def test_signed_in_pages_have_no_accessibility_violations(
    page: Any, site: Site, axe_source: str
) -> None:
    day = site.day.isoformat()
    sign_in(page, site, "booker")
    results = _check_pages(
        page,
        site,
        axe_source,
        {
            "my": "/my?lang=fi",
            "booking-form": f"/bookings/new?premises_id=kirjasto-kokoushuone&date={day}"
            "&start=14:00&end=15:00",
            "my-bookings": "/my/bookings",
            "booking": f"/my/bookings/{site.booking_id}",
            "popup-form": "/popup/new",
        },
    )
    # A form sent back with errors: the summary and the fields' messages must pass too.
    page.goto(f"{site.url}/bookings/new?premises_id=kirjasto-kokoushuone&date={day}")
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#error-summary").is_visible()
    screenshot(page, "booking-form-errors")
    results["booking-form-errors"] = axe_violations(page, axe_source)
    page.context.clear_cookies()
    sign_in(page, site, "staff")
    results.update(
        _check_pages(
            page,
            site,
            axe_source,
            {
                "staff-requests": "/staff/requests",
                "staff-premises": "/staff/premises",
                "staff-premises-new": "/staff/premises/new",
                "staff-premises-edit": "/staff/premises/kirjasto-kokoushuone",
                "stats": f"/stats?from={site.day.replace(day=1)}&to={site.day}",
            },
        )
    )
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}
    assert page.csp_errors == []


def test_a_new_staff_feed_says_how_far_it_reaches(page: Any, site: Site, axe_source: str) -> None:
    sign_in(page, site, "staff")
    page.goto(f"{site.url}/feeds?lang=en")
    assert "Calendar apps drop feeds over 1 MB" in page.locator("#f-premises").inner_text()
    for box in page.locator('input[name="premises"]').all():
        box.check()
    page.locator("button", has_text="Create a private feed link").click()
    page.wait_for_load_state()
    assert page.locator("#feed-reach").inner_text().startswith("This feed reaches from")
    screenshot(page, "feeds-created")
    results = {"feeds-created": axe_violations(page, axe_source)}
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}


def test_book_a_free_slot_from_the_week_view_and_cancel_it(page: Any, site: Site) -> None:
    sign_in(page, site, "booker")
    page.goto(site.week_url() + "&lang=en")
    free = page.locator("table.week-grid a.slot").filter(has_text="Free").nth(20)
    free.click()
    page.wait_for_url(re.compile(r"/bookings/new\?"))
    assert page.input_value("#f-premises_id") == "kirjasto-kokoushuone"
    page.fill("#f-title", "Shakkiturnaus")
    page.fill("#f-attendees", "10")
    page.click("form.panel button[type=submit]")
    page.wait_for_url(re.compile(r"/my/bookings/"))
    assert page.locator(".flash").inner_text() == "Booking confirmed."
    screenshot(page, "booking-confirmed")
    page.fill("#f-reason", "Turnaus siirtyy")
    page.click("text=Cancel booking")
    page.wait_for_load_state()
    assert "Booking cancelled." in page.locator(".flash").inner_text()
    assert page.locator(".status").inner_text() == "cancelled"


def test_switching_language_is_remembered(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    assert page.get_attribute("html", "lang") == "fi"
    assert page.locator("h1").inner_text() == "Etsi tila toiminnallesi"
    page.click("nav.languages >> text=In English")
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("h1").inner_text() == "Find a space for your activity"
    page.click("nav.main-nav >> text=Premises")
    assert page.get_attribute("html", "lang") == "en"
    page.click("nav.languages >> text=Suomeksi")
    assert page.locator("h1").inner_text() == "Tilat"


def _tab_to(page: Any, test: str, limit: int = 400) -> None:
    """Press Tab until `test` (a JS expression on document.activeElement `el`) is true."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({test}); }}"):
            return
    raise AssertionError(f"never reached {test!r} with Tab")


def test_booking_with_the_keyboard_only(page: Any, site: Site) -> None:
    page.goto(site.url + "/login?lang=en")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    _tab_to(page, "el.id === 'f-email'")
    page.keyboard.type(site.emails["booker"])
    page.keyboard.press("Tab")
    page.keyboard.type("salasana-123")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".who").count() == 1
    page.goto(site.week_url())
    # The grid's free hours are links reachable by Tab; pick one late in the week.
    _tab_to(page, "el.classList.contains('slot') && el.href.includes('start=16:00')")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/bookings/new\?"))
    _tab_to(page, "el.id === 'f-title'")
    page.keyboard.type("Näppäimistöllä varattu")
    page.keyboard.press("Enter")  # Enter in a text field sends the form
    page.wait_for_url(re.compile(r"/my/bookings/"))
    assert "Näppäimistöllä varattu" in page.locator("h1").inner_text()
    screenshot(page, "keyboard-booking")


def test_axe_does_find_violations(page: Any, axe_source: str) -> None:
    """The checker itself works: a page with known faults is not passed."""
    page.set_content("<html><body><img src='x.png'><input type='text'></body></html>")
    found = {v["id"] for v in axe_violations(page, axe_source)}
    assert {"html-has-lang", "image-alt", "label"} <= found


def test_resident_asks_for_a_pop_up_and_staff_approve_it(
    browser: Any, page: Any, site: Site, axe_source: str
) -> None:
    sign_in(page, site, "resident")
    page.goto(f"{site.url}/popup/new?lang=en")
    page.select_option("#f-premises_id", "kirjasto-kokoushuone")
    page.fill("#f-date", site.day.isoformat())
    page.fill("#f-start", "19:00")
    page.fill("#f-end", "20:00")
    page.fill("#f-title", "Runoilta")
    page.fill("#f-description", "Avoin runoilta")
    page.click("form.panel button[type=submit]")
    page.wait_for_url(re.compile(r"/popup/[0-9a-f-]{36}$"))
    assert "waiting for a decision" in page.locator(".status").inner_text()
    screenshot(page, "popup-request")
    results = {"popup-request": axe_violations(page, axe_source)}
    request_url = page.url

    staff_context = browser.new_context(locale="en-GB")
    staff = staff_context.new_page()
    sign_in(staff, site, "staff")
    staff.goto(f"{site.url}/staff/requests?lang=en")
    screenshot(staff, "staff-queue-with-popup")
    results["staff-queue-with-popup"] = axe_violations(staff, axe_source)
    card = staff.locator("li.card", has_text="Runoilta")
    card.locator("button", has_text="Approve").click()
    staff.wait_for_load_state()
    assert "Pop-up request approved." in staff.locator(".flash").inner_text()
    staff_context.close()

    page.goto(request_url)
    assert page.locator(".status").inner_text() == "approved"
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}


def test_pages_fit_a_phone(browser: Any, site: Site, axe_source: str) -> None:
    """On a narrow screen nothing but the week grid's own scroll area scrolls sideways."""
    context = browser.new_context(locale="fi-FI", viewport={"width": 390, "height": 844})
    phone = context.new_page()
    results = {}
    for name, path in {
        "phone-search": "/",
        "phone-week": f"/premises/kirjasto-kokoushuone?week={site.day}",
        "phone-registry": "/registry",
    }.items():
        phone.goto(site.url + path)
        overflow = phone.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (name, overflow)
        screenshot(phone, name)
        results[name] = axe_violations(phone, axe_source)
    context.close()
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}
