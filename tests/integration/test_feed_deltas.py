"""A public feed's next body is made from the last one and the entries changed since
(booking/feeds/bodies.py `PublicBody`), on SQLite and PostgreSQL: after every kind of change it is
byte for byte what rendering every entry afresh gives, and it reads every entry again only
where it must (a new entry starting with another, a renamed premises, a new window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import and_, func, select

from booking import feeds
from booking.feeds import query
from events.sql import read_transaction
from projections.feed_entries import calendars_table, entries_table
from tests.conftest import Api, future_weekday, local
from tests.integration.test_feeds import fetch, unfolded

PATH = "/feeds/premises/room.ics"
ALL_ENTRIES = feeds.entry_rows  # unspied, for `fresh`


def fresh(api: Api, first: str | None = None, last: str | None = None) -> bytes:
    """The public feed of `room` rendered whole by the icalendar library, no cache."""
    zone = ZoneInfo(api.app.config["BOOKING_TIMEZONE"])
    window = feeds.window_of(datetime.now(UTC).astimezone(zone).date(), zone, first, last)
    scope = feeds.Scope("premises", ["room"], False, "public:room")
    with api.app.app_context(), read_transaction(api.engine) as conn:
        heads = feeds.heads_of(conn, "premises", ["room"])
        rows = ALL_ENTRIES(conn, scope, window)
        locations = {h.key: feeds.premises_label(h) for h in heads}
        name = feeds.calendar_name(conn, scope, heads)
        reach = feeds.reach_text(window.first, window.last, False)
        return feeds.render(name, rows, locations, None, reach)


@pytest.fixture
def full_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The scopes whose every entry a request read (`entry_rows`), in order."""
    seen: list[str] = []

    def counted(conn: Any, scope: feeds.Scope, window: feeds.Window) -> list[Any]:
        seen.append(scope.ident)
        return ALL_ENTRIES(conn, scope, window)

    monkeypatch.setattr(query, "entry_rows", counted)
    return seen


def test_each_change_after_the_first_read_reads_only_what_changed(
    api: Api, full_reads: list[str]
) -> None:
    api.premises("room")
    day = future_weekday(2)
    api.book("room", local(day, 12), local(day, 13), public=True, title="Kuoro")
    assert fetch(api, PATH).data == fresh(api)
    assert full_reads == ["public:room"]  # the first body reads every entry

    later = api.book("room", local(day, 16), local(day, 17), title="Yksityinen").get_json()
    assert fetch(api, PATH).data == fresh(api)
    earlier = api.book("room", local(day, 8), local(day, 9), public=True, title="Aamu")
    assert fetch(api, PATH).data == fresh(api)
    cancelled = api.post(f"/api/v1/bookings/{later['id']}/cancel", {"reason": "Ei"}, role="booker")
    assert cancelled.status_code == 200
    body = fetch(api, PATH).data
    assert body == fresh(api)
    assert "Peruttu / Avbokad / Cancelled: Varattu / Booked" in unfolded(body)
    closure = {"start": local(day, 20).isoformat(), "end": local(day, 22).isoformat()}
    assert (
        api.post(
            "/api/v1/premises/room/closures", {**closure, "reason": "Remontti"}, role="staff"
        ).status_code
        == 201
    )
    body = fetch(api, PATH).data
    assert body == fresh(api)
    assert unfolded(body).count("BEGIN:VEVENT") == 4
    assert earlier.status_code == 201

    assert full_reads == ["public:room"]  # every later body came from the changes


def test_a_new_entry_starting_with_another_reads_every_entry(
    api: Api, full_reads: list[str]
) -> None:
    api.premises("room")
    day = future_weekday(3)
    placed = api.book("room", local(day, 10), local(day, 11), title="Eka").get_json()
    api.post(f"/api/v1/bookings/{placed['id']}/cancel", {"reason": "Ei"}, role="booker")
    fetch(api, PATH)
    del full_reads[:]

    # The same slot again: two entries start at once, and the database orders them by UID.
    assert api.book("room", local(day, 10), local(day, 11), title="Toka").status_code == 201
    body = fetch(api, PATH).data

    assert body == fresh(api)
    assert unfolded(body).count("BEGIN:VEVENT") == 2
    assert full_reads == ["public:room"]


def test_a_renamed_premises_reads_every_entry(api: Api, full_reads: list[str]) -> None:
    api.premises("room")
    day = future_weekday(1)
    api.book("room", local(day, 10), local(day, 11))
    fetch(api, PATH)
    del full_reads[:]

    renamed = api.patch("/api/v1/premises/room", {"address": "Porrassalmenkatu 1"}, role="staff")
    assert renamed.status_code == 200, renamed.get_json()
    body = fetch(api, PATH).data

    assert "Porrassalmenkatu 1" in unfolded(body)
    assert body == fresh(api)
    assert full_reads == ["public:room"]


def test_a_change_outside_a_narrow_window_stays_out_of_it(api: Api, full_reads: list[str]) -> None:
    api.premises("room")
    day = future_weekday(2)
    first, last = day.isoformat(), (day + timedelta(days=1)).isoformat()
    narrow = f"{PATH}?from={first}&to={last}"
    inside = api.book("room", local(day, 10), local(day, 11), title="Sisällä").get_json()
    assert fetch(api, narrow).data == fresh(api, first, last)

    outside = api.book(
        "room", local(day + timedelta(days=3), 10), local(day, 11) + timedelta(days=3)
    )
    assert outside.status_code == 201, outside.get_json()
    api.post(f"/api/v1/bookings/{inside['id']}/cancel", {"reason": "Ei"}, role="booker")
    body = fetch(api, narrow).data

    assert body == fresh(api, first, last)
    assert unfolded(body).count("BEGIN:VEVENT") == 1
    assert full_reads == ["public:room"]


def test_a_kept_feed_answers_304_until_each_change_and_the_change_after(
    api: Api, full_reads: list[str]
) -> None:
    """The conditional GET a calendar client sends, against a kept body: 304 while nothing
    changed, and after each kind of change the current body (never a 304, never the kept
    one). On PostgreSQL the heads' read looks for changed entries only when the premises'
    own head has moved (`query._heads_and_changed`): that rests on every change of an entry
    moving its premises' head to at least its position, checked here too."""
    api.premises("room", rules={"requires_approval": True})
    api.premises("other")
    day = future_weekday(2)
    first = api.book("room", local(day, 10), local(day, 11), public=True, title="Kuoro")
    second = api.book("room", local(day, 12), local(day, 13), title="Yksityinen")
    first_id, second_id = first.get_json()["id"], second.get_json()["id"]
    closure = {
        "start": local(day, 20).isoformat(),
        "end": local(day, 21).isoformat(),
        "reason": "Remontti",
    }
    changes: list[tuple[str, Any]] = [
        ("placed", lambda: api.book("room", local(day, 8), local(day, 9), public=True)),
        ("approved", lambda: api.post(f"/api/v1/bookings/{first_id}/approve", None, "staff")),
        (
            "rejected",
            lambda: api.post(f"/api/v1/bookings/{second_id}/reject", {"reason": "Ei"}, "staff"),
        ),
        (
            "cancelled",
            lambda: api.post(f"/api/v1/bookings/{first_id}/cancel", {"reason": "Ei"}, "booker"),
        ),
        ("closed", lambda: api.post("/api/v1/premises/room/closures", closure, "staff")),
        (
            "renamed",
            lambda: api.patch("/api/v1/premises/room", {"address": "Porrassalmenkatu 1"}, "staff"),
        ),
    ]
    etag = fetch(api, PATH).headers["ETag"]
    for hour, (name, change) in enumerate(changes, start=8):
        for _ in range(2):  # the body is kept: the heads' read carries `since` from now on
            assert fetch(api, PATH, **{"If-None-Match": etag}).status_code == 304, name
        other = api.book("other", local(day, hour), local(day, hour + 1))  # not this feed's
        assert other.status_code == 201, other.get_json()
        assert fetch(api, PATH, **{"If-None-Match": etag}).status_code == 304, name
        assert change().status_code in (200, 201), name
        answer = fetch(api, PATH, **{"If-None-Match": etag})
        assert answer.status_code == 200, name
        assert answer.headers["ETag"] != etag, name
        assert answer.data == fresh(api), name
        etag = answer.headers["ETag"]
    body = unfolded(answer.data)
    assert body.count("BEGIN:VEVENT") == 4 and "Porrassalmenkatu 1" in body
    assert "STATUS:CANCELLED" in body and "STATUS:TENTATIVE" in body
    # Only the renamed premises' body was read whole again (and the first).
    assert full_reads == ["public:room", "public:room"]

    e, c = entries_table, calendars_table
    with read_transaction(api.engine) as conn:
        behind = conn.execute(
            select(e.c.ref_id, e.c.position, c.c.position)
            .join(c, and_(c.c.scope == "premises", c.c.key == e.c.premises_id))
            .where(e.c.position > c.c.position)
        ).all()
        count = conn.execute(select(func.count()).select_from(e)).scalar_one()
    assert count == 4 + len(changes) and behind == []
