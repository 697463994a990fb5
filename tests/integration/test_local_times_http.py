"""Local times across the DST changes, over HTTP on both databases (issue 14.4), and local
offsets in every answer about a premises (14.7).

Helsinki skips 03:00–04:00 on 2027-03-28 and repeats it on 2027-10-31. A premises open
20:00–06:00 takes bookings through both nights: a time that does not exist is refused on
the form and in the API (naming the field) instead of being moved an hour; a time that
occurs twice is an error with a choice on the form.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from events.sql import read_transaction
from projections.bookings import bookings_table
from tests.conftest import HELSINKI, Api, future_weekday, local
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]
NIGHTS = {d: [["20:00", "06:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _starts(api: Api) -> list[datetime]:
    with read_transaction(api.engine) as conn:
        return list(conn.execute(select(bookings_table.c.start)).scalars())


def _form(day: str, start: str, end: str, **extra: str) -> dict[str, str]:
    return {
        "premises_id": "club",
        "date": day,
        "start": start,
        "end": end,
        "title": "Yökerho",
        "attendees": "4",
        "repeat": "none",
        **extra,
    }


def test_the_booking_form_refuses_a_time_the_clocks_skip(site: Site, api: Api) -> None:
    api.premises("club", opening_hours=NIGHTS)
    client = site.client("booker", lang="en")
    for start, end in (("03:30", "05:30"), ("03:15", "04:30")):
        response = post_form(
            client, "/bookings/new", _form("2027-03-28", start, end), page="/bookings/new"
        )
        assert response.status_code == 422
        page = text(response)
        assert f"{start} does not exist on 2027-03-28" in page and "03:00 to 04:00" in page
        assert 'id="f-start-error"' in page
        assert "at least 30 minutes" not in page  # the old misleading answer
    assert _starts(api) == []
    finnish = site.client("booker")
    page = text(post_form(finnish, "/bookings/new", _form("2027-03-28", "03:30", "05:30")))
    assert "Kellonaikaa 03:30 ei ole 2027-03-28" in page
    # The hour after the change is there as written.
    done = post_form(
        client, "/bookings/new", _form("2027-03-28", "04:00", "05:30"), page="/bookings/new"
    )
    assert done.status_code == 303
    assert _starts(api) == [datetime(2027, 3, 28, 1, 0, tzinfo=UTC)]


def test_the_api_refuses_a_skipped_time_and_takes_the_instant_in_utc(api: Api) -> None:
    api.premises("club", opening_hours=NIGHTS)
    body = {"premises_id": "club", "title": "Yökerho", "attendees": 4}
    refused = api.post(
        "/api/v1/bookings",
        {**body, "start": "2027-03-28T03:30:00+02:00", "end": "2027-03-28T05:30:00+03:00"},
        role="booker",
    )
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert list(refused.get_json()["errors"]) == ["start"]
    assert "03:30 does not exist" in refused.get_json()["errors"]["start"][0]
    assert _starts(api) == []

    taken = api.post(
        "/api/v1/bookings",
        {**body, "start": "2027-03-28T01:30:00Z", "end": "2027-03-28T02:30:00Z"},
        role="booker",
    )
    assert taken.status_code == 201, taken.get_json()
    assert taken.get_json()["start"] == "2027-03-28T04:30:00+03:00"


def test_a_time_that_occurs_twice_is_chosen_on_the_form(site: Site, api: Api) -> None:
    api.premises("club", opening_hours=NIGHTS)
    client = site.client("booker", lang="en")
    data = _form("2027-10-31", "03:30", "05:30")
    asked = post_form(client, "/bookings/new", data, page="/bookings/new")
    assert asked.status_code == 422
    page = text(asked)
    assert "03:30 occurs twice on 2027-10-31" in page
    assert 'name="start_fold" type="radio" value="0"' in page
    assert "(UTC+03:00)" in page and "(UTC+02:00)" in page
    assert _starts(api) == []

    chosen = post_form(client, "/bookings/new", {**data, "start_fold": "1"}, page="/bookings/new")
    assert chosen.status_code == 303
    assert _starts(api) == [datetime(2027, 10, 31, 1, 30, tzinfo=UTC)]  # the second 03:30


def test_the_popup_form_refuses_a_time_the_clocks_skip(site: Site, api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    clock.move_to(datetime(2027, 3, 24, 10, tzinfo=HELSINKI))
    api.premises("club", opening_hours=NIGHTS, rules={"popup_allowed": True})
    client = site.client("resident", lang="en")
    data = {
        "premises_id": "club",
        "date": "2027-03-28",
        "start": "03:30",
        "end": "05:00",
        "title": "Yöpiknik",
        "expected_attendees": "5",
    }
    response = post_form(client, "/popup/new", data, page="/popup/new")
    assert response.status_code == 422
    assert "03:30 does not exist on 2027-03-28" in text(response)
    body = {
        "premises_id": "club",
        "title": "Yöpiknik",
        "start": "2027-03-28T03:30:00+02:00",
        "end": "2027-03-28T05:00:00+03:00",
    }
    refused = api.post("/api/v1/popup-requests", body, role="resident")
    assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["start"]


def test_a_conflict_and_the_search_answer_in_local_offsets(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    assert api.book("room", local(day, 18), local(day, 19)).status_code == 201
    start_utc = local(day, 18, 30).astimezone(UTC)
    clash = api.book("room", start_utc, local(day, 20).astimezone(UTC))
    assert clash.status_code == 409
    (conflict,) = clash.get_json()["conflicts"]
    assert conflict["start"] == local(day, 18).isoformat()  # +02:00, not Z
    assert conflict["end"] == local(day, 19).isoformat()

    end_utc = local(day, 21).astimezone(UTC)
    query = f"start={start_utc:%Y-%m-%dT%H:%M:%SZ}&end={end_utc:%Y-%m-%dT%H:%M:%SZ}"
    found = api.get(f"/api/v1/availability?{query}")
    assert found.status_code == 200
    assert found.get_json()["start"] == local(day, 18, 30).isoformat()
