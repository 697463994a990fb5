"""The pages for joining organisations in headless Chromium, in fi, sv and en: a resident
asks to join, staff approve; axe-core finds no WCAG 2.1 A/AA violation on either page."""

from __future__ import annotations

from typing import Any

from booking import accounts, memberships
from booking.clock import system_clock as now
from booking.privacy import current_vault
from events.sql import write_transaction
from tests.browser.conftest import (
    Site,
    _organisation_id,
    _user_id,
    axe_violations,
    screenshot,
    sign_in,
)


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


def test_staff_name_a_contact_person_who_decides_without_accessibility_violations(
    page: Any, browser: Any, site: Site, axe_source: str
) -> None:
    """Staff choose the organisation's contact person on their page; the contact person
    then approves a request to join on their own page, in fi, sv and en."""
    organisation_id = _organisation_id(site)
    with write_transaction(site.engine) as conn:
        analyst = accounts.user_by_id(conn, _user_id(conn, site.emails["analyst"]))
        memberships.ask(
            conn, current_vault(), analyst, organisation_id, "Tilastoija", "req-1", now()
        )
    sign_in(page, site, "staff")
    page.goto(f"{site.url}/staff/memberships?lang=en")
    page.select_option(
        "#contact-persons ~ form #f-organisation_id", label="Mikkelin Shakkikerho ry"
    )
    page.click("#contact-persons ~ form button[type=submit]")
    page.wait_for_load_state()
    for language in ("fi", "sv", "en"):
        page.goto(f"{page.url.split('?')[0]}?organisation_id={organisation_id}&lang={language}")
        assert axe_violations(page, axe_source) == [], language
    page.select_option("#f-contact_user_id", label="Testi booker")
    page.click("form[action$='/staff/memberships/contact'] button[type=submit]")
    page.wait_for_load_state()
    assert "Contact person saved." in page.content()
    screenshot(page, "memberships-contact-named")
    contact_context = browser.new_context(locale="fi-FI")
    try:
        contact = contact_context.new_page()
        sign_in(contact, site, "booker")
        contact.goto(f"{site.url}/my/organisations?lang=fi")
        contact.click("#contact-for a")
        contact.wait_for_load_state()
        for language in ("sv", "en", "fi"):
            contact.goto(f"{site.url}/my/organisations/requests?lang={language}")
            assert axe_violations(contact, axe_source) == [], language
            assert "Tilastoija" in contact.content()
        screenshot(contact, "memberships-contact")
        contact.click("#membership-req-1 form:first-child button[type=submit]")
        contact.wait_for_load_state()
        assert "Odottavia pyyntöjä ei ole." in contact.content()
    finally:
        contact_context.close()
