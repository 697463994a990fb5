"""The per-process caches of public feeds and availability (booking/cache.py), on SQLite and
PostgreSQL: a cached answer is byte for byte what rendering afresh gives, every write shows
in the very next read, and nothing of a private feed is kept."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from booking import feeds
from booking.cache import caches
from events.sql import read_transaction
from projections.feed_entries import calendars
from tests.conftest import Api, future_weekday, local
from tests.integration.test_feeds import fetch, unfolded
from tests.integration.test_feeds_private import path_of, staff_token


def fresh_public_feed(api: Api, premises_id: str) -> bytes:
    """The public feed as the icalendar library renders it whole, without any cache."""
    zone = ZoneInfo(api.app.config["BOOKING_TIMEZONE"])
    window = feeds.window_of(datetime.now(UTC).astimezone(zone).date(), zone, None, None)
    scope = feeds.Scope("premises", [premises_id], False, f"public:{premises_id}")
    with api.app.app_context(), read_transaction(api.engine) as conn:
        heads = calendars(conn, "premises", [premises_id])
        rows = feeds.entry_rows(conn, scope, window)
        locations = {h.key: feeds.premises_label(h) for h in heads}
        name = feeds.calendar_name(conn, scope, heads)
        reach = feeds.reach_text(window.first, window.last, False)
        return feeds.render(name, rows, locations, None, reach)


def test_a_cached_public_feed_is_the_whole_rendering_byte_for_byte(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    api.book("room", local(day, 8), local(day, 9), public=True, title="Shakki-ilta")
    api.book("room", local(day, 10), local(day, 11), title="Yksityinen")
    cancelled = api.book("room", local(day, 12), local(day, 13)).get_json()
    api.post(f"/api/v1/bookings/{cancelled['id']}/cancel", {"reason": "Ei"}, role="booker")
    closure = {"start": local(day, 20).isoformat(), "end": local(day, 22).isoformat()}
    api.post("/api/v1/premises/room/closures", {**closure, "reason": "Remontti"}, role="staff")
    bodies = caches(api.app).feed_bodies

    first = fetch(api, "/feeds/premises/room.ics")
    hits = bodies.hits
    again = fetch(api, "/feeds/premises/room.ics")

    assert bodies.hits == hits + 1  # the second answer came from the cache
    assert first.data == again.data == fresh_public_feed(api, "room")
    assert first.headers["ETag"] == again.headers["ETag"]
    assert unfolded(first.data).count("BEGIN:VEVENT") == 4


def test_every_change_shows_in_the_next_feed_read(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    path = "/feeds/premises/room.ics"
    before = fetch(api, path)
    fetch(api, path)  # now kept

    placed = api.book("room", local(day, 10), local(day, 11), public=True, title="Kuoro")
    booked = fetch(api, path)
    assert "SUMMARY:Kuoro" in unfolded(booked.data)
    assert booked.headers["ETag"] != before.headers["ETag"]

    cancel = f"/api/v1/bookings/{placed.get_json()['id']}/cancel"
    assert api.post(cancel, {"reason": "Ei"}, role="booker").status_code == 200
    assert "STATUS:CANCELLED" in unfolded(fetch(api, path).data)

    renamed = api.patch("/api/v1/premises/room", {"address": "Porrassalmenkatu 1"}, role="staff")
    assert renamed.status_code == 200, renamed.get_json()
    body = fetch(api, path).data
    assert "Porrassalmenkatu 1" in unfolded(body)
    assert body == fresh_public_feed(api, "room")


def test_nothing_of_a_private_feed_is_kept(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    api.book("room", local(day, 10), local(day, 11), title="Salainen", notes="Ovikoodi 1234")
    kept = caches(api.app)
    sizes = (len(kept.feed_bodies), len(kept.feed_events))

    private = fetch(api, path_of(staff_token(api, ["room"])))

    assert "Salainen" in unfolded(private.data)
    assert (len(kept.feed_bodies), len(kept.feed_events)) == sizes


def test_cached_availability_follows_every_change(api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    path = f"/api/v1/premises/room/availability?from={day}&to={day}"
    kept = caches(api.app).availability

    def busy() -> list[tuple[str, str]]:
        days = api.get(path).get_json()["days"]
        return [(b["kind"], b["start"]) for b in days[0]["busy"]]

    assert busy() == []
    hits = kept.hits
    assert busy() == []
    assert kept.hits == hits + 1  # the repeat came from the cache

    placed = api.book("room", local(day, 10), local(day, 11)).get_json()
    assert busy() == [("booking", local(day, 10).isoformat())]
    cancel = f"/api/v1/bookings/{placed['id']}/cancel"
    assert api.post(cancel, {"reason": "Ei"}, role="booker").status_code == 200
    assert busy() == []

    hours = {d: [["12:00", "14:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    changed = api.patch("/api/v1/premises/room", {"opening_hours": hours}, role="staff")
    assert changed.status_code == 200, changed.get_json()
    opened = api.get(path).get_json()["days"][0]["open"]
    assert opened == [[local(day, 12).isoformat(), local(day, 14).isoformat()]]

    closure = {"start": local(day, 12).isoformat(), "end": local(day, 13).isoformat()}
    api.post("/api/v1/premises/room/closures", {**closure, "reason": "Remontti"}, role="staff")
    cached = api.get(path)
    assert [(b["kind"], b["start"]) for b in cached.get_json()["days"][0]["busy"]] == [
        ("closure", local(day, 12).isoformat())
    ]
    caches(api.app).availability = type(kept)(kept.max_bytes)  # forget everything
    afresh = api.get(path)
    assert cached.data == afresh.data
    assert cached.headers["Content-Type"] == afresh.headers["Content-Type"] == "application/json"


def test_unknown_premises_availability_is_still_404(api: Api) -> None:
    day = future_weekday(3)
    response = api.get(f"/api/v1/premises/nowhere/availability?from={day}&to={day}")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
