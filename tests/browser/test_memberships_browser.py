"""The pages for joining organisations in headless Chromium, in fi, sv and en: a resident
asks to join, staff approve; axe-core finds no WCAG 2.1 A/AA violation on either page."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Site, axe_violations, screenshot, sign_in


def test_ask_and_approve_a_membership_without_accessibility_violations(
    page: Any, browser: Any, site: Site, axe_source: str
) -> None:
    sign_in(page, site, "resident")
    for language in ("fi", "sv", "en"):
        page.goto(f"{site.url}/my/organisations?lang={language}")
        assert axe_violations(page, axe_source) == [], language
    page.select_option("#f-organisation_id", label="Mikkelin Shakkikerho ry")
    page.fill("#f-message", "Olen sihteeri")
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state()
    assert "waiting" in page.content()
    screenshot(page, "memberships-asked")
    staff_context = browser.new_context(locale="fi-FI")
    try:
        staff = staff_context.new_page()
        sign_in(staff, site, "staff")
        for language in ("sv", "en", "fi"):
            staff.goto(f"{site.url}/staff/memberships?lang={language}")
            assert axe_violations(staff, axe_source) == [], language
        screenshot(staff, "memberships-staff")
        staff.click(".queue form:first-child button[type=submit]")
        staff.wait_for_load_state()
        assert "Odottavia pyyntöjä ei ole." in staff.content()
    finally:
        staff_context.close()
    page.goto(f"{site.url}/my/organisations")
    assert page.locator("#my-organisations").inner_text().startswith("Mikkelin Shakkikerho ry")
    assert axe_violations(page, axe_source) == []
