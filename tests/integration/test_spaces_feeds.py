"""The iCalendar feeds of premises made of spaces (API.md: "the feeds (busy, no details)"),
on SQLite and PostgreSQL: a half's feed shows the whole hall's bookings and closures as busy
time without any detail of their booker, and the whole's feed the halves'; the same in a
staff's private feed; the ETag, Last-Modified, the kept bodies' deltas and the 1 MB cap
still hold, also when spaces change."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import time_machine
from sqlalchemy import select

from booking.clock import system_clock
from projections import rebuilding, runner
from projections.feed_entries import calendars_table, entries_table
from tests.conftest import Api, future_weekday, local
from tests.integration.test_feed_cap import reach_of, read
from tests.integration.test_feed_deltas import full_reads
from tests.integration.test_feeds import fetch, parse, today, unfolded
from tests.integration.test_feeds_private import path_of, staff_token
from tests.integration.test_spaces import EAST, WEST, WHOLE, rows

__all__ = ["full_reads"]

GYM = "Koulun sali / Skolans sal / School gym"
HALF = "Itäpuoli / Östra halvan / East half"
BUSY_WHOLE = f"Varattu / Booked ({GYM})"


def gym(api: Api) -> None:
    """The school gym of test_spaces, with names that tell its premises apart."""
    names = {
        WHOLE: {"fi": "Koulun sali", "sv": "Skolans sal", "en": "School gym"},
        EAST: {"fi": "Itäpuoli", "sv": "Östra halvan", "en": "East half"},
        WEST: {"fi": "Länsipuoli", "sv": "Västra halvan", "en": "West half"},
    }
    spaces = {WHOLE: ["koulu-ita", "koulu-lansi"], EAST: ["koulu-ita"], WEST: ["koulu-lansi"]}
    for premises_id in (WHOLE, EAST, WEST):
        api.premises(premises_id, name=names[premises_id], spaces=spaces[premises_id])


def vevent(text: str, uid: str) -> str:
    """The unfolded VEVENT of `uid` in a feed's text."""
    (found,) = [e for e in text.split("BEGIN:VEVENT")[1:] if f"\r\nUID:{uid}\r\n" in e]
    return found


def feed_of(api: Api, premises_id: str, **headers: str) -> Any:
    return fetch(api, f"/feeds/premises/{premises_id}.ics", **headers)


def test_a_half_s_feed_shows_the_whole_s_bookings_as_busy_without_details(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    whole = api.book(
        WHOLE, local(day, 10), local(day, 12), public=True, title="Salibandy", notes="Avain"
    ).get_json()
    east = api.book(EAST, local(day, 14), local(day, 15), public=True, title="Sulkapallo")
    west = api.book(WEST, local(day, 14), local(day, 15), title="Jooga").get_json()

    response = feed_of(api, EAST)
    seen = parse(response.data)
    text = unfolded(response.data)

    assert seen.name == f"{HALF} – varaukset / bokningar / bookings"  # its own name only
    busy = seen.events[whole["id"]]
    assert busy.summary == BUSY_WHOLE
    assert busy.location is not None and busy.location.startswith(GYM)
    assert (busy.status, busy.transp, busy.description) == ("CONFIRMED", "OPAQUE", None)
    assert seen.events[east.get_json()["id"]].summary == "Sulkapallo"  # its own, public
    assert west["id"] not in seen.events  # the halves never block each other
    for detail in ("Salibandy", "Avain", "Shakkikerho", "booker", "Jooga"):
        assert detail not in text
    # Either half blocks the whole: its feed shows the east half's booking as busy.
    of_whole = parse(feed_of(api, WHOLE).data)
    assert of_whole.events[east.get_json()["id"]].summary == f"Varattu / Booked ({HALF})"
    assert of_whole.events[whole["id"]].summary == "Salibandy"
    assert set(parse(feed_of(api, WEST).data).events) == {whole["id"], west["id"]}


def test_a_closure_of_the_whole_shows_in_a_half_s_feed_without_its_reason(api: Api) -> None:
    gym(api)
    day = future_weekday(3)
    closure = api.post(
        f"/api/v1/premises/{WHOLE}/closures",
        {"start": local(day, 8).isoformat(), "end": local(day, 22).isoformat(), "reason": "Lattia"},
        role="staff",
    ).get_json()
    response = feed_of(api, WEST)
    event = parse(response.data).events[closure["id"]]
    assert event.summary == f"Suljettu / Stängd / Closed ({GYM})"
    assert "Lattia" not in unfolded(response.data)


def test_a_staff_feed_shows_others_on_its_spaces_as_busy_and_its_own_in_detail(
    api: Api,
) -> None:
    gym(api)
    day = future_weekday(2)
    whole = api.book(
        WHOLE, local(day, 10), local(day, 12), title="Salibandy", notes="Avain", attendees=11
    ).get_json()
    east = api.book(EAST, local(day, 14), local(day, 15), title="Sulkapallo").get_json()

    response = fetch(api, path_of(staff_token(api, [EAST])))
    seen = parse(response.data)
    text = unfolded(response.data)
    assert seen.name == f"Tilavaraus: {HALF}"
    busy = seen.events[whole["id"]]
    assert busy.summary == BUSY_WHOLE
    assert (busy.description, busy.contact) == (None, None)
    for detail in ("Salibandy", "Avain", "Shakkikerho", "Attendees", "booker", "DESCRIPTION"):
        assert detail not in vevent(text, whole["id"])
    assert "Salibandy" not in text and "Avain" not in text
    own = seen.events[east["id"]]
    assert own.summary == "Sulkapallo" and own.contact is not None
    assert "Mikkelin Shakkikerho ry" in (own.description or "")

    # A feed of the whole and a half shows both in detail, each once.
    both = read(fetch(api, path_of(staff_token(api, [WHOLE, EAST]))).data)
    assert set(both.events) == {whole["id"], east["id"]}
    assert both.events[whole["id"]].summary == "Salibandy"
    assert "Avain" in (both.events[whole["id"]].description or "")


def test_a_staff_feed_s_etag_moves_with_the_premises_sharing_its_spaces_and_only_those(
    api: Api,
) -> None:
    """A private feed's token, keys, heads and the heads of the premises sharing a space
    with its keys come from one statement: a change of a premises sharing a space moves
    its ETag (never a 304 for the older body), a change of any other premises does not."""
    gym(api)
    day = future_weekday(2)
    half = path_of(staff_token(api, [EAST]))
    whole_and_half = path_of(staff_token(api, [WHOLE, EAST]))
    etags = {path: fetch(api, path).headers["ETag"] for path in (half, whole_and_half)}

    whole = api.book(WHOLE, local(day, 10), local(day, 12), title="Salibandy").get_json()
    changed = fetch(api, half, **{"If-None-Match": etags[half]})
    assert changed.status_code == 200
    assert parse(changed.data).events[whole["id"]].summary == BUSY_WHOLE
    etags[half] = changed.headers["ETag"]
    changed = fetch(api, whole_and_half, **{"If-None-Match": etags[whole_and_half]})
    assert changed.status_code == 200  # its own key: in detail (`read`: a NAME with a comma)
    assert read(changed.data).events[whole["id"]].summary == "Salibandy"
    etags[whole_and_half] = changed.headers["ETag"]

    # The west half shares a space with the whole, not with the east half.
    west = api.book(WEST, local(day, 14), local(day, 15), title="Jooga").get_json()
    assert fetch(api, half, **{"If-None-Match": etags[half]}).status_code == 304
    changed = fetch(api, whole_and_half, **{"If-None-Match": etags[whole_and_half]})
    assert changed.status_code == 200
    busy = read(changed.data).events[west["id"]]
    assert busy.summary == "Varattu / Booked (Länsipuoli / Västra halvan / West half)"
    assert "Jooga" not in unfolded(changed.data)


def test_a_change_of_the_whole_moves_the_half_s_etag_and_is_read_as_a_delta(
    api: Api, full_reads: list[str]
) -> None:
    gym(api)
    day = future_weekday(2)
    api.book(EAST, local(day, 8), local(day, 9))
    first = feed_of(api, EAST)
    etag = first.headers["ETag"]
    assert feed_of(api, EAST, **{"If-None-Match": etag}).status_code == 304
    assert len(full_reads) == 1

    whole = api.book(WHOLE, local(day, 10), local(day, 12)).get_json()
    changed = feed_of(api, EAST, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert parse(changed.data).events[whole["id"]].summary == BUSY_WHOLE
    cancel = api.post(f"/api/v1/bookings/{whole['id']}/cancel", {"reason": "x"}, role="booker")
    assert cancel.status_code == 200
    cancelled = parse(feed_of(api, EAST).data).events[whole["id"]]
    assert cancelled.status == "CANCELLED"
    assert cancelled.summary == f"Peruttu / Avbokad / Cancelled: {BUSY_WHOLE}"
    # Both changes came from the kept body and the entries changed since: no full read.
    assert len(full_reads) == 1
    # A change of the west half's alone leaves the east half's feed as it was.
    etag = feed_of(api, EAST).headers["ETag"]
    api.book(WEST, local(day, 15), local(day, 16))
    assert feed_of(api, EAST, **{"If-None-Match": etag}).status_code == 304


def test_a_change_of_spaces_changes_the_feeds_that_share_them(
    api: Api, clock: time_machine.Coordinates
) -> None:
    gym(api)
    api.premises("varasto", name={"fi": "Varasto", "en": "Store"})
    day = future_weekday(2)
    stored = api.book("varasto", local(day, 16), local(day, 17)).get_json()
    clock.shift(timedelta(minutes=5))  # the changes have settled: If-Modified-Since may 304
    before = feed_of(api, EAST)
    assert stored["id"] not in parse(before.data).events
    since = {"If-Modified-Since": before.headers["Last-Modified"]}
    assert feed_of(api, EAST, **since).status_code == 304

    joined = api.patch("/api/v1/premises/varasto", {"spaces": ["koulu-ita"]}, role="staff")
    assert joined.status_code == 200, joined.get_json()
    sharing = feed_of(api, EAST, **{"If-None-Match": before.headers["ETag"]})
    assert sharing.status_code == 200
    assert parse(sharing.data).events[stored["id"]].summary.startswith("Varattu / Booked")
    clock.shift(timedelta(minutes=5))
    sharing = feed_of(api, EAST)  # settled
    assert (
        feed_of(api, EAST, **{"If-Modified-Since": sharing.headers["Last-Modified"]}).status_code
        == 304
    )

    # Leaving again: the half's feed loses the store's booking, and no validator of the
    # fuller body may answer 304 for it (Last-Modified moved forward, not back).
    left = api.patch("/api/v1/premises/varasto", {"spaces": ["varasto"]}, role="staff")
    assert left.status_code == 200, left.get_json()
    after = feed_of(api, EAST, **{"If-Modified-Since": sharing.headers["Last-Modified"]})
    assert after.status_code == 200
    assert stored["id"] not in parse(after.data).events
    assert parsedate_to_datetime(after.headers["Last-Modified"]) > parsedate_to_datetime(
        sharing.headers["Last-Modified"]
    )
    assert feed_of(api, EAST, **{"If-None-Match": sharing.headers["ETag"]}).status_code == 200

    # The feeds' tables rebuilt from the log equal the live ones.
    live = {t.name: rows(api.engine, t) for t in (entries_table, calendars_table)}
    rebuilding.rebuild(api.engine, runner.INLINE, clock=system_clock)
    assert {t.name: rows(api.engine, t) for t in (entries_table, calendars_table)} == live


def test_a_half_s_feed_over_the_cap_narrows_with_the_whole_s_bookings(api: Api) -> None:
    gym(api)
    booked = []
    for n in range(1, 9):
        day = today() + timedelta(days=n)
        premises_id = WHOLE if n % 2 else EAST
        placed = api.book(premises_id, local(day, 10), local(day, 11))
        assert placed.status_code == 201, placed.get_json()
        booked.append(placed.get_json()["id"])
    whole = feed_of(api, EAST)
    assert set(parse(whole.data).events) == set(booked)
    limit = len(whole.data) * 2 // 3
    api.app.config["BOOKING_FEED_LIMIT"] = limit

    narrowed = feed_of(api, EAST)

    assert len(narrowed.data) <= limit
    assert narrowed.headers["X-Feed-Narrowed"] == "true"
    assert narrowed.headers["ETag"] != whole.headers["ETag"]
    shown = parse(narrowed.data).events
    assert 0 < len(shown) < len(booked)
    _, last = reach_of(narrowed)
    assert all(e.start.astimezone(local(last, 0).tzinfo).date() <= last for e in shown.values())


def test_feed_entries_stay_one_per_booking(api: Api) -> None:
    """The busy time of the others is read, never copied into the half's entries."""
    gym(api)
    day = future_weekday(2)
    whole = api.book(WHOLE, local(day, 10), local(day, 12)).get_json()
    with api.engine.connect() as conn:
        found = conn.execute(
            select(entries_table.c.premises_id).where(entries_table.c.ref_id == whole["id"])
        ).scalars()
        assert list(found) == [WHOLE]
