"""Seasonal allocation rounds over HTTP, on both databases: a round from opening to offers
answered, and the refusals API.md and issue 16 list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from booking.clock import system_clock
from booking.scheduler import jobs_for
from events.sql import read_transaction
from projections import rebuilding, runner
from tests.conftest import HELSINKI, TEST_NOW, Api
from tests.integration.test_api_paging import follow

CLOSE = TEST_NOW + timedelta(days=7)
EVENINGS = {d: [["16:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def round_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": {"fi": "Kevätkausi 2027", "en": "Spring season 2027"},
        "season_start": "2027-01-11",
        "season_end": "2027-02-28",
        "applications_open": (TEST_NOW - timedelta(hours=1)).isoformat(),
        "applications_close": CLOSE.isoformat(),
        "premises": ["gym", "hall"],
        "criteria": [{"key": "age_group"}],
        "confirm_days": 7,
    }
    body.update(overrides)
    return body


def application(**overrides: Any) -> dict[str, Any]:
    body = {
        "purpose": "Juniorisalibandy",
        "age_group": "7-14",
        "group_size": 20,
        "terms_accepted": True,
        "sections": [
            {
                "name": "P10",
                "slots_per_week": 1,
                "duration_minutes": 90,
                "premises": ["gym", "hall"],
                "times": [
                    {"weekday": "mon", "from": "17:00", "to": "18:30", "priority": "primary"}
                ],
            }
        ],
    }
    body.update(overrides)
    return body


@pytest.fixture
def rounds(api: Api) -> dict[str, Any]:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", opening_hours=EVENINGS, rules=rules, capacity=60)
    created = api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert created.status_code == 201, created.get_json()
    other = api.user("booker", api.other_organisation_id)
    return {"round": created.get_json(), "other": other}


def other_post(api: Api, token: str, path: str, body: Any = None, **headers: str) -> Any:
    return api.client.post(path, json=body, headers={"Authorization": f"Bearer {token}", **headers})


def test_a_round_from_applications_to_answered_offers(
    api: Api, rounds: dict[str, Any], clock: Any
) -> None:
    round_ = rounds["round"]
    assert round_["status"] == "open" and round_["version"] == 1
    rid = round_["id"]
    assert api.get(f"/api/v1/allocation-rounds/{rid}").get_json()["status"] == "open"

    # Two clubs want the same Monday evening; the adults are the lower tier.
    mine = api.post(f"/api/v1/allocation-rounds/{rid}/applications", application(), role="booker")
    assert mine.status_code == 201, mine.get_json()
    assert mine.get_json()["status"] == "submitted"
    adults = application(age_group="20-64", purpose="Kuntosalibandy")
    theirs = other_post(
        api, rounds["other"], f"/api/v1/allocation-rounds/{rid}/applications", adults
    )
    assert theirs.status_code == 201, theirs.get_json()

    # A booker sees its own; staff see all.
    own = api.get(f"/api/v1/allocation-rounds/{rid}/applications", role="booker").get_json()
    assert [a["id"] for a in own["applications"]] == [mine.get_json()["id"]]
    every = api.get(f"/api/v1/allocation-rounds/{rid}/applications", role="staff").get_json()
    assert len(every["applications"]) == 2

    # PATCH honours If-Match.
    app_id = mine.get_json()["id"]
    stale = api.patch(
        f"/api/v1/applications/{app_id}",
        {"group_size": 22},
        role="booker",
        headers={"If-Match": '"7"'},
    )
    assert stale.status_code == 412
    changed = api.patch(
        f"/api/v1/applications/{app_id}",
        {"group_size": 22},
        role="booker",
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    assert changed.get_json()["group_size"] == 22

    # Applications close; the round allocates.
    clock.move_to(CLOSE + timedelta(minutes=1))
    late = api.post(f"/api/v1/allocation-rounds/{rid}/applications", application(), role="booker")
    assert late.status_code == 422 and "applications_close" in late.get_json()["errors"]
    assert api.get(f"/api/v1/allocation-rounds/{rid}").get_json()["status"] == "allocating"
    assert api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="booker").status_code == 403

    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff")
    assert proposal.status_code == 200, proposal.get_json()
    body = proposal.get_json()
    by_app = {a["application_id"]: a for a in body["allocations"]}
    assert by_app[app_id]["premises_id"] == "gym" and by_app[app_id]["tier"] == 1
    adults_alloc = by_app[theirs.get_json()["id"]]
    assert adults_alloc["premises_id"] == "hall" and adults_alloc["premises_rank"] == 2
    assert body["metrics"]["requested_slots"] == 2 and body["metrics"]["allocated_slots"] == 2
    again = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff").get_json()
    assert [a["id"] for a in again["allocations"]] == [a["id"] for a in body["allocations"]]

    # Adjust: a taken space is 409; outside the wishes needs a reason.
    taken = {
        "application_id": app_id,
        "section": "P10",
        "premises_id": "hall",
        "weekday": "mon",
        "start_time": "17:30",
        "end_time": "19:00",
    }
    assert (
        api.post(f"/api/v1/allocation-rounds/{rid}/allocations", taken, role="staff").status_code
        == 409
    )
    closed = {**taken, "weekday": "sat", "start_time": "10:00", "end_time": "11:30"}
    assert (
        api.post(f"/api/v1/allocation-rounds/{rid}/allocations", closed, role="staff").status_code
        == 409
    )
    extra = {
        **taken,
        "premises_id": "gym",
        "weekday": "wed",
        "start_time": "18:00",
        "end_time": "19:30",
    }
    refused = api.post(f"/api/v1/allocation-rounds/{rid}/allocations", extra, role="staff")
    assert refused.status_code == 422
    assert "override_reason" in refused.get_json()["errors"]
    extra["override_reason"] = "Seura pyysi puhelimessa toisen vuoron."
    added = api.post(f"/api/v1/allocation-rounds/{rid}/allocations", extra, role="staff")
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["priority"] == "outside_wishes"
    removed = api.client.delete(
        f"/api/v1/allocation-rounds/{rid}/allocations/{added.get_json()['id']}",
        headers=api.headers("staff"),
    )
    assert removed.status_code == 200

    # A booking on one Monday of the season shows in the series preview.
    api.book(
        "gym",
        datetime(2027, 1, 18, 17, 0, tzinfo=HELSINKI),
        datetime(2027, 1, 18, 18, 0, tzinfo=HELSINKI),
    )
    preview = api.get(f"/api/v1/allocation-rounds/{rid}/allocations?preview=series", role="staff")
    assert preview.status_code == 200
    plan = {a["id"]: a["series_preview"] for a in preview.get_json()["allocations"]}
    assert [s["start"][:10] for s in plan[by_app[app_id]["id"]]["skipped"]] == ["2027-01-18"]
    assert plan[by_app[app_id]["id"]]["bookings"] == 6  # 7 Mondays, one taken

    # Publish: offers to answer within confirm_days.
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff")
    assert published.status_code == 200, published.get_json()
    assert published.get_json()["status"] == "published"
    assert {o["status"] for o in published.get_json()["offers"]} == {"offered"}
    # API.md: an allocation's instants are in its premises' local offset (Helsinki in winter),
    # the round's in UTC (`Z`); both name the same deadline.
    round_deadline = published.get_json()["confirm_by"]
    assert round_deadline.endswith("Z")
    for offer in published.get_json()["offers"]:
        assert offer["confirm_by"].endswith("+02:00"), offer["confirm_by"]
        assert datetime.fromisoformat(offer["confirm_by"]) == datetime.fromisoformat(round_deadline)

    offer_id = by_app[app_id]["id"]
    assert (
        other_post(api, rounds["other"], f"/api/v1/allocations/{offer_id}/accept").status_code
        == 403
    )
    key = {"Idempotency-Key": "accept-p10"}
    accepted = api.post(f"/api/v1/allocations/{offer_id}/accept", role="booker", headers=key)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["status"] == "accepted" and accepted.get_json()["series_id"]
    assert accepted.get_json()["confirm_by"].endswith("+02:00")
    assert accepted.get_json()["bookings"] == 6
    assert [s["start"][:10] for s in accepted.get_json()["skipped"]] == ["2027-01-18"]
    replay = api.post(f"/api/v1/allocations/{offer_id}/accept", role="booker", headers=key)
    assert replay.status_code == 200 and replay.get_json() == accepted.get_json()
    twice = api.post(f"/api/v1/allocations/{offer_id}/accept", role="booker")
    assert twice.status_code == 409

    series = accepted.get_json()["series_id"]
    bookings = api.get(
        "/api/v1/bookings?from=2027-01-01&to=2027-03-31&premises_id=gym", role="staff"
    )
    ours = [b for b in bookings.get_json()["bookings"] if b.get("series_id") == series]
    assert len(ours) == 6
    assert {b["start"][11:16] for b in ours} == {"17:00"}  # local wall time

    # The adults' offer lapses by itself once confirm_by has passed.
    clock.move_to(CLOSE + timedelta(days=8))
    jobs = jobs_for(api.app)
    assert jobs.lapse_offers(CLOSE + timedelta(days=8)) == 1
    assert jobs.lapse_offers(CLOSE + timedelta(days=8)) == 0
    lapsed = api.get(f"/api/v1/allocations/{adults_alloc['id']}", role="staff").get_json()
    assert lapsed["status"] == "lapsed"

    # The rounds' tables rebuilt from the log equal the live ones.
    (projection,) = runner.by_name(["allocation"])
    with read_transaction(api.engine) as conn:
        live = rebuilding.contents(conn, projection)
    rebuilding.rebuild(api.engine, [projection], clock=system_clock)
    with read_transaction(api.engine) as conn:
        assert rebuilding.contents(conn, projection) == live


def test_bad_applications_are_refused_with_field_errors(api: Api, rounds: dict[str, Any]) -> None:
    rid = rounds["round"]["id"]
    path = f"/api/v1/allocation-rounds/{rid}/applications"

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, body, role="booker")
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
        return dict(response.get_json()["errors"])

    section = application()["sections"][0]
    assert "terms_accepted" in refused(application(terms_accepted=False))
    assert "terms_accepted" in refused(
        {k: v for k, v in application().items() if k != "terms_accepted"}
    )
    outside = {**section, "premises": ["elsewhere"]}
    assert "sections" in refused(application(sections=[outside]))
    night = {**section, "times": [{"weekday": "mon", "from": "22:00", "to": "23:30"}]}
    assert "open" in " ".join(refused(application(sections=[night]))["sections"])
    assert "sections" in refused(application(sections=[{**section, "slots_per_week": 8}]))
    too_long = {
        **section,
        "duration_minutes": 240,
        "times": [{"weekday": "mon", "from": "16:00", "to": "21:00"}],
    }
    assert "sections" in refused(application(sections=[too_long]))
    twins = [section, section]
    assert "sections" in refused(application(sections=twins))
    assert "group_size" in refused(application(group_size=61))
    listed = api.get(f"/api/v1/allocation-rounds/{rid}/applications", role="staff").get_json()
    assert listed["applications"] == []


def test_withdrawn_applications_get_nothing_and_staff_apply_on_behalf(
    api: Api, rounds: dict[str, Any], clock: Any
) -> None:
    rid = rounds["round"]["id"]
    path = f"/api/v1/allocation-rounds/{rid}/applications"
    nameless = api.post(path, application(), role="staff")
    assert nameless.status_code == 422 and "organisation_id" in nameless.get_json()["errors"]
    on_behalf = api.post(path, application(organisation_id=api.other_organisation_id), role="staff")
    assert on_behalf.status_code == 201
    gone = on_behalf.get_json()["id"]
    withdrawn = api.post(f"/api/v1/applications/{gone}/withdraw", role="staff")
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    assert api.post(f"/api/v1/applications/{gone}/withdraw", role="staff").status_code == 409
    clock.move_to(CLOSE + timedelta(hours=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff").get_json()
    assert proposal["allocations"] == [] and proposal["metrics"]["requested_slots"] == 0


def test_round_input_is_checked(api: Api, rounds: dict[str, Any]) -> None:
    bad = round_body(season_end="2027-01-01", premises=["nowhere"])
    response = api.post("/api/v1/allocation-rounds", bad, role="staff")
    assert response.status_code == 422
    assert {"season_end", "premises"} <= set(response.get_json()["errors"])
    naive = round_body(applications_open="2026-11-18T09:00:00")
    assert api.post("/api/v1/allocation-rounds", naive, role="staff").status_code == 422
    assert api.post("/api/v1/allocation-rounds", round_body(), role="booker").status_code == 403
    assert api.client.get("/api/v1/allocation-rounds").status_code == 200
    assert api.client.get("/api/v1/allocation-rounds/nope").status_code == 404


def test_the_proposal_and_staff_adjustments_keep_the_buffers_the_booking_rules_keep(
    api: Api, clock: Any
) -> None:
    # A court keeps 15 minutes free after each booking; its half "court-a" none. Two hours
    # and a quarter on Mondays: the juniors' hour on the court and the adults' on the half
    # fit only the court's buffer apart.
    monday = {"mon": [["17:00", "19:15"]]}
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises(
        "court",
        spaces=["court-a", "court-b"],
        opening_hours=monday,
        rules={**rules, "buffer_minutes": 15},
        capacity=60,
    )
    api.premises("court-a", spaces=["court-a"], opening_hours=monday, rules=rules, capacity=60)
    created = api.post(
        "/api/v1/allocation-rounds", round_body(premises=["court", "court-a"]), role="staff"
    )
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]

    def wants(premises_id: str, to: str, **overrides: Any) -> dict[str, Any]:
        times = [{"weekday": "mon", "from": "17:00", "to": to, "priority": "primary"}]
        section = {
            "name": "Vuoro",
            "slots_per_week": 1,
            "duration_minutes": 60,
            "premises": [premises_id],
            "times": times,
        }
        return application(sections=[section], **overrides)

    path = f"/api/v1/allocation-rounds/{rid}/applications"
    juniors = api.post(path, wants("court", "18:00"), role="booker")
    assert juniors.status_code == 201, juniors.get_json()
    other = api.user("booker", api.other_organisation_id)
    adults = other_post(api, other, path, wants("court-a", "19:15", age_group="20-64"))
    assert adults.status_code == 201, adults.get_json()

    clock.move_to(CLOSE + timedelta(minutes=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff")
    assert proposal.status_code == 200, proposal.get_json()
    by_app = {a["application_id"]: a for a in proposal.get_json()["allocations"]}
    first, second = by_app[juniors.get_json()["id"]], by_app[adults.get_json()["id"]]
    assert (first["premises_id"], first["start_time"], first["end_time"]) == (
        "court",
        "17:00",
        "18:00",
    )
    assert second["premises_id"] == "court-a" and second["start_time"] == "18:15"

    # Staff move the adults: into the court's buffer is a hard conflict, as an overlap is,
    # and changes nothing; a quarter later is fine.
    allocations = f"/api/v1/allocation-rounds/{rid}/allocations"
    gone = api.client.delete(f"{allocations}/{second['id']}", headers=api.headers("staff"))
    assert gone.status_code == 200
    before = api.get(allocations, role="staff").get_json()
    moved = {
        "application_id": adults.get_json()["id"],
        "section": "Vuoro",
        "premises_id": "court-a",
        "weekday": "mon",
    }
    for start, end in (("18:00", "19:00"), ("18:10", "19:10"), ("17:30", "18:30")):
        refused = api.post(
            allocations, {**moved, "start_time": start, "end_time": end}, role="staff"
        )
        assert refused.status_code == 409, (start, refused.get_json())
        assert refused.mimetype == "application/problem+json"
        detail = refused.get_json()["detail"]
        assert first["id"] in detail
        assert ("taken by" if start == "17:30" else "court keeps 15 minutes free") in detail
    assert api.get(allocations, role="staff").get_json() == before
    added = api.post(
        allocations, {**moved, "start_time": "18:15", "end_time": "19:15"}, role="staff"
    )
    assert added.status_code == 201, added.get_json()

    # Published and accepted, both series get every Monday: nothing collides with the
    # other's hold or series, as it would have back to back.
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff")
    assert published.status_code == 200, published.get_json()
    offers = published.get_json()["offers"]
    assert [(o["held"], o["skipped"]) for o in offers] == [(7, []), (7, [])]
    mine = api.post(f"/api/v1/allocations/{first['id']}/accept", role="booker")
    assert mine.status_code == 200, mine.get_json()
    theirs = other_post(api, other, f"/api/v1/allocations/{added.get_json()['id']}/accept")
    assert theirs.status_code == 200, theirs.get_json()
    for accepted in (mine, theirs):
        assert (accepted.get_json()["bookings"], accepted.get_json()["skipped"]) == (7, [])


def test_rounds_and_applications_come_in_pages(api: Api, rounds: dict[str, Any]) -> None:
    """API.md: a list that can grow without bound is paged (`limit`, `after`, `next`, `Link`)
    and never cut silently: the rounds (newest season first) and a round's applications."""
    for start in ("2027-08-09", "2028-01-10"):
        made = api.post(
            "/api/v1/allocation-rounds",
            round_body(season_start=start, season_end=start[:5] + "12-31"),
            role="staff",
        )
        assert made.status_code == 201, made.get_json()
    pages = follow(api, "/api/v1/allocation-rounds?limit=2", "allocation_rounds", "staff")
    assert [len(p) for p in pages] == [2, 1]
    whole = api.get("/api/v1/allocation-rounds").get_json()
    assert whole["next"] is None
    assert [i for page in pages for i in page] == [r["id"] for r in whole["allocation_rounds"]]
    starts = [r["season_start"] for r in whole["allocation_rounds"]]
    assert starts == ["2028-01-10", "2027-08-09", "2027-01-11"]

    rid = rounds["round"]["id"]
    path = f"/api/v1/allocation-rounds/{rid}/applications"
    ids: list[str] = []
    for name in ("P10", "P12", "P14"):
        body = application()
        body["sections"][0]["name"] = name
        made = api.post(path, body, role="booker")
        assert made.status_code == 201, made.get_json()
        ids.append(made.get_json()["id"])
    pages = follow(api, f"{path}?limit=2", "applications", "staff")
    assert [i for page in pages for i in page] == ids and [len(p) for p in pages] == [2, 1]
    assert follow(api, f"{path}?limit=1", "applications", "booker") == [[i] for i in ids]
    bad = api.get(f"{path}?after=nonsense", role="staff")
    assert bad.status_code == 422 and "after" in bad.get_json()["errors"]
