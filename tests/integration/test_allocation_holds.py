"""A published allocation offer holds its weekly time (API.md, "Seasonal allocation rounds"):
against bookings and pop-up requests of every premises sharing a space with it, over the
season in local wall time across DST, shown as busy; freed at decline and lapse; taken over
by the series at acceptance. Publication skips dates taken since the proposal. On both
databases; the race with many bookers is on PostgreSQL, where the exclusion constraint is
the second line of defence."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from booking.clock import system_clock
from booking.scheduler import jobs_for
from events.sql import read_transaction
from projections import rebuilding, runner
from projections.availability import busy_table
from tests.conftest import HELSINKI, TEST_NOW, Api
from tests.integration.test_concurrency import in_threads, post_booking

WHOLE, EAST, WEST = "koulu-sali", "koulu-sali-ita", "koulu-sali-lansi"
CLOSE = TEST_NOW + timedelta(days=7)  # Wednesday 2026-11-25
EVENINGS = {d: [["16:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
# Mondays from 2026-11-30 to 2027-04-26: 22 of them, across the spring change (2027-03-28).
SEASON = ("2026-11-30", "2027-04-30")
MONDAYS = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(22)]


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=HELSINKI)


def gym(api: Api) -> None:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180, "popup_allowed": True}
    common = {"opening_hours": EVENINGS, "rules": rules}
    api.premises(WHOLE, spaces=["koulu-ita", "koulu-lansi"], capacity=60, **common)
    api.premises(EAST, spaces=["koulu-ita"], capacity=30, **common)
    api.premises(WEST, spaces=["koulu-lansi"], capacity=30, **common)


def application(purpose: str, age_group: str, premises: str, weekday: str) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "age_group": age_group,
        "group_size": 20,
        "terms_accepted": True,
        "sections": [
            {
                "name": "Harjoitus",
                "slots_per_week": 1,
                "duration_minutes": 90,
                "premises": [premises],
                "times": [
                    {"weekday": weekday, "from": "17:00", "to": "18:30", "priority": "primary"}
                ],
            }
        ],
    }


def proposed_round(api: Api, clock: Any, *applications: dict[str, Any]) -> tuple[str, list[Any]]:
    """A round over the gym with these applications (the booker's organisation's), closed
    and proposed: (round id, allocations)."""
    body = {
        "name": {"fi": "Talvikausi", "en": "Winter season"},
        "season_start": SEASON[0],
        "season_end": SEASON[1],
        "applications_open": (TEST_NOW - timedelta(hours=1)).isoformat(),
        "applications_close": CLOSE.isoformat(),
        "premises": [WHOLE, EAST, WEST],
        "criteria": [{"key": "age_group"}],
        "confirm_days": 7,
    }
    created = api.post("/api/v1/allocation-rounds", body, role="staff")
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    for one in applications:
        sent = api.post(f"/api/v1/allocation-rounds/{rid}/applications", one, role="booker")
        assert sent.status_code == 201, sent.get_json()
    clock.move_to(CLOSE + timedelta(minutes=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff")
    assert proposal.status_code == 200, proposal.get_json()
    allocations = proposal.get_json()["allocations"]
    assert len(allocations) == len(applications)
    return rid, allocations


def busy_on(api: Api, premises_id: str, day: date) -> list[dict[str, Any]]:
    found = api.get(f"/api/v1/premises/{premises_id}/availability?from={day}&to={day}")
    assert found.status_code == 200
    return list(found.get_json()["days"][0]["busy"])


def busy_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with read_transaction(engine) as conn:
        return sorted(tuple(r) for r in conn.execute(select(busy_table)))


def assert_availability_equals_rebuild(engine: Engine) -> None:
    live = busy_rows(engine)
    rebuilding.rebuild(engine, runner.by_name(["availability"]), clock=system_clock)
    assert busy_rows(engine) == live


def test_an_offer_holds_its_weekly_time_until_the_series_takes_it_over(
    api: Api, clock: Any
) -> None:
    gym(api)
    rid, (offer,) = proposed_round(api, clock, application("Salibandy", "7-14", WHOLE, "mon"))
    assert (offer["premises_id"], offer["weekday"], offer["start_time"]) == (WHOLE, "mon", "17:00")

    # Taken since the proposal: one Monday on a half. Publication skips it, refuses nothing.
    taken = MONDAYS[2]
    assert api.book(WEST, at(taken, 17), at(taken, 18)).status_code == 201
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff")
    assert published.status_code == 200, published.get_json()
    (held,) = published.get_json()["offers"]
    assert held["status"] == "offered" and held["held"] == len(MONDAYS) - 1
    assert [s["start"] for s in held["skipped"]] == [at(taken, 17).isoformat()]

    # The held time is busy on the whole and, via it, on both halves; the skipped one isn't
    # held (the half's own booking is there instead).
    first = MONDAYS[0]
    assert busy_on(api, WHOLE, first) == [
        {"start": at(first, 17).isoformat(), "end": at(first, 18, 30).isoformat(), "kind": "hold"}
    ]
    for half in (EAST, WEST):
        (shown,) = busy_on(api, half, first)
        assert (shown["kind"], shown["via"]) == ("hold", WHOLE)
    assert [b["kind"] for b in busy_on(api, WEST, taken)] == ["booking"]
    # Local wall time on both sides of the spring change.
    for monday in (date(2027, 3, 22), date(2027, 3, 29)):
        (shown,) = busy_on(api, WHOLE, monday)
        assert shown["start"] == at(monday, 17).isoformat()

    # Nobody books or asks for it: the premises itself, a half, a pop-up, a weekly series.
    day = MONDAYS[1]
    mine = api.book(WHOLE, at(day, 18), at(day, 19))
    assert mine.status_code == 409
    assert [(c["kind"], c.get("via")) for c in mine.get_json()["conflicts"]] == [("hold", None)]
    half = api.book(EAST, at(day, 16), at(day, 17, 30))
    assert half.status_code == 409
    assert [(c["kind"], c["via"]) for c in half.get_json()["conflicts"]] == [("hold", WHOLE)]
    popup = {
        "premises_id": EAST,
        "start": at(day, 18).isoformat(),
        "end": at(day, 19).isoformat(),
        "title": "Kirpputori",
        "description": "",
        "expected_attendees": 10,
    }
    assert api.post("/api/v1/popup-requests", popup, role="resident").status_code == 409
    series = {
        "premises_id": EAST,
        "start": at(MONDAYS[0], 18).isoformat(),
        "end": at(MONDAYS[0], 19).isoformat(),
        "rrule": "FREQ=WEEKLY;COUNT=4",
        "title": "Sulkapallo",
        "attendees": 8,
        "on_conflict": "skip",
    }
    placed = api.post("/api/v1/booking-series", series, role="booker")
    assert placed.status_code == 201, placed.get_json()
    # Only the week the offer could not hold is booked; the held ones are skipped.
    assert [b["start"] for b in placed.get_json()["bookings"]] == [at(taken, 18).isoformat()]
    assert len(placed.get_json()["skipped"]) == 3
    # Around it is free: the halves after 18:30.
    assert api.book(EAST, at(day, 18, 30), at(day, 20)).status_code == 201
    # Staff may still close the hall on an offered date; the series skips it.
    closed_day = MONDAYS[5]
    closure = {
        "start": at(closed_day, 16).isoformat(),
        "end": at(closed_day, 22).isoformat(),
        "reason": "Koulun juhla",
    }
    assert api.post(f"/api/v1/premises/{WHOLE}/closures", closure, role="staff").status_code == 201
    assert_availability_equals_rebuild(api.engine)

    # Accepted: the series holds exactly what the offer held, less the closed date.
    accepted = api.post(f"/api/v1/allocations/{offer['id']}/accept", role="booker")
    assert accepted.status_code == 200, accepted.get_json()
    answer = accepted.get_json()
    assert answer["bookings"] == len(MONDAYS) - 2
    assert sorted(s["start"][:10] for s in answer["skipped"]) == [
        str(taken),
        str(closed_day),
    ]
    with read_transaction(api.engine) as conn:
        mine = select(busy_table).where(busy_table.c.premises_id == WHOLE)
        kinds = Counter(r.kind for r in conn.execute(mine))
    assert kinds["offer"] == 0 and kinds["booking"] == 2 * (len(MONDAYS) - 2)
    assert [b["kind"] for b in busy_on(api, WHOLE, MONDAYS[0])] == ["booking"]
    assert api.book(EAST, at(day, 17), at(day, 18)).status_code == 409
    assert_availability_equals_rebuild(api.engine)


def test_declined_and_lapsed_time_is_free_again_for_anyone(api: Api, clock: Any) -> None:
    gym(api)
    rid, allocations = proposed_round(
        api,
        clock,
        application("Lentopallo", "15-19", EAST, "tue"),
        application("Koripallo", "20-64", WEST, "wed"),
    )
    by_premises = {a["premises_id"]: a for a in allocations}
    assert api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff").status_code == 200
    tuesday, wednesday = MONDAYS[1] + timedelta(days=1), MONDAYS[1] + timedelta(days=2)
    assert api.book(WHOLE, at(tuesday, 17), at(tuesday, 18)).status_code == 409
    assert api.book(WHOLE, at(wednesday, 17), at(wednesday, 18)).status_code == 409

    east = by_premises[EAST]["id"]
    declined = api.post(f"/api/v1/allocations/{east}/decline", {"reason": "Ei"}, role="booker")
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    assert busy_on(api, EAST, tuesday) == []
    assert api.book(WHOLE, at(tuesday, 17), at(tuesday, 18)).status_code == 201
    # The other offer still holds until it lapses, then anyone may book its time.
    assert api.book(WHOLE, at(wednesday, 17), at(wednesday, 18)).status_code == 409
    later = CLOSE + timedelta(days=8)
    clock.move_to(later)
    assert jobs_for(api.app).lapse_offers(later) == 1
    assert busy_on(api, WEST, wednesday + timedelta(weeks=1)) == []
    assert api.book(WEST, at(wednesday, 17), at(wednesday, 18, 30)).status_code == 201
    assert_availability_equals_rebuild(api.engine)


# --- races: bookers against publication and answers ------------------------------------------


def overlaps_per_space(engine: Engine) -> list[tuple[Any, ...]]:
    """Pairs of rows on one space whose times overlap (closures aside): must be none."""
    with read_transaction(engine) as conn:
        found = conn.execute(
            select(busy_table)
            .where(busy_table.c.kind != "closure")
            .order_by(busy_table.c.space_id, busy_table.c.start)
        ).all()
    clashes = []
    for a, b in itertools.pairwise(found):
        if a.space_id == b.space_id and b.start < a.end:
            clashes.append((a.space_id, a.ref_id, b.ref_id))
    return clashes


def racers(api: Api, days: list[date]) -> list[tuple[str, dict[str, Any]]]:
    """Bookers of three organisations' tokens, each trying the offered hour on one of the
    days, on the whole hall or a half."""
    tokens = [api.token("booker"), api.user("booker", api.other_organisation_id)]
    found = []
    for n in range(24):
        day, premises = days[n % len(days)], (WHOLE, EAST, WEST)[n % 3]
        body = {
            "premises_id": premises,
            "start": at(day, 17, 30).isoformat(),
            "end": at(day, 18, 15).isoformat(),
            "title": "Vapaa vuoro",
            "attendees": 10,
        }
        found.append((tokens[n % 2], body))
    return found


def test_bookers_racing_a_publication_never_share_a_date_with_the_offer(
    api: Api, clock: Any
) -> None:
    gym(api)
    rid, _ = proposed_round(api, clock, application("Salibandy", "7-14", WHOLE, "mon"))
    staff = api.token("staff")
    contenders = racers(api, MONDAYS[1:5])

    def work(i: int) -> Any:
        if i == 0:
            published = api.app.test_client().post(
                f"/api/v1/allocation-rounds/{rid}/publish",
                headers={"Authorization": f"Bearer {staff}"},
            )
            return published.status_code, published.get_json()
        return post_booking(api.app, *contenders[i - 1])[0]

    results = in_threads(len(contenders) + 1, work)
    status, published = results[0]
    assert status == 200, published
    (held,) = published["offers"]
    skipped = {s["start"][:10] for s in held["skipped"]}
    booked = Counter(status for status in results[1:])
    assert set(booked) <= {201, 409}, results
    # Every date is either the offer's or a booker's (at most one per half, or the whole).
    won = {
        contenders[i - 1][1]["start"][:10]
        for i, status in enumerate(results)
        if i > 0 and status == 201
    }
    assert won == skipped
    assert held["held"] == len(MONDAYS) - len(skipped)
    assert overlaps_per_space(api.engine) == []
    assert_availability_equals_rebuild(api.engine)


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_bookers_racing_an_answer_never_overlap_the_offer_or_its_series(
    api: Api, clock: Any, answer: str
) -> None:
    gym(api)
    rid, (offer,) = proposed_round(api, clock, application("Salibandy", "7-14", WHOLE, "mon"))
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff")
    assert published.get_json()["offers"][0]["held"] == len(MONDAYS)
    contenders = racers(api, MONDAYS[1:5])
    owner = api.token("booker")

    def work(i: int) -> Any:
        if i == 0:
            body = {"reason": "Ei tarvita"} if answer == "decline" else None
            done = api.app.test_client().post(
                f"/api/v1/allocations/{offer['id']}/{answer}",
                json=body,
                headers={"Authorization": f"Bearer {owner}"},
            )
            return done.status_code, done.get_json()
        return post_booking(api.app, *contenders[i - 1])[0]

    results = in_threads(len(contenders) + 1, work)
    status, answered = results[0]
    assert status == 200, answered
    statuses = Counter(results[1:])
    assert set(statuses) <= {201, 409}, results
    if answer == "accept":
        # Held, then the series': nobody ever got a moment of it.
        assert statuses == {409: len(contenders)}
        assert answered["bookings"] == len(MONDAYS) and answered["skipped"] == []
    else:
        # Free again once declined: some bookers may win, never two on one floor.
        assert statuses[201] <= 2 * 4  # at most both halves (or the whole) on 4 Mondays
    assert overlaps_per_space(api.engine) == []
    assert_availability_equals_rebuild(api.engine)


def test_the_database_refuses_a_row_over_an_offer(postgres_url: str) -> None:
    """The second line of defence: on PostgreSQL an offer's rows are under the exclusion
    constraint per space, as bookings and holds are."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from events.sql import make_engine, write_transaction

    engine = make_engine(postgres_url)
    try:
        start = at(MONDAYS[0], 17)
        row = {
            "premises_id": WHOLE,
            "space_id": "koulu-ita",
            "space_key": 9001,  # one key per space id: the constraint compares keys
            "kind": "offer",
            "start": start,
            "end": start + timedelta(minutes=90),
            "blocked_until": start + timedelta(minutes=90),
            "title": None,
            "public": False,
        }
        with write_transaction(engine) as conn:
            conn.execute(insert(busy_table).values(ref_id="offer#0", **row))
        overlapping = {**row, "premises_id": EAST, "kind": "booking"}
        overlapping["start"] = start + timedelta(minutes=60)
        with pytest.raises(IntegrityError), write_transaction(engine) as conn:
            conn.execute(insert(busy_table).values(ref_id="booking", **overlapping))
    finally:
        engine.dispose()
