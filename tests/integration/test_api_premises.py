"""The premises catalogue over HTTP, on SQLite and PostgreSQL: register, list and filter,
read, change with If-Match, close for a period and retire (API.md, "Premises")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from booking import accounts
from booking.outbox import outbox
from events.sql import read_transaction, write_transaction
from tests.conftest import Api, future_weekday, local, premises_body
from tests.integration.test_api_log import event_count, warm_tokens

PROBLEM = "application/problem+json"


def errors_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == response.status_code
    return dict(body.get("errors") or {})


# --- POST /api/v1/premises ------------------------------------------------------------------


def test_register_returns_the_premises_with_defaults(api: Api) -> None:
    response = api.post("/api/v1/premises", premises_body("library-room-2"), role="staff")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith("/api/v1/premises/library-room-2")
    assert body["id"] == "library-room-2"
    assert body["version"] == 1
    assert body["name"] == {"fi": "Kokoushuone 2", "en": "Meeting room 2"}
    assert body["timezone"] == "Europe/Helsinki"
    assert body["capacity"] == 12
    assert body["retired"] is False
    assert body["opening_hours"]["mon"] == [["08:00", "22:00"]]
    # Rules not given take the documented defaults; given ones are kept.
    assert body["rules"]["min_notice_minutes"] == 0
    assert body["rules"]["max_duration_minutes"] == 240
    assert body["rules"]["cancellation_deadline_minutes"] == 1440
    assert body["rules"]["quota_hours_per_week"] is None
    expected_keys = {
        "id", "name", "description", "address", "district", "capacity", "free_of_charge",
        "hourly_price_cents", "free_use_conditions", "accessibility", "equipment", "timezone",
        "opening_hours", "rules", "version",
    }  # fmt: skip
    assert expected_keys <= set(body)


def test_id_is_a_slug_of_the_name_when_omitted(api: Api) -> None:
    body = premises_body(name={"fi": "Päiväkoti Ääkkönen / Sali", "en": "Day care hall"})
    del body["id"]
    first = api.post("/api/v1/premises", body, role="staff")
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["id"] == "paivakoti-aakkonen-sali"
    again = api.post("/api/v1/premises", body, role="staff")
    assert again.status_code == 201
    assert again.get_json()["id"] == "paivakoti-aakkonen-sali-2"
    assert api.get("/api/v1/premises/paivakoti-aakkonen-sali-2").status_code == 200


def test_taken_id_is_409_and_changes_nothing(api: Api) -> None:
    api.premises("room")
    warm_tokens(api)
    before = event_count(api)
    response = api.post("/api/v1/premises", premises_body("room", capacity=99), role="staff")
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    assert event_count(api) == before
    assert api.get("/api/v1/premises/room").get_json()["capacity"] == 12


BAD_PREMISES: list[tuple[dict[str, Any], str]] = [
    ({"capacity": "twelve"}, "capacity"),
    ({"capacity": 0}, "capacity"),
    ({"timezone": "Europe/Mikkeli"}, "timezone"),
    ({"opening_hours": {"mon": [["25:00", "26:00"]]}}, "opening_hours"),
    ({"opening_hours": {"mon": [["08:00"]]}}, "opening_hours"),
    ({"opening_hours": {"monday": [["08:00", "20:00"]]}}, "opening_hours"),
    ({"opening_hours": {"mon": [["08:00", "08:00"]]}}, "opening_hours"),
    ({"opening_hours": "always"}, "opening_hours"),
    ({"id": "Not A Slug!"}, "id"),
    ({"name": {"fi": ""}}, "name"),
    ({"name": {"de": "Raum"}}, "name"),
    ({"rules": {"bookable_by": "everybody"}}, "rules"),
    ({"rules": {"min_duration_minutes": 300, "max_duration_minutes": 60}}, "rules"),
    ({"rules": {"buffer_minutes": "15"}}, "rules"),
    ({"accessibility": "ramp"}, "accessibility"),
    ({"colour": "blue"}, "colour"),
]


def test_bad_premises_is_422_naming_the_field(api: Api) -> None:
    warm_tokens(api, "staff")
    before = event_count(api)
    for overrides, field in BAD_PREMISES:
        body = premises_body("room")
        body.update(overrides)
        response = api.post("/api/v1/premises", body, role="staff")
        assert response.status_code == 422, (overrides, response.get_json())
        assert field in errors_of(response), (overrides, response.get_json())
    assert event_count(api) == before
    assert api.get("/api/v1/premises/room").status_code == 404


def test_missing_required_fields_are_named(api: Api) -> None:
    response = api.post("/api/v1/premises", {"id": "room"}, role="staff")
    assert response.status_code == 422
    assert {"name", "address", "district", "capacity", "opening_hours"} <= set(errors_of(response))


def test_register_needs_a_token(api: Api) -> None:
    response = api.post("/api/v1/premises", premises_body("room"))
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_register_is_for_staff(api: Api) -> None:
    # Every write endpoint's roles are checked in test_api_auth.py; this is the catalogue's.
    for role in ("booker", "resident", "analyst"):
        response = api.post("/api/v1/premises", premises_body("room"), role=role)
        assert response.status_code == 403, role
        assert response.mimetype == PROBLEM
    assert api.get("/api/v1/premises/room").status_code == 404


def test_admin_may_register(api: Api) -> None:
    response = api.post("/api/v1/premises", premises_body("room"), role="admin")
    assert response.status_code == 201


# --- GET /api/v1/premises -------------------------------------------------------------------


@pytest.fixture
def catalogue(api: Api) -> Api:
    api.premises(
        "library-room",
        name={"fi": "Kirjaston kokoushuone", "en": "Library meeting room"},
        district="keskusta",
        capacity=12,
        free_of_charge=True,
        accessibility=["step_free_access", "induction_loop"],
        equipment=["projector"],
    )
    api.premises(
        "school-gym",
        name={"fi": "Koulun liikuntasali", "en": "School gym"},
        description={"fi": "Iso sali, pukuhuoneet"},
        address="Urheilukatu 1, 50100 Mikkeli",
        district="kalevankangas",
        capacity=80,
        free_of_charge=False,
        hourly_price_cents=2500,
        accessibility=["step_free_access"],
        equipment=["projector", "sound_system"],
    )
    api.premises(
        "village-hall",
        name={"fi": "Kylätalo", "en": "Village hall"},
        description={"fi": "Seurojen talo"},
        address="Kylätie 5, 50600 Mikkeli",
        district="kalevankangas",
        capacity=40,
        free_of_charge=True,
        accessibility=[],
        equipment=["kitchen"],
    )
    return api


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [p["id"] for p in response.get_json()["premises"]]


def test_list_without_filters_is_public_and_complete(catalogue: Api) -> None:
    assert ids(catalogue.get("/api/v1/premises")) == ["library-room", "school-gym", "village-hall"]


FILTERS: list[tuple[str, list[str]]] = [
    ("district=kalevankangas", ["school-gym", "village-hall"]),
    ("district=nowhere", []),
    ("min_capacity=40", ["school-gym", "village-hall"]),
    ("min_capacity=41", ["school-gym"]),
    ("feature=projector", ["library-room", "school-gym"]),
    ("feature=projector&feature=step_free_access", ["library-room", "school-gym"]),
    ("feature=projector&feature=induction_loop", ["library-room"]),
    ("feature=projector&feature=kitchen", []),
    ("free_of_charge=true", ["library-room", "village-hall"]),
    ("free_of_charge=false", ["school-gym"]),
    ("q=kylätalo", ["village-hall"]),
    ("q=LIBRARY", ["library-room"]),
    ("q=pukuhuoneet", ["school-gym"]),
    ("q=urheilukatu", ["school-gym"]),
    ("q=100%25", []),
    ("q=sali koulun", ["school-gym"]),
    ("district=kalevankangas&free_of_charge=true&min_capacity=10", ["village-hall"]),
]


def test_list_filters(catalogue: Api) -> None:
    for query, expected in FILTERS:
        assert ids(catalogue.get(f"/api/v1/premises?{query}")) == expected, query


def test_bad_list_filter_is_422(catalogue: Api) -> None:
    for query in ("min_capacity=many", "free_of_charge=perhaps", "min_capacity=-1"):
        response = catalogue.get(f"/api/v1/premises?{query}")
        assert response.status_code == 422, query
        assert query.split("=")[0] in errors_of(response), query


# --- GET /api/v1/premises/{id} --------------------------------------------------------------


def test_get_one_and_unknown(api: Api) -> None:
    created = api.premises("room")
    found = api.get("/api/v1/premises/room")
    assert found.status_code == 200
    assert found.get_json() == created
    assert found.headers["ETag"] == '"1"'
    missing = api.get("/api/v1/premises/no-such-room")
    assert missing.status_code == 404
    assert missing.mimetype == PROBLEM
    assert set(missing.get_json()) >= {"type", "title", "status", "detail"}


# --- PATCH /api/v1/premises/{id} ------------------------------------------------------------


def test_patch_with_current_version(api: Api) -> None:
    api.premises("room")
    response = api.patch(
        "/api/v1/premises/room",
        {"capacity": 20, "rules": {"buffer_minutes": 15}},
        role="staff",
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["version"] == 2
    assert body["capacity"] == 20
    assert body["rules"]["buffer_minutes"] == 15
    assert body["rules"]["min_notice_minutes"] == 0  # other rules kept
    assert response.headers["ETag"] == '"2"'
    assert api.get("/api/v1/premises/room").get_json() == body


def test_patch_with_stale_version_is_412_and_changes_nothing(api: Api) -> None:
    api.premises("room")
    assert api.patch("/api/v1/premises/room", {"capacity": 20}, role="staff").status_code == 200
    warm_tokens(api)
    before = event_count(api)
    stale = api.patch(
        "/api/v1/premises/room", {"capacity": 30}, role="staff", headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.mimetype == PROBLEM
    assert event_count(api) == before
    current = api.get("/api/v1/premises/room").get_json()
    assert (current["capacity"], current["version"]) == (20, 2)


def test_bad_patch_is_422(api: Api) -> None:
    api.premises("room")
    for changes, field in [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"opening_hours": {"mon": [["8", "20"]]}}, "opening_hours"),
        ({"capacity": -1}, "capacity"),
        ({"id": "renamed"}, "id"),
        ({"rules": {"min_duration_minutes": 500}}, "rules"),
        ({}, "_schema"),
    ]:
        response = api.patch("/api/v1/premises/room", changes, role="staff")
        assert response.status_code == 422, (changes, response.get_json())
        assert field in errors_of(response), (changes, response.get_json())
    assert api.get("/api/v1/premises/room").get_json()["version"] == 1


def test_patch_of_unknown_premises_is_404(api: Api) -> None:
    assert api.patch("/api/v1/premises/nope", {"capacity": 3}, role="staff").status_code == 404


# --- closures -------------------------------------------------------------------------------


def test_closure_on_a_free_period(api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    response = api.post(
        "/api/v1/premises/room/closures",
        {
            "start": local(day, 0).isoformat(),
            "end": local(day, 23, 59).isoformat(),
            "reason": "Remontti",
        },
        role="staff",
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["reason"] == "Remontti"
    assert body["cancelled_bookings"] == []
    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    assert [b["kind"] for b in seen["days"][0]["busy"]] == ["closure"]
    # A booking inside the closure breaks a rule.
    refused = api.book("room", local(day, 10), local(day, 11))
    assert refused.status_code == 422
    assert "start" in errors_of(refused)


def test_a_closure_with_a_stale_if_match_is_412_and_closes_nothing(api: Api) -> None:
    """API.md: a write may send `If-Match: "<version>"` and gets 412 if it is stale; a
    closure names the premises' version (it does not change it)."""
    api.premises("room")
    day = future_weekday(3)
    closure = {"start": local(day, 8).isoformat(), "end": local(day, 9).isoformat(), "reason": "x"}
    path = "/api/v1/premises/room/closures"
    stale = api.post(path, closure, role="staff", headers={"If-Match": '"2"'})
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    assert stale.headers["ETag"] == '"1"'
    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    assert seen["days"][0]["busy"] == []
    current = api.post(path, closure, role="staff", headers={"If-Match": '"1"'})
    assert current.status_code == 201, current.get_json()
    assert api.get("/api/v1/premises/room").get_json()["version"] == 1


def test_a_closure_that_began_long_before_still_shows_and_blocks_the_search(api: Api) -> None:
    """Busy rows are found by start within the longest booking's reach; a closure may be
    far longer, and must still be found weeks after it began."""
    api.premises("room")
    api.premises("other")
    first = future_weekday(0)
    closure = {
        "start": local(first, 0).isoformat(),
        "end": local(first + timedelta(days=60), 0).isoformat(),
        "reason": "Peruskorjaus",
    }
    assert api.post("/api/v1/premises/room/closures", closure, role="staff").status_code == 201
    day = first + timedelta(days=40)
    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    assert [b["kind"] for b in seen["days"][0]["busy"]] == ["closure"]
    assert seen["days"][0]["free"] == []
    window = {"start": local(day, 12).isoformat(), "end": local(day, 13).isoformat()}
    search = api.get("/api/v1/availability", query_string=window)
    assert [p["id"] for p in search.get_json()["premises"]] == ["other"]


def test_closure_over_bookings_is_409_with_conflicts(api: Api) -> None:
    api.premises("room")
    day = future_weekday(3)
    booking = api.book("room", local(day, 10), local(day, 12)).get_json()
    warm_tokens(api)
    before = event_count(api)
    closure = {
        "start": local(day, 9).isoformat(),
        "end": local(day, 18).isoformat(),
        "reason": "Vesivahinko",
    }
    response = api.post("/api/v1/premises/room/closures", closure, role="staff")
    assert response.status_code == 409
    conflicts = response.get_json()["conflicts"]
    assert len(conflicts) == 1
    assert conflicts[0]["kind"] == "booking"
    assert datetime.fromisoformat(conflicts[0]["start"]) == local(day, 10)
    assert datetime.fromisoformat(conflicts[0]["end"]) == local(day, 12)
    assert event_count(api) == before
    assert api.get(f"/api/v1/bookings/{booking['id']}", role="staff").get_json()["status"] == (
        "confirmed"
    )

    forced = api.post(
        "/api/v1/premises/room/closures", {**closure, "cancel_conflicting": True}, role="staff"
    )
    assert forced.status_code == 201
    assert forced.get_json()["cancelled_bookings"] == [booking["id"]]
    seen = api.get(f"/api/v1/bookings/{booking['id']}", role="booker").get_json()
    assert seen["status"] == "cancelled"
    assert "Vesivahinko" in seen["reason"]


def test_bad_closure_is_422(api: Api) -> None:
    api.premises("room")
    for body, field in [
        ({"start": "2027-01-05T10:00:00", "end": "2027-01-05T12:00:00+02:00"}, "start"),
        ({"start": "2027-01-05T12:00:00+02:00", "end": "2027-01-05T10:00:00+02:00"}, "end"),
        ({"start": "2027-01-05T10:00:00+02:00"}, "end"),
        ({"start": "tomorrow", "end": "2027-01-05T10:00:00+02:00"}, "start"),
    ]:
        response = api.post("/api/v1/premises/room/closures", {**body, "reason": "x"}, role="staff")
        assert response.status_code == 422, body
        assert field in errors_of(response), body
    missing_reason = {"start": "2027-01-05T10:00:00+02:00", "end": "2027-01-05T12:00:00+02:00"}
    response = api.post("/api/v1/premises/room/closures", missing_reason, role="staff")
    assert "reason" in errors_of(response)


def test_closure_of_unknown_premises_is_404(api: Api) -> None:
    day = future_weekday(3)
    body = {"start": local(day, 9).isoformat(), "end": local(day, 10).isoformat(), "reason": "x"}
    assert api.post("/api/v1/premises/nope/closures", body, role="staff").status_code == 404


# --- retire ---------------------------------------------------------------------------------


def test_retire_takes_premises_out_of_use(api: Api) -> None:
    api.premises("room", name={"fi": "Vanha sali", "en": "Old hall"})
    api.premises("other")
    day = future_weekday(2)
    kept = api.book("room", local(day, 10), local(day, 11))
    assert kept.status_code == 201
    # A booking still to come stands in the way (issue 14.9) …
    refused_first = api.post("/api/v1/premises/room/retire", {"reason": "Myyty"}, role="staff")
    assert refused_first.status_code == 409
    # API.md: conflicts are written in the premises' local offset, everywhere.
    assert refused_first.get_json()["conflicts"] == [
        {"start": local(day, 10).isoformat(), "end": local(day, 11).isoformat(), "kind": "booking"}
    ]
    assert api.get("/api/v1/premises/room").get_json()["retired"] is False
    # … until it is cancelled with the retirement.
    body = {"reason": "Myyty", "cancel_conflicting": True}
    response = api.post("/api/v1/premises/room/retire", body, role="staff")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["retired"] is True
    assert response.get_json()["version"] == 2
    assert response.get_json()["cancelled_bookings"] == [kept.get_json()["id"]]

    assert ids(api.get("/api/v1/premises")) == ["other"]
    assert ids(api.get("/api/v1/premises?q=vanha")) == []
    window = {"start": local(day, 12).isoformat(), "end": local(day, 13).isoformat()}
    search = api.get("/api/v1/availability", query_string=window)
    assert search.status_code == 200, search.get_json()
    assert [p["id"] for p in search.get_json()["premises"]] == ["other"]
    one = api.get("/api/v1/premises/room")
    assert one.status_code == 200 and one.get_json()["retired"] is True

    refused = api.book("room", local(day, 14), local(day, 15))
    assert refused.status_code == 422
    assert "premises_id" in errors_of(refused)
    # Its history stays.
    assert api.get(f"/api/v1/bookings/{kept.get_json()['id']}", role="booker").status_code == 200

    again = api.post("/api/v1/premises/room/retire", {}, role="staff")
    assert again.status_code == 409
    assert api.post("/api/v1/premises/nope/retire", {}, role="staff").status_code == 404


def test_retire_honours_if_match(api: Api) -> None:
    api.premises("room")
    path = "/api/v1/premises/room/retire"
    stale = api.post(path, {}, role="staff", headers={"If-Match": '"2"'})
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert api.get("/api/v1/premises/room").get_json()["retired"] is False
    retired = api.post(path, {}, role="staff", headers={"If-Match": '"1"'})
    assert retired.status_code == 200
    assert retired.get_json()["retired"] is True


def test_retire_over_bookings_still_to_come_is_409_listing_them_and_changes_nothing(
    api: Api,
) -> None:
    """Issue 14.9: like a closure, retiring lists the bookings it would strand (in the
    premises' local offset) and appends nothing, unless `cancel_conflicting`."""
    api.premises("room")
    first, second = future_weekday(1), future_weekday(2, weeks_ahead=5)
    early = api.book("room", local(first, 10), local(first, 12)).get_json()
    late = api.book("room", local(second, 18), local(second, 20)).get_json()
    warm_tokens(api)
    before = event_count(api)
    response = api.post("/api/v1/premises/room/retire", {"reason": "Myyty"}, role="staff")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    conflicts = response.get_json()["conflicts"]
    assert [(c["kind"], datetime.fromisoformat(c["start"])) for c in conflicts] == [
        ("booking", local(first, 10)),
        ("booking", local(second, 18)),
    ]
    assert event_count(api) == before
    assert api.get("/api/v1/premises/room").get_json()["retired"] is False
    for booking in (early, late):
        seen = api.get(f"/api/v1/bookings/{booking['id']}", role="booker").get_json()
        assert seen["status"] == "confirmed"


def test_retire_with_cancel_conflicting_cancels_and_tells_each_booker_in_their_language(
    api: Api,
) -> None:
    api.premises("room", name={"fi": "Vanha sali", "en": "Old hall", "sv": "Gamla salen"})
    with write_transaction(api.engine) as conn:
        english = accounts.create_user(
            conn,
            email="english-booker@example.fi",
            name="English Booker",
            role="booker",
            organisation_id=api.other_organisation_id,
            language="en",
        )
    day = future_weekday(3)
    finnish = api.book("room", local(day, 10), local(day, 11)).get_json()
    theirs = api.post(
        "/api/v1/bookings",
        {
            "premises_id": "room",
            "start": local(day, 14).isoformat(),
            "end": local(day, 15).isoformat(),
            "title": "Book club",
            "attendees": 3,
        },
        headers={"Authorization": f"Bearer {english.token}"},
    ).get_json()
    body = {"reason": "Putkiremontti", "cancel_conflicting": True}
    response = api.post("/api/v1/premises/room/retire", body, role="staff")
    assert response.status_code == 200, response.get_json()
    assert sorted(response.get_json()["cancelled_bookings"]) == sorted(
        [finnish["id"], theirs["id"]]
    )
    for booking in (finnish, theirs):
        seen = api.get(f"/api/v1/bookings/{booking['id']}", role="staff").get_json()
        assert seen["status"] == "cancelled"
        assert seen["reason"] == "Putkiremontti"  # the staff's own words, nothing added
    with read_transaction(api.engine) as conn:
        mails = {
            m.language: m
            for m in conn.execute(select(outbox).where(outbox.c.dedupe_key.like("premises-room:%")))
        }
    assert set(mails) == {"fi", "en"}
    assert mails["fi"].subject == "Varaus peruttu, tila poistuu käytöstä: Vanha sali"
    assert "poistuu käytöstä" in mails["fi"].body and "Syy: Putkiremontti" in mails["fi"].body
    assert mails["en"].subject.startswith("Booking cancelled, the premises is taken out of use")
    assert "Old hall" in mails["en"].subject
    assert "Reason: Putkiremontti" in mails["en"].body


def test_retire_needs_no_body(api: Api) -> None:
    """The OpenAPI document says the body is optional; so does the service."""
    api.premises("room")
    response = api.client.post("/api/v1/premises/room/retire", headers=api.headers("staff"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["retired"] is True
    spec = api.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/premises/{premises_id}/retire"]["post"]
    assert operation["requestBody"]["required"] is False
    assert "409" in operation["responses"]
