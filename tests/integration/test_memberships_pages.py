"""The pages for joining organisations: ask, see the answer, leave; staff approve or reject
with a reason. In Finnish, Swedish and English. Both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import insert, select

from booking.memberships import memberships
from events.sql import read_transaction, write_transaction
from projections.bookings import bookings_table
from tests.conftest import future_weekday
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


def test_a_booker_of_several_organisations_chooses_one_on_the_booking_page(site: Site) -> None:
    booker_id = site.user_id("booker")
    site.api.premises("room")
    with write_transaction(site.api.engine) as conn:
        conn.execute(
            insert(memberships).values(
                user_id=booker_id,
                organisation_id=site.api.other_organisation_id,
                joined_at=datetime.now(UTC),
            )
        )
    client = site.client("booker", lang="en")
    form = text(client.get("/bookings/new?premises_id=room"))
    assert "You belong to several organisations" in form
    day = future_weekday(1).isoformat()
    data = {"premises_id": "room", "date": day, "start": "10:00", "end": "11:00"}
    data |= {"title": "Kerho", "attendees": "3"}
    missing = post_form(client, "/bookings/new", data, page="/bookings/new")
    assert missing.status_code == 422
    assert "Choose the organisation this booking is for." in text(missing)
    chosen = {**data, "organisation_id": site.api.other_organisation_id}
    placed = post_form(client, "/bookings/new", chosen, page="/bookings/new")
    assert placed.status_code == 303, text(placed)[:2000]
    with read_transaction(site.api.engine) as conn:
        organisation = conn.execute(select(bookings_table.c.organisation_id)).scalar_one()
    assert organisation == site.api.other_organisation_id


def test_staff_name_a_contact_person_who_decides_on_their_own_page(site: Site) -> None:
    booker_id = site.user_id("booker")  # a member of the organisation
    site.user_id("resident"), site.user_id("staff")
    organisation_id = site.api.organisation_id
    staff = site.client("staff", lang="en")
    chooser = text(staff.get(f"/staff/memberships?organisation_id={organisation_id}"))
    assert "Contact person of Mikkelin Shakkikerho ry" in chooser and "Test booker" in chooser
    outsider = post_form(
        staff,
        "/staff/memberships/contact",
        {"organisation_id": organisation_id, "contact_user_id": site.user_id("resident")},
        page="/staff/memberships",
    )
    assert outsider.status_code == 422
    assert "Choose a member of the organisation." in text(outsider)
    named = post_form(
        staff,
        "/staff/memberships/contact",
        {"organisation_id": organisation_id, "contact_user_id": booker_id},
        page="/staff/memberships",
    )
    assert named.status_code == 303
    assert re.search(rf'<option value="{booker_id}" selected>', text(staff.get(named.location)))

    resident = site.client("resident", lang="en")
    asked = post_form(
        resident,
        "/my/organisations/ask",
        {"organisation_id": organisation_id, "message": "Pelaan shakkia"},
        page="/my/organisations",
    )
    assert asked.status_code == 303
    for lang, heading in (
        ("fi", "Pyynnöt liittyä yhdistykseesi"),
        ("sv", "Ansökningar om medlemskap i din förening"),
        ("en", "Requests to join your organisation"),
    ):
        contact = site.client("booker", lang=lang)
        assert "/my/organisations/requests" in text(contact.get("/my/organisations"))
        assert heading in text(contact.get("/my/organisations/requests"))
    contact = site.client("booker", lang="en")
    queue = text(contact.get("/my/organisations/requests"))
    assert "Pelaan shakkia" in queue
    found = re.search(r'id="membership-([^"]+)"', queue)
    assert found
    approved = post_form(
        contact,
        f"/my/organisations/requests/{found[1]}/approve",
        {},
        page="/my/organisations/requests",
    )
    assert approved.status_code == 303
    assert "No requests are waiting." in text(contact.get("/my/organisations/requests"))
    # Anyone who is no contact person is refused the page.
    assert site.client("resident").get("/my/organisations/requests").status_code == 403
