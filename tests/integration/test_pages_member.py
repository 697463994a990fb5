"""Members' pages over real HTTP on both databases: book from the form (once and weekly),
errors next to the fields, my bookings, cancel with a reason, and feed links."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from events.sql import read_transaction
from projections.bookings import bookings_table
from tests.conftest import Api, future_weekday, local
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]


def _bookings(api: Api) -> list[tuple[str, str, str]]:
    b = bookings_table
    with read_transaction(api.engine) as conn:
        return [
            (r.title, r.status, r.reason or "")
            for r in conn.execute(select(b.c.title, b.c.status, b.c.reason).order_by(b.c.start))
        ]


def _booking_form(premises_id: str, day: object, start: str, end: str, **extra: str) -> dict:
    return {
        "premises_id": premises_id,
        "date": str(day),
        "start": start,
        "end": end,
        "title": "Shakkikerhon ilta",
        "attendees": "8",
        "repeat": "none",
        **extra,
    }


def test_book_from_the_week_view_link_and_see_it_busy(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    client = site.client("booker", lang="en")
    form_page = text(client.get(f"/bookings/new?premises_id=room&date={day}&start=18:00&end=19:00"))
    assert f'value="{day}"' in form_page and 'value="18:00"' in form_page  # filled from the link
    assert "Europe/Helsinki" in form_page
    response = post_form(
        client, "/bookings/new", _booking_form("room", day, "18:00", "20:00"), page="/bookings/new"
    )
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "Booking confirmed." in page and "Shakkikerhon ilta" in page
    assert "18:00–20:00" in page
    assert _bookings(api) == [("Shakkikerhon ilta", "confirmed", "")]
    week = text(client.get(f"/premises/room?week={day}"))
    assert f"date={day}&amp;start=18:00" not in week and f"date={day}&amp;start=17:00" in week


def test_broken_rules_are_shown_next_to_the_fields_and_nothing_is_booked(
    site: Site, api: Api
) -> None:
    api.premises("room", rules={"max_duration_minutes": 120})
    day = future_weekday(3)
    client = site.client("booker")
    data = _booking_form("room", day, "21:00", "23:30", attendees="50", title="")
    response = post_form(client, "/bookings/new", data, page="/bookings/new")
    assert response.status_code == 422
    page = text(response)
    assert 'id="f-title-error"' in page and "Täytä tämä kenttä." in page
    data["title"] = "Iltatilaisuus"
    response = post_form(client, "/bookings/new", data, page="/bookings/new")
    page = text(response)
    assert response.status_code == 422
    assert "Varaus kestää enintään 120 minuuttia." in page  # next to the end time
    assert "Tilaan mahtuu enintään 12 henkilöä." in page
    assert "Tila ei ole auki koko aikaa." in page
    assert 'value="Iltatilaisuus"' in page and 'value="21:00"' in page  # typed values kept
    assert "Traceback" not in page
    assert _bookings(api) == []


def test_a_taken_slot_is_explained(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    assert api.book("room", local(day, 18), local(day, 20)).status_code == 201
    client = site.client("booker", lang="en")
    data = _booking_form("room", day, "19:00", "21:00")
    response = post_form(client, "/bookings/new", data, page="/bookings/new")
    assert response.status_code == 422
    assert "The time is taken: something else is booked from" in text(response)
    assert len(_bookings(api)) == 1


def test_weekly_booking_skips_taken_dates(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(1)
    taken = day.fromordinal(day.toordinal() + 14)
    assert api.book("room", local(taken, 17), local(taken, 19)).status_code == 201
    client = site.client("booker", lang="en")
    until = day.fromordinal(day.toordinal() + 21)
    data = _booking_form("room", day, "18:00", "19:00", repeat="weekly", repeat_until=str(until))
    response = post_form(client, "/bookings/new", data, page="/bookings/new")
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "3 weekly bookings made. 1 date could not be booked:" in page
    # The skipped date is named with its reason, in the page's language.
    assert f"{taken.year} 18:00–19:00: The time is already taken." in page
    assert taken.strftime("%b") in page
    assert [b for b in _bookings(api) if b[0] == "Shakkikerhon ilta"] == [
        ("Shakkikerhon ilta", "confirmed", "")
    ] * 3


def test_my_bookings_shows_the_organisations_own_and_cancel_keeps_the_reason(
    site: Site, api: Api
) -> None:
    api.premises("room")
    day = future_weekday(2)
    mine = api.book("room", local(day, 10), local(day, 11), title="Oma").get_json()
    other = site.client("other_booker")  # another organisation's booker
    post_form(
        other,
        "/bookings/new",
        _booking_form("room", day, "12:00", "13:00", title="Muu"),
        page="/bookings/new",
    )
    client = site.client("booker", lang="en")
    listing = text(client.get("/my/bookings"))
    assert "Oma" in listing and "Muu" not in listing
    foreign = [b for b in _bookings(api) if b[0] == "Muu"]
    assert foreign
    response = post_form(
        client,
        f"/my/bookings/{mine['id']}/cancel",
        {"reason": "Sairastuminen"},
        page=f"/my/bookings/{mine['id']}",
    )
    assert response.status_code == 303
    assert "Booking cancelled." in text(client.get(response.headers["Location"]))
    assert ("Oma", "cancelled", "Sairastuminen") in _bookings(api)
    again = post_form(
        client, f"/my/bookings/{mine['id']}/cancel", {"reason": ""}, page="/my/bookings"
    )
    assert again.status_code == 422 and "The booking is already cancelled." in text(again)


def test_another_organisations_booking_is_not_shown_or_cancelled(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    other = site.client("other_booker")
    assert other.get(f"/my/bookings/{booking['id']}").status_code == 403
    refused = post_form(
        other, f"/my/bookings/{booking['id']}/cancel", {"reason": "x"}, page="/my/bookings"
    )
    assert refused.status_code == 403
    assert _bookings(api)[0][1] == "confirmed"
    assert other.get("/my/bookings/no-such-booking").status_code == 404


def test_feed_links_are_offered_in_both_schemes(site: Site, api: Api) -> None:
    api.premises("room")
    page = text(site.client(lang="en").get("/feeds"))
    assert 'href="webcal://localhost/feeds/premises/room.ics"' in page
    assert 'value="http://localhost/feeds/premises/room.ics"' in page
    assert "data-copy=" in page and " hidden>" in page  # the copy button waits for JavaScript


def test_private_feed_links_are_shown_once_and_can_be_revoked(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    assert (
        api.book("room", local(day, 10), local(day, 11), title="Salainen kokous").status_code == 201
    )
    booker = site.client("booker", lang="en")
    created = post_form(booker, "/feeds/private", {}, page="/feeds")
    assert created.status_code == 201
    page = text(created)
    feed = re.search(r'value="http://localhost(/feeds/private/[^"]+\.ics)"', page)
    assert feed and "webcal://localhost/feeds/private/" in page
    calendar = site.client().get(feed[1])
    assert calendar.status_code == 200 and "Salainen kokous" in text(calendar)
    listing = text(booker.get("/feeds"))
    assert feed[1] not in listing  # the secret is never shown again
    token_id = re.search(r'action="/feeds/private/([0-9a-f-]{36})/revoke"', listing)
    assert token_id
    revoked = post_form(booker, f"/feeds/private/{token_id[1]}/revoke", {}, page="/feeds")
    assert revoked.status_code == 303
    assert site.client().get(feed[1]).status_code == 404
    # Staff choose premises; choosing none is an error next to the field.
    staff = site.client("staff", lang="en")
    none = post_form(staff, "/feeds/private", {}, page="/feeds")
    assert none.status_code == 422 and "Choose at least one premises." in text(none)
    assert (
        post_form(staff, "/feeds/private", {"premises": "room"}, page="/feeds").status_code == 201
    )


def _titles(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/my/bookings/[^"]+">([^<]+)</a>', page)


def _follow_pages(client: object, path: str) -> list[list[str]]:
    """Every page of a list, following its "next" link to the end."""
    pages: list[list[str]] = []
    while path:
        page = text(client.get(path))  # type: ignore[attr-defined]
        pages.append(_titles(page))
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        path = found.group(1).replace("&amp;", "&") if found else ""
    return pages


def test_my_bookings_pages_through_every_booking_upcoming_and_past(
    site: Site, api: Api, clock: Any
) -> None:
    # 130 daily evenings: more than one page (100) of upcoming, then of past bookings.
    api.premises("room")
    day = future_weekday(0, weeks_ahead=1)
    body = {
        "premises_id": "room",
        "start": local(day, 18).isoformat(),
        "end": local(day, 19).isoformat(),
        "rrule": "FREQ=DAILY;COUNT=130",
        "title": "Ilta",
        "attendees": 6,
    }
    response = api.post("/api/v1/booking-series", body, role="booker")
    assert response.status_code == 201, response.get_json()
    titles = [f"Ilta {n}" for n in range(130)]
    with api.engine.begin() as conn:  # numbered in time order, to check the order of pages
        ids = conn.execute(select(bookings_table.c.id).order_by(bookings_table.c.start)).scalars()
        for n, booking_id in enumerate(list(ids)):
            conn.execute(
                bookings_table.update()
                .where(bookings_table.c.id == booking_id)
                .values(title=titles[n])
            )
    client = site.client("booker", lang="en")
    upcoming = _follow_pages(client, "/my/bookings")
    assert [len(p) for p in upcoming] == [100, 30]
    assert [t for p in upcoming for t in p] == titles  # soonest first, none twice, none left out
    clock.move_to(local(day, 18) + timedelta(days=200))
    client = site.client("booker", lang="en")  # the earlier session has ended meanwhile
    past = _follow_pages(client, "/my/bookings?show=past")
    assert [len(p) for p in past] == [100, 30]
    assert [t for p in past for t in p] == titles[::-1]  # latest first
    assert client.get("/my/bookings?after=not-a-cursor").status_code == 422
