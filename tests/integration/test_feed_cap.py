"""No feed answer over the cap (1 MB; lower here through BOOKING_FEED_LIMIT, so that a few
bookings fill it), and gzip for clients that take it, on SQLite and PostgreSQL: a feed that
would be larger reaches fewer days and says how far, whether its window is the default or
asked for; every answer stays valid; the gzipped answer is the same text under its own ETag.
"""

from __future__ import annotations

import gzip
import re
from datetime import date, timedelta

import pytest

from booking.feeds import LIMIT
from tests.conftest import Api, local
from tests.integration.test_feeds import (
    ALL_DAY,
    WIDE_RULES,
    SeenFeed,
    _by_icalendar,
    assert_wire_format,
    fetch,
    parse,
    today,
    unfolded,
)
from tests.integration.test_feeds_private import path_of, staff_token
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]

PATH = "/feeds/premises/hall.ics"
DAYS = 12


def one_a_day(api: Api, premises_id: str = "hall", days: int = DAYS) -> list[date]:
    """A booking at 10–11 on each of the next `days` days."""
    booked = []
    for n in range(1, days + 1):
        day = today() + timedelta(days=n)
        placed = api.book(premises_id, local(day, 10), local(day, 11), title=f"Kerho {n}")
        assert placed.status_code == 201, placed.get_json()
        booked.append(day)
    return booked


def reach_of(response: object) -> tuple[date, date]:
    first, last = response.headers["X-Feed-Window"].split("/")  # type: ignore[attr-defined]
    return date.fromisoformat(first), date.fromisoformat(last)


def event_days(body: bytes) -> list[date]:
    return [
        local_day
        for local_day in sorted(
            e.start.astimezone(local(today(), 0).tzinfo).date() for e in parse(body).events.values()
        )
    ]


def read(body: bytes) -> SeenFeed:
    """A feed of several premises as icalendar reads it (vobject splits a NAME with commas,
    as a list of premises names has)."""
    assert_wire_format(body)
    return _by_icalendar(body)


def test_the_cap_is_1_mb() -> None:
    assert LIMIT == 1_000_000


def test_a_feed_over_the_cap_reaches_fewer_days_and_says_how_far(api: Api) -> None:
    api.premises("hall", opening_hours=ALL_DAY, rules=WIDE_RULES)
    booked = one_a_day(api)
    whole = fetch(api, PATH)
    assert "X-Feed-Narrowed" not in whole.headers
    assert reach_of(whole) == (today() - timedelta(days=30), today() + timedelta(days=365))
    assert event_days(whole.data) == booked

    limit = len(whole.data) // 2
    api.app.config["BOOKING_FEED_LIMIT"] = limit
    narrowed = fetch(api, PATH)

    assert len(narrowed.data) <= limit
    assert narrowed.headers["X-Feed-Narrowed"] == "true"
    assert narrowed.headers["ETag"] != whole.headers["ETag"]
    first, last = reach_of(narrowed)
    shown = event_days(narrowed.data)  # valid iCalendar, read by two parsers
    assert 0 < len(shown) < DAYS
    assert shown == booked[: len(shown)]  # today and the days ahead first
    assert last == booked[len(shown)] - timedelta(days=1)  # up to the first that did not fit
    assert first == today() - timedelta(days=30)  # the empty days back cost nothing
    said = unfolded(narrowed.data)
    assert f"X-WR-CALDESC:Varaukset / Bokningar / Bookings {first} – {last}" in said
    assert "under 1 MB" in said and "one feed per premises" in said


def test_an_asked_for_window_over_the_cap_narrows_too(api: Api) -> None:
    api.premises("hall", opening_hours=ALL_DAY, rules=WIDE_RULES)
    booked = one_a_day(api)
    start, end = today() + timedelta(days=3), today() + timedelta(days=700)
    asked = f"{PATH}?from={start}&to={end}"
    whole = fetch(api, asked)
    assert reach_of(whole) == (start, end)
    api.app.config["BOOKING_FEED_LIMIT"] = len(whole.data) // 2

    narrowed = fetch(api, asked)

    assert len(narrowed.data) <= len(whole.data) // 2
    first, last = reach_of(narrowed)
    assert first == start and start <= last < end  # from the first asked-for day on
    shown = event_days(narrowed.data)
    assert shown == [d for d in booked if first <= d <= last] and shown


def test_a_staff_feed_over_the_cap_narrows(api: Api) -> None:
    for premises_id in ("hall", "gym", "pool"):
        api.premises(premises_id, opening_hours=ALL_DAY, rules=WIDE_RULES)
        one_a_day(api, premises_id, 6)
    path = path_of(staff_token(api, ["hall", "gym", "pool"]))
    whole = fetch(api, path)
    assert len(read(whole.data).events) == 18
    api.app.config["BOOKING_FEED_LIMIT"] = len(whole.data) // 3

    narrowed = fetch(api, path)

    assert len(narrowed.data) <= len(whole.data) // 3
    assert narrowed.headers["X-Feed-Narrowed"] == "true"
    _, last = reach_of(narrowed)
    assert last < today() + timedelta(days=6)
    shown = read(narrowed.data).events.values()
    assert shown and all(
        "Osallistujia / Deltagare / Attendees" in (e.description or "") for e in shown
    )
    assert {e.start.astimezone(local(today(), 0).tzinfo).date() for e in shown} == {
        today() + timedelta(days=n) for n in range(1, (last - today()).days + 1)
    }


@pytest.mark.parametrize("private", [False, True])
def test_gzip_when_the_client_takes_it_under_an_etag_of_its_own(api: Api, private: bool) -> None:
    api.premises("hall", opening_hours=ALL_DAY, rules=WIDE_RULES)
    one_a_day(api, days=3)
    path = path_of(staff_token(api, ["hall"])) if private else PATH
    plain = fetch(api, path)
    zipped = fetch(api, path, **{"Accept-Encoding": "gzip, deflate"})

    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) < len(plain.data)
    assert plain.headers["Vary"] == zipped.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
    refused = fetch(api, path, **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data

    # Either ETag names the same data: 304, with the ETag of what would have been sent.
    for sent in (zipped.headers["ETag"], plain.headers["ETag"]):
        same = fetch(api, path, **{"Accept-Encoding": "gzip", "If-None-Match": sent})
        assert same.status_code == 304 and same.data == b""
        assert same.headers["ETag"] == zipped.headers["ETag"]
        assert same.headers["Vary"] == "Accept-Encoding"
    again = fetch(api, path, **{"Accept-Encoding": "gzip"})
    assert again.data == zipped.data  # the same text gives the same bytes (a strong ETag)


def test_the_feeds_page_says_how_far_a_new_feed_reaches_and_warns(site: Site, api: Api) -> None:
    names = ["hall", "gym", "pool", "sauna", "stage", "studio"]
    for premises_id in names:
        api.premises(premises_id, opening_hours=ALL_DAY, rules=WIDE_RULES)
    one_a_day(api, "hall", 8)
    staff = site.client("staff", lang="en")
    page = text(staff.get("/feeds"))
    assert "Calendar apps drop feeds over 1 MB" in page  # said before anything is ticked

    one = post_form(staff, "/feeds/private", {"premises": "hall"}, page="/feeds")
    assert one.status_code == 201
    said = text(one)
    assert re.search(r'id="feed-reach">This feed reaches from [^<]+ to [^<]+\.<', said)
    assert "feed-narrowed" not in said and "feed-many" not in said

    many = post_form(staff, "/feeds/private", {"premises": names}, page="/feeds")
    assert many.status_code == 201
    assert 'id="feed-many"' in text(many) and "feed-narrowed" not in text(many)

    api.app.config["BOOKING_FEED_LIMIT"] = 4000
    finnish = site.client("staff", lang="fi")
    narrowed = post_form(finnish, "/feeds/private", {"premises": names}, page="/feeds")
    assert narrowed.status_code == 201
    said = text(narrowed)
    assert 'id="feed-narrowed"' in said
    assert "Rajattu alle 1 Mt:n." in said and "Tilaa yksi syöte tilaa kohden" in said
    assert "Tämä syöte ulottuu" in said
    swedish = site.client("staff", lang="sv")
    assert "Begränsat till under 1 MB." in text(
        post_form(swedish, "/feeds/private", {"premises": names}, page="/feeds")
    )
