"""Public iCalendar feeds as calendar apps see them, on SQLite and PostgreSQL.

Every feed is read by two independent parsers (icalendar and vobject) that must agree; the
tests then check what a client would show: instants across both DST changes, cancellation
and approval semantics, the window, that a public feed holds no personal data, and the
HTTP caching contract (ETag, Last-Modified, 304).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import icalendar
import time_machine
import vobject

from tests.conftest import HELSINKI, Api, future_weekday, local

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
WIDE_RULES = {"max_duration_minutes": 600, "max_advance_days": 400}


# --- reading a feed as a client does ------------------------------------------------------


@dataclass(frozen=True)
class SeenEvent:
    uid: str
    summary: str
    start: datetime
    end: datetime
    status: str
    sequence: int
    stamp: datetime
    last_modified: datetime
    transp: str
    location: str | None
    description: str | None
    contact: str | None


@dataclass(frozen=True)
class SeenFeed:
    name: str
    calname: str
    refresh: tuple[str, str]  # (VALUE parameter, value)
    ttl: str
    events: dict[str, SeenEvent]


def assert_wire_format(body: bytes) -> None:
    """CRLF line ends, lines folded at 75 octets, UTF-8, UTC times, no METHOD."""
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    lines = body.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    body.decode("utf-8")
    names = [line.split(b":")[0].split(b";")[0] for line in lines if not line.startswith(b" ")]
    assert b"METHOD" not in names
    assert b"VERSION" in names and b"PRODID" in names
    for line in lines:
        if line.startswith((b"DTSTART", b"DTEND", b"DTSTAMP", b"LAST-MODIFIED")):
            assert line.endswith(b"Z") and b"TZID" not in line, line


def _by_icalendar(body: bytes) -> SeenFeed:
    calendar = icalendar.Calendar.from_ical(body)

    def text(component: Any, name: str) -> str | None:
        return str(component[name]) if name in component else None

    def instant(component: Any, name: str) -> datetime:
        value = component.decoded(name)
        assert value.tzinfo is not None
        return value.astimezone(UTC)

    refresh = calendar["REFRESH-INTERVAL"]
    events = {
        str(e["UID"]): SeenEvent(
            uid=str(e["UID"]),
            summary=str(e["SUMMARY"]),
            start=instant(e, "DTSTART"),
            end=instant(e, "DTEND"),
            status=str(e["STATUS"]),
            sequence=int(e["SEQUENCE"]),
            stamp=instant(e, "DTSTAMP"),
            last_modified=instant(e, "LAST-MODIFIED"),
            transp=str(e["TRANSP"]),
            location=text(e, "LOCATION"),
            description=text(e, "DESCRIPTION"),
            contact=text(e, "CONTACT"),
        )
        for e in calendar.walk("VEVENT")
    }
    return SeenFeed(
        name=str(calendar["NAME"]),
        calname=str(calendar["X-WR-CALNAME"]),
        refresh=(refresh.params.get("VALUE"), refresh.to_ical().decode()),
        ttl=str(calendar["X-PUBLISHED-TTL"]),
        events=events,
    )


def _by_vobject(body: bytes) -> SeenFeed:
    calendar = vobject.readOne(body.decode("utf-8"))
    props = calendar.contents

    def text(component: Any, name: str) -> str | None:
        found = component.contents.get(name)
        return str(found[0].value) if found else None

    def instant(component: Any, name: str) -> datetime:
        value = component.contents[name][0].value
        assert value.tzinfo is not None
        return value.astimezone(UTC)

    refresh = props["refresh-interval"][0]
    events = {
        e.uid.value: SeenEvent(
            uid=e.uid.value,
            summary=e.summary.value,
            start=instant(e, "dtstart"),
            end=instant(e, "dtend"),
            status=e.status.value,
            sequence=int(e.sequence.value),
            stamp=instant(e, "dtstamp"),
            last_modified=instant(e, "last-modified"),
            transp=e.transp.value,
            location=text(e, "location"),
            description=text(e, "description"),
            contact=text(e, "contact"),
        )
        for e in calendar.contents.get("vevent", [])
    }
    return SeenFeed(
        name=props["name"][0].value,
        calname=props["x-wr-calname"][0].value,
        refresh=(refresh.params["VALUE"][0], refresh.value),
        ttl=props["x-published-ttl"][0].value,
        events=events,
    )


def parse(body: bytes) -> SeenFeed:
    """The feed as both parsers read it; they must agree on every field."""
    assert_wire_format(body)
    seen = _by_icalendar(body)
    assert _by_vobject(body) == seen
    for event in seen.events.values():
        assert event.stamp == event.last_modified  # the last change, never "now"
    return seen


def unfolded(body: bytes) -> str:
    return body.decode("utf-8").replace("\r\n ", "")


def fetch(api: Api, path: str, **headers: str) -> Any:
    response = api.client.get(path, headers=headers)
    assert response.status_code in (200, 304), (response.status_code, response.data[:500])
    if response.status_code == 200:
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return response


def feed(api: Api, path: str, **headers: str) -> SeenFeed:
    response = fetch(api, path, **headers)
    assert response.status_code == 200
    return parse(response.data)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def today() -> date:
    return datetime.now(UTC).astimezone(HELSINKI).date()


def last_sunday(year: int, month: int) -> date:
    day = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def next_change(month: int) -> date:
    """The next DST change day in Helsinki (last Sunday of March or October)."""
    day = last_sunday(today().year, month)
    if day <= today() + timedelta(days=1):
        day = last_sunday(today().year + 1, month)
    return day


# --- the calendar as a client sees it ------------------------------------------------------


def test_calendar_properties_and_one_event_per_booking(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    placed = api.book("room", local(day, 10), local(day, 12), public=True, title="Shakki-ilta")
    assert placed.status_code == 201
    booking = placed.get_json()

    seen = feed(api, "/feeds/premises/room.ics")

    name = "Kokoushuone 2 / Meeting room 2 – varaukset / bokningar / bookings"
    assert seen.name == seen.calname == name
    assert seen.refresh == ("DURATION", "PT1H")
    assert seen.ttl == "PT1H"
    (event,) = seen.events.values()
    assert event.uid == booking["id"]
    assert (event.start, event.end) == (utc(local(day, 10)), utc(local(day, 12)))
    assert (event.summary, event.status, event.transp) == ("Shakki-ilta", "CONFIRMED", "OPAQUE")
    assert event.sequence == 0
    assert event.location == "Kokoushuone 2 / Meeting room 2, Raatihuoneenkatu 6, 50100 Mikkeli"
    # DTSTAMP is the booking's last change (its placement), not the moment of the request.
    created = datetime.fromisoformat(booking["created_at"])
    assert timedelta(0) <= event.stamp - created.replace(microsecond=0) < timedelta(seconds=5)


def test_instants_across_both_dst_changes(api: Api) -> None:
    api.premises("hall", opening_hours=ALL_DAY, rules=WIDE_RULES)
    spring, autumn = next_change(3), next_change(10)
    # The zone really changes on those days (a wrong rule here would make the test vacuous).
    assert local(spring, 0).utcoffset() == timedelta(hours=2)
    assert local(spring, 12).utcoffset() == timedelta(hours=3)
    assert local(autumn, 0).utcoffset() == timedelta(hours=3)
    assert local(autumn, 12).utcoffset() == timedelta(hours=2)
    wanted = {
        "before spring": (
            local(spring - timedelta(days=1), 10),
            local(spring - timedelta(days=1), 12),
        ),
        "over spring gap": (local(spring, 1), local(spring, 5)),
        "after spring": (local(spring, 10), local(spring, 12)),
        "over autumn fold": (local(autumn, 2), local(autumn, 5)),
        "after autumn": (local(autumn, 10), local(autumn, 12)),
    }
    ids = {}
    for title, (start, end) in wanted.items():
        placed = api.book("hall", start, end, title=title, public=True)
        assert placed.status_code == 201, placed.get_json()
        ids[title] = placed.get_json()["id"]

    seen = feed(api, f"/feeds/premises/hall.ics?from={today()}&to={autumn + timedelta(days=1)}")

    by_title = {e.summary: e for e in seen.events.values()}
    assert set(by_title) == set(wanted)
    for title, (start, end) in wanted.items():
        assert (by_title[title].start, by_title[title].end) == (utc(start), utc(end)), title
        assert by_title[title].uid == ids[title]
    # Wall clock 01:00-05:00 on the spring day is three real hours, 02:00-05:00 in autumn four.
    spring_day, autumn_day = spring.strftime("%Y%m%d"), autumn.strftime("%Y%m%d")
    before = (spring - timedelta(days=1)).strftime("%Y%m%d")
    assert by_title["over spring gap"].end - by_title["over spring gap"].start == timedelta(hours=3)
    assert by_title["over autumn fold"].end - by_title["over autumn fold"].start == timedelta(
        hours=4
    )
    text = unfolded(fetch(api, f"/feeds/premises/hall.ics?to={autumn}").data)
    assert f"DTSTART:{before}T080000Z" in text  # 10:00 EET
    assert f"DTSTART:{before}T230000Z" in text and f"DTEND:{spring_day}T020000Z" in text
    assert f"DTSTART:{spring_day}T070000Z" in text  # 10:00 EEST
    assert f"DTEND:{autumn_day}T030000Z" in text  # 05:00 EET after the fold
    assert f"DTSTART:{autumn_day}T080000Z" in text  # 10:00 EET


def test_cancellation_keeps_the_uid_raises_sequence_and_frees_the_time(api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    booking = api.book("room", local(day, 10), local(day, 12), public=True).get_json()
    first = feed(api, "/feeds/premises/room.ics").events[booking["id"]]

    cancelled = api.post(f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "flu"}, "booker")
    assert cancelled.status_code == 200

    seen = feed(api, "/feeds/premises/room.ics").events
    assert list(seen) == [booking["id"]]  # the same event, updated, not a new one
    after = seen[booking["id"]]
    assert after.status == "CANCELLED"
    assert after.sequence > first.sequence
    assert after.transp == "TRANSPARENT"  # no longer busy time
    # For clients that ignore STATUS:
    assert after.summary.startswith("Peruttu / Avbokad / Cancelled: ")
    assert after.last_modified >= first.last_modified
    assert (after.start, after.end) == (first.start, first.end)


def test_pending_booking_is_tentative_then_approved_or_rejected(api: Api) -> None:
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(3)
    approved = api.book("hall", local(day, 10), local(day, 11)).get_json()
    rejected = api.book("hall", local(day, 12), local(day, 13)).get_json()
    assert approved["status"] == rejected["status"] == "pending_approval"
    seen = feed(api, "/feeds/premises/hall.ics").events
    assert {e.status for e in seen.values()} == {"TENTATIVE"}
    assert {e.transp for e in seen.values()} == {"OPAQUE"}  # a pending booking holds its slot

    assert api.post(f"/api/v1/bookings/{approved['id']}/approve", None, "staff").status_code == 200
    rejecting = api.post(f"/api/v1/bookings/{rejected['id']}/reject", {"reason": "no"}, "staff")
    assert rejecting.status_code == 200

    seen = feed(api, "/feeds/premises/hall.ics").events
    assert (seen[approved["id"]].status, seen[approved["id"]].sequence) == ("CONFIRMED", 1)
    # A rejected booking tells clients it is off, like a cancellation, rather than vanishing.
    assert (seen[rejected["id"]].status, seen[rejected["id"]].sequence) == ("CANCELLED", 1)
    assert seen[rejected["id"]].transp == "TRANSPARENT"


def test_cancelled_bookings_leave_the_feed_after_30_days(api: Api) -> None:
    api.premises("room", rules=WIDE_RULES)
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(days=31), tick=False):
        # Placed and cancelled 31 days ago, for a time still ahead of us today.
        day = (now + timedelta(days=20)).astimezone(HELSINKI).date()
        old = api.book("room", local(day, 10), local(day, 11)).get_json()
        api.post(f"/api/v1/bookings/{old['id']}/cancel", {"reason": "x"}, "booker")
    with time_machine.travel(now - timedelta(days=29), tick=False):
        recent = api.book("room", local(day, 12), local(day, 13)).get_json()
        api.post(f"/api/v1/bookings/{recent['id']}/cancel", {"reason": "x"}, "booker")
    kept = api.book("room", local(day, 14), local(day, 15)).get_json()

    seen = feed(api, "/feeds/premises/room.ics").events

    assert set(seen) == {recent["id"], kept["id"]}
    assert seen[recent["id"]].status == "CANCELLED"


def test_window_is_30_days_back_to_365_ahead_and_can_be_moved(api: Api) -> None:
    api.premises("room", rules=WIDE_RULES)
    now = datetime.now(UTC)
    ids = {}
    with time_machine.travel(now - timedelta(days=45), tick=False):
        for name, offset in (("gone", -32), ("kept", -29)):
            day = today() + timedelta(days=offset + 45)
            ids[name] = api.book("room", local(day, 10), local(day, 11)).get_json()["id"]
    for name, offset in (("near", 360), ("far", 370)):
        day = today() + timedelta(days=offset)
        ids[name] = api.book("room", local(day, 10), local(day, 11)).get_json()["id"]

    assert set(feed(api, "/feeds/premises/room.ics").events) == {ids["kept"], ids["near"]}
    wider = feed(
        api,
        f"/feeds/premises/room.ics?from={today() - timedelta(days=40)}"
        f"&to={today() + timedelta(days=371)}",
    )
    assert set(wider.events) == set(ids.values())
    narrower = feed(api, f"/feeds/premises/room.ics?from={today()}&to={today()}")
    assert narrower.events == {}


def test_bad_windows_are_422_problems(api: Api) -> None:
    api.premises("room")
    for query, field in (
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("from=20270101", "from"),
        ("from=1990-01-01", "from"),
        ("to=2999-01-01", "to"),
        (f"from={today()}&to={today() - timedelta(days=1)}", "to"),
    ):
        response = api.client.get(f"/feeds/premises/room.ics?{query}")
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"
        assert list(response.get_json()["errors"]) == [field], query


# --- no personal data in public feeds ---------------------------------------------------------


def test_public_feed_shows_busy_times_without_personal_data(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    secret = api.book(
        "room",
        local(day, 10),
        local(day, 11),
        title="Hallituksen salainen kokous",
        notes="Avain: Liisa Virtanen 040 123 4567",
        public=False,
    ).get_json()
    public = api.book(
        "room",
        local(day, 12),
        local(day, 13),
        title="Avoin shakki-ilta",
        notes="Tuomas 050 765 4321",
        public=True,
    ).get_json()
    closure = api.post(
        "/api/v1/premises/room/closures",
        {
            "start": local(day, 15).isoformat(),
            "end": local(day, 18).isoformat(),
            "reason": "Putkiremontti, yhteyshenkilö Pekka",
        },
        role="staff",
    )
    assert closure.status_code == 201

    response = fetch(api, "/feeds/premises/room.ics")
    seen = parse(response.data).events
    text = unfolded(response.data)

    assert seen[secret["id"]].summary == "Varattu / Booked"
    assert seen[public["id"]].summary == "Avoin shakki-ilta"
    assert seen[closure.get_json()["id"]].summary == "Suljettu / Stängd / Closed"
    assert all(e.status == "CONFIRMED" and e.transp == "OPAQUE" for e in seen.values())
    for private in (
        "salainen",
        "Liisa",
        "040 123",
        "Tuomas",
        "050 765",
        "Putkiremontti",
        "Pekka",
        "Shakkikerho",  # the organisation
        "example.fi",  # the booker's e-mail
        "Test booker",
    ):
        assert private not in text, private
    for field in ("DESCRIPTION", "CONTACT", "ORGANIZER", "ATTENDEE"):
        assert f"\r\n{field}" not in text


# --- HTTP: validators and 304 ---------------------------------------------------------------


def test_etag_is_stable_until_the_scope_changes(api: Api) -> None:
    api.premises("room")
    api.premises("other")
    day = future_weekday(2)
    api.book("room", local(day, 10), local(day, 11))
    first = fetch(api, "/feeds/premises/room.ics")
    again = fetch(api, "/feeds/premises/room.ics")
    assert first.headers["ETag"] == again.headers["ETag"]
    assert first.data == again.data  # a snapshot without random parts
    assert first.headers["Last-Modified"] == again.headers["Last-Modified"]

    api.book("other", local(day, 10), local(day, 11))  # another premises: not this feed
    assert fetch(api, "/feeds/premises/room.ics").headers["ETag"] == first.headers["ETag"]

    api.book("room", local(day, 12), local(day, 13))
    changed = fetch(api, "/feeds/premises/room.ics")
    assert changed.headers["ETag"] != first.headers["ETag"]
    windowed = fetch(api, f"/feeds/premises/room.ics?to={day}")
    assert windowed.headers["ETag"] != changed.headers["ETag"]  # another window, another body

    # No content negotiation (Google's fetcher sends no Accept); HEAD gives the validators.
    as_json = api.client.get("/feeds/premises/room.ics", headers={"Accept": "application/json"})
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"] == "text/calendar; charset=utf-8"
    head = api.client.head("/feeds/premises/room.ics")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == as_json.headers["ETag"] == changed.headers["ETag"]


def test_if_none_match_gives_304_without_a_body(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 11)).get_json()
    etag = fetch(api, "/feeds/premises/room.ics").headers["ETag"]

    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = fetch(api, "/feeds/premises/room.ics", **{"If-None-Match": sent})
        assert response.status_code == 304, sent
        assert response.data == b""
        assert response.headers["ETag"] == etag
    stale = fetch(api, "/feeds/premises/room.ics", **{"If-None-Match": '"1-0000"'})
    assert stale.status_code == 200

    api.post(f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "x"}, "booker")
    after = fetch(api, "/feeds/premises/room.ics", **{"If-None-Match": etag})
    assert after.status_code == 200
    assert parse(after.data).events[booking["id"]].status == "CANCELLED"


def test_if_modified_since_is_honoured_only_when_truthful(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    api.book("room", local(day, 10), local(day, 11))
    fresh = fetch(api, "/feeds/premises/room.ics")
    # Right after a change, Last-Modified is sent a second early: a change later in the
    # same second must not be hidden behind a 304.
    just_now = fresh.headers["Last-Modified"]
    assert (
        fetch(api, "/feeds/premises/room.ics", **{"If-Modified-Since": just_now}).status_code == 200
    )

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=1), tick=False):
        settled = fetch(api, "/feeds/premises/room.ics")
        since = settled.headers["Last-Modified"]
        assert parsedate_to_datetime(since) >= parsedate_to_datetime(just_now)
        same = fetch(api, "/feeds/premises/room.ics", **{"If-Modified-Since": since})
        assert same.status_code == 304
        older = (parsedate_to_datetime(since) - timedelta(seconds=1)).strftime(
            "%a, %d %b %Y %H:%M:%S GMT"
        )
        assert (
            fetch(api, "/feeds/premises/room.ics", **{"If-Modified-Since": older}).status_code
            == 200
        )
        future = (datetime.now(UTC) + timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        # A date in the future is not truthful: ignored, the full feed comes back.
        assert (
            fetch(api, "/feeds/premises/room.ics", **{"If-Modified-Since": future}).status_code
            == 200
        )
        # If-None-Match wins over If-Modified-Since.
        both = {"If-Modified-Since": since, "If-None-Match": '"0-stale"'}
        assert fetch(api, "/feeds/premises/room.ics", **both).status_code == 200


def test_public_feed_links(api: Api) -> None:
    api.premises("room")
    links = api.get("/api/v1/premises/room/feed")
    assert links.status_code == 200
    body = links.get_json()
    assert body["https_url"] == "https://localhost/feeds/premises/room.ics"
    assert body["webcal_url"] == "webcal://localhost/feeds/premises/room.ics"
    assert api.client.get(body["url"].removeprefix("http://localhost")).status_code == 200
    assert api.get("/api/v1/premises/nowhere/feed").status_code == 404
    unknown = api.client.get("/feeds/premises/nowhere.ics")
    assert unknown.status_code == 404
    assert unknown.mimetype == "application/problem+json"
