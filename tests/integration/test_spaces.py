"""Premises made of spaces (API.md): a hall and its halves never double-booked, over HTTP,
on both databases — and every answer that shows time shows what the others hold."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from booking.clock import system_clock
from events.sql import make_engine, read_transaction
from projections import rebuilding, runner
from projections.availability import busy_table, spaces_table
from projections.bookings import bookings_table
from projections.catalogue import premises_table
from tests.conftest import Api, future_weekday, local, premises_body
from tests.integration.test_concurrency import (
    _process_racer,
    in_threads,
    make_app,
    post_booking,
)

WHOLE, EAST, WEST = "koulu-sali", "koulu-sali-ita", "koulu-sali-lansi"


def gym(api: Api, **rules: Any) -> None:
    """A school gym that splits in halves: three premises over two spaces."""
    api.premises(WHOLE, spaces=["koulu-ita", "koulu-lansi"], capacity=60, rules=rules)
    api.premises(EAST, spaces=["koulu-ita"], capacity=30, rules=rules)
    api.premises(WEST, spaces=["koulu-lansi"], capacity=30, rules=rules)


def rows(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with read_transaction(engine) as conn:
        return sorted(tuple(r) for r in conn.execute(select(table)))


def test_a_premises_occupies_its_own_space_by_default(api: Api) -> None:
    created = api.premises("room")
    assert created["spaces"] == ["room"]
    assert api.get("/api/v1/premises/room").get_json()["spaces"] == ["room"]


def test_the_whole_blocks_the_halves_and_either_half_the_whole(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    assert api.book(EAST, local(day, 10), local(day, 12)).status_code == 201
    # The other half is free at the same time: halves never block each other.
    assert api.book(WEST, local(day, 10), local(day, 12)).status_code == 201
    taken = api.book(WHOLE, local(day, 11), local(day, 13))
    assert taken.status_code == 409
    body = taken.get_json()
    assert {c["via"] for c in body["conflicts"]} == {EAST, WEST}
    assert {c["kind"] for c in body["conflicts"]} == {"booking"}
    # Booking the whole first blocks both halves.
    assert api.book(WHOLE, local(day, 14), local(day, 16)).status_code == 201
    refused = api.book(WEST, local(day, 15), local(day, 17))
    assert refused.status_code == 409
    assert refused.get_json()["conflicts"][0]["via"] == WHOLE
    assert api.book(WEST, local(day, 16), local(day, 17)).status_code == 201


def test_buffers_hold_across_premises(api: Api) -> None:
    gym(api, buffer_minutes=30)
    day = future_weekday(3)
    assert api.book(WHOLE, local(day, 10), local(day, 12)).status_code == 201
    assert api.book(EAST, local(day, 12, 15), local(day, 13)).status_code == 409
    assert api.book(EAST, local(day, 12, 30), local(day, 13)).status_code == 201


def test_availability_shows_the_others_as_busy_with_via_and_no_details(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    booked = api.book(WHOLE, local(day, 10), local(day, 12), public=True, title="Salibandy")
    assert booked.status_code == 201
    answer = api.get(f"/api/v1/premises/{EAST}/availability?from={day}&to={day}").get_json()
    (busy,) = answer["days"][0]["busy"]
    assert busy == {
        "start": local(day, 10).isoformat(),
        "end": local(day, 12).isoformat(),
        "kind": "booking",
        "via": WHOLE,
    }
    assert [local(day, 10).isoformat(), local(day, 12).isoformat()] not in answer["days"][0]["free"]
    own = api.get(f"/api/v1/premises/{WHOLE}/availability?from={day}&to={day}").get_json()
    assert own["days"][0]["busy"][0]["title"] == "Salibandy"
    assert "via" not in own["days"][0]["busy"][0]
    # A half's booking shows on the whole once, though the whole has both spaces.
    assert api.book(WEST, local(day, 13), local(day, 14)).status_code == 201
    whole = api.get(f"/api/v1/premises/{WHOLE}/availability?from={day}&to={day}").get_json()
    assert [b.get("via") for b in whole["days"][0]["busy"]] == [None, WEST]


def test_search_leaves_out_premises_whose_floor_is_taken(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    assert api.book(EAST, local(day, 10), local(day, 12)).status_code == 201
    window = f"start={local(day, 10, 30).isoformat()}&end={local(day, 11).isoformat()}"
    found = api.get("/api/v1/availability?" + window.replace("+", "%2B")).get_json()
    assert {p["id"] for p in found["premises"]} == {WEST}


def test_closing_the_whole_closes_the_halves_and_a_half_blocks_the_whole(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    closure = {
        "start": local(day, 8).isoformat(),
        "end": local(day, 12).isoformat(),
        "reason": "Lattiaremontti",
    }
    assert api.post(f"/api/v1/premises/{WHOLE}/closures", closure, role="staff").status_code == 201
    closed = api.book(EAST, local(day, 9), local(day, 10))
    assert closed.status_code == 422
    assert "start" in closed.get_json()["errors"]
    answer = api.get(f"/api/v1/premises/{WEST}/availability?from={day}&to={day}").get_json()
    assert answer["days"][0]["busy"][0]["kind"] == "closure"
    assert answer["days"][0]["busy"][0]["via"] == WHOLE
    half = {**closure, "start": local(day, 14).isoformat(), "end": local(day, 16).isoformat()}
    assert api.post(f"/api/v1/premises/{EAST}/closures", half, role="staff").status_code == 201
    assert api.book(WHOLE, local(day, 14), local(day, 15)).status_code == 422
    assert api.book(WEST, local(day, 14), local(day, 15)).status_code == 201


def test_a_closure_of_the_whole_meets_the_halves_bookings(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    east = api.book(EAST, local(day, 10), local(day, 11)).get_json()
    closure = {
        "start": local(day, 8).isoformat(),
        "end": local(day, 12).isoformat(),
        "reason": "Vesivahinko",
    }
    refused = api.post(f"/api/v1/premises/{WHOLE}/closures", closure, role="staff")
    assert refused.status_code == 409
    assert refused.get_json()["conflicts"][0]["via"] == EAST
    done = api.post(
        f"/api/v1/premises/{WHOLE}/closures", {**closure, "cancel_conflicting": True}, role="staff"
    )
    assert done.status_code == 201
    cancelled = api.get(f"/api/v1/bookings/{east['id']}", role="booker").get_json()
    assert cancelled["status"] == "cancelled"
    assert "Vesivahinko" in cancelled["reason"]
    assert_rebuild_equals_live(api.engine)


def test_bad_spaces_are_422(api: Api) -> None:
    for spaces in ([], ["a", "a"], [f"s{n}" for n in range(21)], [""], "hall", [3]):
        response = api.post(
            "/api/v1/premises",
            {**premises_body("bad"), "spaces": spaces},
            role="staff",
        )
        assert response.status_code == 422, (spaces, response.get_json())
        assert "spaces" in response.get_json()["errors"]
    api.premises("room")
    patched = api.patch("/api/v1/premises/room", {"spaces": []}, role="staff")
    assert patched.status_code == 422
    assert api.get("/api/v1/premises/room").get_json()["spaces"] == ["room"]


def test_patch_of_spaces_that_would_collide_is_409_with_conflicts(api: Api) -> None:
    api.premises("sali", spaces=["sali"])
    api.premises("sali-puoli")
    day = future_weekday(2)
    assert api.book("sali", local(day, 10), local(day, 12)).status_code == 201
    assert api.book("sali-puoli", local(day, 11), local(day, 13)).status_code == 201
    refused = api.patch("/api/v1/premises/sali-puoli", {"spaces": ["sali"]}, role="staff")
    assert refused.status_code == 409
    (conflict,) = refused.get_json()["conflicts"]
    assert conflict["via"] == "sali"
    assert datetime.fromisoformat(conflict["start"]) == local(day, 10)
    assert api.get("/api/v1/premises/sali-puoli").get_json()["spaces"] == ["sali-puoli"]
    # A new space id is created by naming it; the change is an event and moves its rows.
    moved = api.patch("/api/v1/premises/sali-puoli", {"spaces": ["uusi-tila"]}, role="staff")
    assert moved.status_code == 200
    assert moved.get_json()["spaces"] == ["uusi-tila"]
    with read_transaction(api.engine) as conn:
        spaces = conn.execute(
            select(busy_table.c.space_id).where(busy_table.c.premises_id == "sali-puoli")
        ).scalars()
        assert list(spaces) == ["uusi-tila"]
    # Sharing it with free time is fine, and from then on they block each other.
    api.premises("iso-sali", spaces=["uusi-tila", "muu"])
    assert api.book("iso-sali", local(day, 12), local(day, 14)).status_code == 409
    assert api.book("iso-sali", local(day, 13), local(day, 14)).status_code == 201
    assert_rebuild_equals_live(api.engine)


def test_threads_booking_the_whole_and_both_halves_at_once(api: Api) -> None:
    """60 attempts at one time: the whole alone, or halves only — never the whole and a half."""
    gym(api)
    token = api.token("booker")
    day = future_weekday(4)
    bodies = [
        {
            "premises_id": (WHOLE, EAST, WEST)[i % 3],
            "start": local(day, 18).isoformat(),
            "end": local(day, 20).isoformat(),
            "title": "Vuoro",
            "attendees": 10,
        }
        for i in range(60)
    ]
    results = in_threads(len(bodies), lambda i: post_booking(api.app, token, bodies[i]))
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, results
    won = sorted(body["premises_id"] for status, _, body in results if status == 201)
    assert won in ([WHOLE], [EAST, WEST]), won
    assert_rebuild_equals_live(api.engine)


def assert_rebuild_equals_live(engine: Engine) -> None:
    tables = (busy_table, spaces_table, bookings_table, premises_table)
    live = {t.name: rows(engine, t) for t in tables}
    rebuilding.rebuild(engine, runner.INLINE, clock=system_clock)
    assert {t.name: rows(engine, t) for t in tables} == live


def test_the_busy_table_keeps_a_row_per_space(api: Api) -> None:
    gym(api)
    day = future_weekday(2)
    booked = api.book(WHOLE, local(day, 10), local(day, 11)).get_json()
    with read_transaction(api.engine) as conn:
        found = conn.execute(
            select(busy_table.c.space_id).where(busy_table.c.ref_id == booked["id"])
        ).scalars()
        assert sorted(found) == ["koulu-ita", "koulu-lansi"]
    cancel = api.post(f"/api/v1/bookings/{booked['id']}/cancel", {"reason": "x"}, role="booker")
    assert cancel.status_code == 200
    assert [r for r in rows(api.engine, busy_table) if r[1] == booked["id"]] == []


@pytest.mark.postgres
def test_processes_booking_the_whole_and_both_halves_at_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Three rounds of 60 attempts from 5 processes (12 threads each) at one slot of a gym:
    each round ends with the whole alone or with halves only, never the whole and a half."""
    engine = make_engine(postgres_url)
    app = make_app(engine, tmp_path)
    api = Api(app, app.test_client())
    gym(api)
    days = [future_weekday(n) for n in (2, 3, 4)]
    processes, threads = 5, 12
    engine.dispose()  # no pooled connection crosses the fork
    context = multiprocessing.get_context("fork")
    ready, results = context.Queue(), context.Queue()
    go = [context.Event() for _ in days]
    workers = []
    for p in range(processes):
        rounds = [
            [
                {
                    "premises_id": (WHOLE, EAST, WEST)[(p * threads + i) % 3],
                    "start": local(day, 18).isoformat(),
                    "end": local(day, 20).isoformat(),
                    "title": "Vuoro",
                    "attendees": 10,
                }
                for i in range(threads)
            ]
            for day in days
        ]
        args = (postgres_url, str(tmp_path), api.token("booker"), rounds, ready, go, results)
        workers.append(context.Process(target=_process_racer, args=args))
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        for event in go:
            event.set()
            found = [item for _ in workers for item in results.get(timeout=90)]
            assert len(found) == processes * threads
            assert {status for status, _ in found} == {201, 409}, found
    finally:
        for worker in workers:
            worker.join(timeout=30)
    with read_transaction(engine) as conn:
        placed = conn.execute(
            select(bookings_table.c.premises_id, bookings_table.c.start).where(
                bookings_table.c.status == "confirmed"
            )
        ).all()
    for day in days:
        won = sorted(p for p, start in placed if start == local(day, 18))
        assert won in ([WHOLE], [EAST, WEST]), (day, won)
    assert_rebuild_equals_live(engine)
    engine.dispose()


def test_the_premises_page_names_the_whole_and_the_parts_and_marks_the_whole_booked(
    api: Api,
) -> None:
    gym(api)
    day = future_weekday(1)
    assert api.book(WHOLE, local(day, 10), local(day, 12)).status_code == 201
    assert api.book(EAST, local(day, 14), local(day, 15)).status_code == 201
    week = f"week={day.isoformat()}"
    half = api.client.get(f"/premises/{EAST}?{week}&lang=en").get_data(as_text=True)
    assert "Part of" in half and f'href="/premises/{WHOLE}"' in half
    assert "Booked (whole hall)" in half
    whole = api.client.get(f"/premises/{WHOLE}?{week}&lang=en").get_data(as_text=True)
    assert "Consists of" in whole and f'href="/premises/{WEST}"' in whole
    assert "Booked (part of the hall)" in whole
    fi = api.client.get(f"/premises/{EAST}?{week}&lang=fi").get_data(as_text=True)
    assert "Varattu (koko sali)" in fi and "Osa tilasta" in fi
    sv = api.client.get(f"/premises/{EAST}?{week}&lang=sv").get_data(as_text=True)
    assert "Bokad (hela salen)" in sv and "Del av" in sv


def test_a_pop_up_hold_on_a_half_blocks_the_whole(api: Api) -> None:
    gym(api, popup_allowed=True)
    start = (datetime.now(UTC) + timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    body = {
        "premises_id": EAST,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Kirpputori",
        "description": "",
        "expected_attendees": 10,
    }
    assert api.post("/api/v1/popup-requests", body, role="resident").status_code == 201
    refused = api.book(WHOLE, start, start + timedelta(hours=2))
    assert refused.status_code == 409
    assert refused.get_json()["conflicts"][0] | {"start": "", "end": ""} == {
        "start": "",
        "end": "",
        "kind": "hold",
        "via": EAST,
    }
    # …and a pop-up on the whole waits for nothing the other half holds.
    asked = api.post("/api/v1/popup-requests", {**body, "premises_id": WEST}, role="resident")
    assert asked.status_code == 201
    again = api.post("/api/v1/popup-requests", {**body, "premises_id": WHOLE}, role="resident")
    assert again.status_code == 409


def test_the_registry_s_next_free_hour_counts_the_whole_hall(api: Api) -> None:
    gym(api)
    runner.catch_up(api.engine, clock=system_clock)
    answer = api.get("/api/v1/registry/free-premises").get_json()
    first = {e["id"]: e["next_free_hour"] for e in answer["premises"]}[EAST]
    assert first is not None
    start = datetime.fromisoformat(first)
    booked = api.book(WHOLE, start, start + timedelta(hours=2))
    assert booked.status_code == 201, booked.get_json()
    answer = api.get("/api/v1/registry/free-premises").get_json()
    later = {e["id"]: e["next_free_hour"] for e in answer["premises"]}[EAST]
    assert later is not None and datetime.fromisoformat(later) >= start + timedelta(hours=2)


def test_a_weekly_series_on_a_half_skips_the_week_the_whole_is_booked(api: Api) -> None:
    gym(api)
    day = future_weekday(1)
    taken = local(day + timedelta(weeks=1), 18)
    assert api.book(WHOLE, taken, taken + timedelta(hours=2)).status_code == 201
    body = {
        "premises_id": WEST,
        "start": local(day, 18).isoformat(),
        "end": local(day, 19).isoformat(),
        "rrule": "FREQ=WEEKLY;COUNT=3",
        "title": "Sulkapallo",
        "attendees": 8,
        "on_conflict": "skip",
    }
    placed = api.post("/api/v1/booking-series", body, role="booker")
    assert placed.status_code == 201, placed.get_json()
    answer = placed.get_json()
    assert len(answer["bookings"]) == 2
    assert [datetime.fromisoformat(s["start"]) for s in answer["skipped"]] == [taken]
    failing = api.post(
        "/api/v1/booking-series",
        {**body, "premises_id": EAST, "on_conflict": "fail"},
        role="booker",
    )
    assert failing.status_code == 409
    assert failing.get_json()["conflicts"][0]["via"] == WHOLE


def test_usage_statistics_count_blocked_hours_beside_booked_hours(api: Api) -> None:
    gym(api)
    day = future_weekday(1)
    assert api.book(WHOLE, local(day, 10), local(day, 12)).status_code == 201
    assert api.book(EAST, local(day, 14), local(day, 15)).status_code == 201
    assert api.book(WEST, local(day, 14), local(day, 16)).status_code == 201
    runner.catch_up(api.engine, clock=system_clock)
    answer = api.get(
        f"/api/v1/stats/usage?from={day}&to={day}&group_by=premises", role="analyst"
    ).get_json()
    rows = {r["key"]["premises"]: r for r in answer["rows"]}
    assert rows[WHOLE]["booked_hours"] == 2 and rows[WHOLE]["blocked_hours"] == 2
    assert rows[EAST]["booked_hours"] == 1 and rows[EAST]["blocked_hours"] == 2
    assert rows[WEST]["booked_hours"] == 2 and rows[WEST]["blocked_hours"] == 2
    csv = api.get(
        f"/api/v1/stats/usage?from={day}&to={day}&group_by=premises&format=csv", role="analyst"
    ).get_data(as_text=True)
    assert "blocked_hours" in csv.splitlines()[0]


def test_a_pop_up_hold_on_a_half_shows_on_the_whole_and_leaves_when_withdrawn(api: Api) -> None:
    """Pop-up holds through shared spaces: the whole's availability and the search see a
    half's pending request as a hold (via the half, no title), and its withdrawal frees both."""
    gym(api, popup_allowed=True)
    start = (datetime.now(UTC) + timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    body = {
        "premises_id": EAST,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Kirpputori",
        "description": "",
        "expected_attendees": 10,
    }
    asked = api.post("/api/v1/popup-requests", body, role="resident")
    assert asked.status_code == 201 and asked.get_json()["status"] == "pending"
    day = start.astimezone(local(start.date(), 0).tzinfo).date()
    span = f"from={day}&to={day}"
    whole = api.get(f"/api/v1/premises/{WHOLE}/availability?{span}").get_json()
    holds = [b for b in whole["days"][0]["busy"] if b["kind"] == "hold"]
    assert [(b["via"], datetime.fromisoformat(b["start"])) for b in holds] == [(EAST, start)]
    assert "title" not in holds[0]
    window = {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}
    found = api.get("/api/v1/availability", query_string=window).get_json()
    assert {p["id"] for p in found["premises"]} == {WEST}
    withdrawn = api.post(
        f"/api/v1/popup-requests/{asked.get_json()['id']}/withdraw", {}, role="resident"
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    whole = api.get(f"/api/v1/premises/{WHOLE}/availability?{span}").get_json()
    assert [b for b in whole["days"][0]["busy"] if b["kind"] == "hold"] == []
    found = api.get("/api/v1/availability", query_string=window).get_json()
    assert {p["id"] for p in found["premises"]} == {WHOLE, EAST, WEST}
    assert api.book(WHOLE, start, start + timedelta(hours=2)).status_code == 201
