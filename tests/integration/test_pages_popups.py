"""Pop-up requests and message threads through the pages, on both databases: a resident asks,
follows the status, talks with staff and withdraws; staff approve or reject in the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.popups import popups_table
from tests.conftest import HELSINKI, Api
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]


def _soon(days: int = 3) -> str:
    return (datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=days)).isoformat()


def _statuses(api: Api) -> list[str]:
    with read_transaction(api.engine) as conn:
        return list(conn.execute(select(popups_table.c.status)).scalars())


def _ask(client: object, **extra: str) -> object:
    data = {
        "premises_id": "library",
        "date": _soon(),
        "start": "16:00",
        "end": "17:30",
        "title": "Lukupiiri pop-up",
        "description": "Avoin lukupiiri kaikille",
        "expected_attendees": "6",
        **extra,
    }
    return post_form(client, "/popup/new", data, page="/popup/new")  # type: ignore[arg-type]


def test_resident_asks_follows_talks_and_staff_approve(site: Site, api: Api) -> None:
    api.premises("library", rules={"popup_allowed": True})
    resident = site.client("resident", lang="en")
    asked = _ask(resident)
    assert asked.status_code == 303
    request_page = asked.headers["Location"]
    page = text(resident.get(request_page))
    assert "Request sent." in page and "waiting for a decision" in page
    assert "Avoin lukupiiri kaikille" in page  # the sealed description opens for its owner
    assert "Decision by" in page
    # The resident writes to staff; staff see it and answer from the request page.
    sent = post_form(
        resident, request_page + "/messages", {"body": "Tarvitsemme 6 tuolia."}, page=request_page
    )
    assert sent.status_code == 303
    staff = site.client("staff", lang="en")
    queue = text(staff.get("/staff/requests"))
    assert "Lukupiiri pop-up" in queue
    assert "Tarvitsemme 6 tuolia." in text(staff.get(request_page))
    post_form(staff, request_page + "/messages", {"body": "Tuolit löytyvät."}, page=request_page)
    assert "Tuolit löytyvät." in text(resident.get(request_page))
    request_id = request_page.rsplit("/", 1)[1]
    approved = post_form(staff, f"/staff/popups/{request_id}/approve", {}, page="/staff/requests")
    assert approved.status_code == 303
    assert _statuses(api) == ["approved"]
    with read_transaction(api.engine) as conn:
        assert conn.execute(select(bookings_table.c.status)).scalars().all() == ["confirmed"]
    assert "approved" in text(resident.get("/popup/mine"))


def test_pop_up_form_errors_and_rules_in_finnish(site: Site, api: Api) -> None:
    api.premises("library", rules={"popup_allowed": True, "popup_max_duration_minutes": 60})
    api.premises("closed-room")  # takes no pop-ups: not offered
    resident = site.client("resident")
    form = text(resident.get("/popup/new"))
    assert 'value="library"' in form and 'value="closed-room"' not in form
    response = _ask(resident, title="")
    assert response.status_code == 422 and "Täytä tämä kenttä." in text(response)
    response = _ask(resident)
    page = text(response)
    assert response.status_code == 422 and "Pop-up kestää enintään 60 minuuttia." in page
    assert 'value="Lukupiiri pop-up"' in page
    far = _ask(resident, date=_soon(40), end="16:30")
    assert "Pop-up-ajan on alettava 30 päivän kuluessa." in text(far)
    assert _statuses(api) == []


def test_staff_reject_with_reason_and_resident_withdraws(site: Site, api: Api) -> None:
    api.premises("library", rules={"popup_allowed": True})
    resident = site.client("resident", lang="en")
    first = _ask(resident).headers["Location"]
    second = _ask(resident, start="18:00", end="19:00").headers["Location"]
    staff = site.client("staff", lang="en")
    first_id = first.rsplit("/", 1)[1]
    refused = post_form(
        staff, f"/staff/popups/{first_id}/reject", {"reason": ""}, page="/staff/requests"
    )
    assert refused.status_code == 422
    assert f'id="f-reason-{first_id}-error"' in text(refused)
    post_form(
        staff,
        f"/staff/popups/{first_id}/reject",
        {"reason": "Tila on remontissa"},
        page="/staff/requests",
    )
    page = text(resident.get(first))
    assert "rejected" in page and "Tila on remontissa" in page
    withdrawn = post_form(resident, second + "/withdraw", {}, page=second)
    assert withdrawn.status_code == 303
    assert sorted(_statuses(api)) == ["rejected", "withdrawn"]
    again = post_form(resident, second + "/withdraw", {}, page=second)
    assert again.status_code == 409 and "The request is already withdrawn." in text(again)


def test_other_people_cannot_read_a_request(site: Site, api: Api) -> None:
    api.premises("library", rules={"popup_allowed": True})
    location = _ask(site.client("resident")).headers["Location"]
    assert site.client("booker").get(location).status_code == 403
    assert site.client().get(location).status_code == 302  # to the sign-in page


def test_booking_thread_between_booker_and_staff(site: Site, api: Api) -> None:
    api.premises("room")
    day = datetime.now(UTC).astimezone(HELSINKI).date() + timedelta(days=10)
    start = datetime.combine(day, datetime.min.time(), HELSINKI).replace(hour=10)
    booking = api.book("room", start, start + timedelta(hours=1)).get_json()
    path = f"/my/bookings/{booking['id']}"
    booker = site.client("booker", lang="en")
    empty = post_form(booker, path + "/messages", {"body": "  "}, page=path)
    assert empty.status_code == 422 and 'id="f-body-error"' in text(empty)
    post_form(booker, path + "/messages", {"body": "Saako kahvinkeittimen käyttää?"}, page=path)
    staff = site.client("staff", lang="en")
    assert "Saako kahvinkeittimen käyttää?" in text(staff.get(path))
    assert site.client("other_booker").get(path).status_code == 403
