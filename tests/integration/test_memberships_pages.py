"""The pages for joining organisations: ask, see the answer, leave; staff approve or reject
with a reason. In Finnish, Swedish and English. Both databases."""

from __future__ import annotations

import re

from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]


def test_ask_approve_and_leave_through_the_pages(site: Site) -> None:
    site.user_id("resident"), site.user_id("staff")
    resident = site.client("resident", lang="en")
    page = text(resident.get("/my/organisations"))
    assert "You do not belong to any organisation yet." in page
    assert "Mikkelin Shakkikerho ry" in page
    missing = post_form(resident, "/my/organisations/ask", {}, page="/my/organisations")
    assert missing.status_code == 422 and "Choose an organisation." in text(missing)
    asked = post_form(
        resident,
        "/my/organisations/ask",
        {"organisation_id": site.api.organisation_id, "message": "Olen sihteeri"},
        page="/my/organisations",
    )
    assert asked.status_code == 303
    assert "waiting" in text(resident.get("/my/organisations"))
    twice = post_form(
        resident,
        "/my/organisations/ask",
        {"organisation_id": site.api.organisation_id},
        page="/my/organisations",
    )
    assert twice.status_code == 422 and "asked to join this organisation already" in text(twice)

    staff = site.client("staff", lang="fi")
    queue = text(staff.get("/staff/memberships"))
    assert "Test resident" in queue and "Olen sihteeri" in queue
    request_id = re.search(r'id="membership-([^"]+)"', queue)
    assert request_id
    no_reason = post_form(
        staff, f"/staff/memberships/{request_id[1]}/reject", {}, page="/staff/memberships"
    )
    assert no_reason.status_code == 422
    approved = post_form(
        staff, f"/staff/memberships/{request_id[1]}/approve", {}, page="/staff/memberships"
    )
    assert approved.status_code == 303
    assert "Test resident" not in text(staff.get("/staff/memberships"))

    mine = text(resident.get("/my/organisations"))
    assert 'id="my-organisations"' in mine and "Leave" in mine
    assert resident.get("/my/bookings").status_code == 200  # a booker now
    left = post_form(
        resident,
        f"/my/organisations/{site.api.organisation_id}/leave",
        {},
        page="/my/organisations",
    )
    assert left.status_code == 303
    assert "You do not belong to any organisation yet." in text(resident.get("/my/organisations"))


def test_the_pages_speak_finnish_and_swedish(site: Site) -> None:
    site.user_id("resident"), site.user_id("staff")
    assert "Liity yhdistykseen" in text(site.client("resident", lang="fi").get("/my/organisations"))
    assert "Ansök om medlemskap" in text(
        site.client("resident", lang="sv").get("/my/organisations")
    )
    assert "Jäsenyyspyynnöt" in text(site.client("staff", lang="fi").get("/staff/memberships"))
    assert "Medlemskapsansökningar" in text(
        site.client("staff", lang="sv").get("/staff/memberships")
    )
    assert site.client("resident").get("/staff/memberships").status_code == 403
