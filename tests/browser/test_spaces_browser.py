"""The staff premises form's spaces field in Chromium: without JavaScript a staff member
gives premises their spaces, sees a 422 next to the field and a 409 naming the booking the
new spaces would collide with; axe finds no WCAG 2.1 A/AA violation on those pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from booking import accounts
from events.sql import read_transaction, write_transaction
from projections.catalogue import premises_table
from tests.browser.conftest import (
    HELSINKI,
    Site,
    _organisation_id,
    _user_id,
    axe_violations,
    screenshot,
    sign_in,
)
from tests.browser.test_pages_browser import _record

HALL = "nuorisotalo-sali"


@pytest.fixture
def no_script(browser: Any) -> Iterator[Any]:
    """A page with JavaScript turned off: the form must work without it."""
    context = browser.new_context(
        locale="en-GB", viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def spaces_of(site: Site, premises_id: str) -> list[str]:
    with read_transaction(site.engine) as conn:
        t = premises_table
        return list(conn.execute(select(t.c.spaces).where(t.c.id == premises_id)).scalar_one())


def book_the_hall_during_the_whole_gym_s_booking(site: Site, page: Any) -> None:
    """The youth centre hall booked 17:30–18:30 on the day the whole gym is booked 17–19."""
    with write_transaction(site.engine) as conn:
        token = accounts.issue_token(conn, _user_id(conn, site.emails["staff"]))
    at = datetime.combine(site.day, datetime.min.time(), HELSINKI)
    response = page.request.post(
        f"{site.url}/api/v1/bookings",
        data={
            "premises_id": HALL,
            "start": at.replace(hour=17, minute=30).isoformat(),
            "end": at.replace(hour=18, minute=30).isoformat(),
            "title": "Bändi",
            "organisation_id": _organisation_id(site),
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 201, response.text()


def save_spaces(page: Any, site: Site, premises_id: str, spaces: str) -> int:
    page.goto(f"{site.url}/staff/premises/{premises_id}?lang=en")
    page.fill("#f-spaces", spaces)
    with page.expect_navigation() as sent:
        page.locator("button", has_text="Save changes").click()
    status: int = sent.value.status if sent.value is not None else 0
    return status


def test_staff_edit_spaces_without_javascript_with_clear_errors(
    no_script: Any, page: Any, site: Site, axe_source: str
) -> None:
    sign_in(no_script, site, "staff")
    book_the_hall_during_the_whole_gym_s_booking(site, no_script)

    no_script.goto(f"{site.url}/staff/premises/koulu-sali?lang=en")
    assert no_script.locator("#f-spaces").input_value() == "koulu-ita, koulu-lansi"
    assert no_script.locator("label[for=f-spaces]").inner_text().startswith("Spaces")

    # 422: a space named twice, said next to the field and in the summary, nothing changed.
    assert save_spaces(no_script, site, HALL, "sali, sali") == 422
    error = no_script.locator("#f-spaces-error")
    assert "Name each space once: sali." in error.inner_text()
    assert no_script.locator("#f-spaces").get_attribute("aria-invalid") == "true"
    assert "f-spaces-error" in (
        no_script.locator("#f-spaces").get_attribute("aria-describedby") or ""
    )
    assert no_script.locator("#error-summary a[href='#f-spaces']").count() == 1
    assert spaces_of(site, HALL) == [HALL]

    # 409: the west half's floor is the whole gym's, booked 17–19 when the hall is booked.
    assert save_spaces(no_script, site, HALL, "koulu-lansi") == 409
    said = no_script.locator("#f-spaces-error").inner_text()
    assert "Nothing was changed" in said and "17:00–19:00 (booking, School gym)" in said
    assert "Salibandy" not in said  # the other booking's title is not shown
    assert spaces_of(site, HALL) == [HALL]

    # A free floor is saved.
    assert save_spaces(no_script, site, HALL, "nuorisotalo-ita, nuorisotalo-lansi") == 200
    assert "Changes saved." in no_script.content()
    assert spaces_of(site, HALL) == ["nuorisotalo-ita", "nuorisotalo-lansi"]

    # The same pages with JavaScript, for axe: the form, its 422 and its 409.
    sign_in(page, site, "staff")
    results = {}
    page.goto(f"{site.url}/staff/premises/new?lang=sv")
    results["staff-premises-new-spaces-sv"] = axe_violations(page, axe_source)
    assert save_spaces(page, site, "koulu-sali-ita", "") == 422
    screenshot(page, "staff-premises-spaces-422")
    results["staff-premises-spaces-422"] = axe_violations(page, axe_source)
    assert save_spaces(page, site, "nuorisotalo-sali", "koulu-ita") == 409
    screenshot(page, "staff-premises-spaces-409")
    results["staff-premises-spaces-409"] = axe_violations(page, axe_source)
    _record(results)
    assert {k: v for k, v in results.items() if v} == {}
