"""Organisations people join: a signed-in person asks, staff approve or reject (never their
own request), an approved resident becomes a booker, users/me lists the organisations, and a
person in several names the one a booking is for (422 without, 403 for one not theirs).
Both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from booking.memberships import membership_requests, memberships
from events.sql import read_transaction
from tests.conftest import Api, future_weekday, local
from tests.integration.test_allocation_api import EVENINGS, application, round_body

DAY = future_weekday(3)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(api: Api, token: str, organisation_id: str, message: str = "Olen jäsen") -> Any:
    return api.client.post(
        f"/api/v1/organisations/{organisation_id}/membership-requests",
        json={"message": message},
        headers=headers(token),
    )


def me(api: Api, token: str) -> dict[str, Any]:
    response = api.client.get("/api/v1/users/me", headers=headers(token))
    assert response.status_code == 200
    found: dict[str, Any] = response.get_json()
    return found


def rows(api: Api) -> tuple[int, int]:
    with read_transaction(api.engine) as conn:
        return (
            conn.execute(select(func.count()).select_from(membership_requests)).scalar_one(),
            conn.execute(select(func.count()).select_from(memberships)).scalar_one(),
        )


def book(api: Api, token: str, hour: int, **extra: Any) -> Any:
    body = {
        "premises_id": "room",
        "start": local(DAY, hour).isoformat(),
        "end": local(DAY, hour + 1).isoformat(),
        "title": "Kerhoilta",
        "attendees": 5,
        **extra,
    }
    return api.client.post("/api/v1/bookings", json=body, headers=headers(token))


def test_a_resident_asks_staff_approve_and_they_become_a_booker(api: Api) -> None:
    resident = api.user("resident")
    assert me(api, resident)["organisations"] == []
    asked = ask(api, resident, api.organisation_id)
    assert asked.status_code == 201, asked.get_json()
    request = asked.get_json()
    assert request["status"] == "pending" and request["organisation_id"] == api.organisation_id
    assert request["user_id"] == me(api, resident)["id"] and request["message"] == "Olen jäsen"
    assert ask(api, resident, api.organisation_id).status_code == 409  # asking twice
    assert api.get("/api/v1/membership-requests?status=pending", role="booker").status_code == 403
    pending = api.get("/api/v1/membership-requests?status=pending", role="staff").get_json()
    assert [r["id"] for r in pending["membership_requests"]] == [request["id"]]
    approved = api.post(f"/api/v1/membership-requests/{request['id']}/approve", role="staff")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    now_me = me(api, resident)
    assert now_me["role"] == "booker" and now_me["organisation_id"] == api.organisation_id
    assert now_me["organisations"] == [
        {"id": api.organisation_id, "name": "Mikkelin Shakkikerho ry"}
    ]
    again = api.post(f"/api/v1/membership-requests/{request['id']}/reject", role="staff")
    assert again.status_code == 409
    assert ask(api, resident, api.organisation_id).status_code == 409  # a member already


def test_staff_never_decide_their_own_request_and_rejection_keeps_the_role(api: Api) -> None:
    staff = api.token("staff")
    own = ask(api, staff, api.organisation_id).get_json()
    refused = api.client.post(
        f"/api/v1/membership-requests/{own['id']}/approve", headers=headers(staff)
    )
    assert refused.status_code == 403
    resident = api.user("resident")
    asked = ask(api, resident, api.other_organisation_id).get_json()
    rejected = api.post(
        f"/api/v1/membership-requests/{asked['id']}/reject", {"reason": "Ei jäsen"}, role="staff"
    )
    assert rejected.status_code == 200 and rejected.get_json()["reason"] == "Ei jäsen"
    assert me(api, resident)["role"] == "resident"


def test_a_request_carries_its_version_and_a_stale_if_match_is_412(api: Api) -> None:
    """API.md: every resource that changes carries `version`; a write may send
    `If-Match: "<version>"` and gets 412 if it is stale."""
    resident = api.user("resident")
    request = ask(api, resident, api.organisation_id).get_json()
    assert request["version"] == 1
    path = f"/api/v1/membership-requests/{request['id']}"
    before = rows(api)
    stale = api.post(f"{path}/approve", role="staff", headers={"If-Match": '"2"'})
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    assert stale.headers["ETag"] == '"1"'
    assert rows(api) == before and me(api, resident)["role"] == "resident"
    approved = api.post(f"{path}/approve", role="staff", headers={"If-Match": '"1"'})
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["version"] == 2 and approved.headers["ETag"] == '"2"'
    late = api.post(f"{path}/reject", {"reason": "x"}, role="staff", headers={"If-Match": '"1"'})
    assert late.status_code == 412
    listed = api.get("/api/v1/membership-requests", role="staff").get_json()
    assert [r["version"] for r in listed["membership_requests"]] == [2]


def test_an_unknown_organisation_or_request_is_a_clear_404_and_writes_nothing(api: Api) -> None:
    resident = api.user("resident")
    before = rows(api)
    response = ask(api, resident, "no-such-organisation")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert api.post("/api/v1/membership-requests/nope/approve", role="staff").status_code == 404
    too_long = ask(api, resident, api.organisation_id, message="x" * 2001)
    assert too_long.status_code == 422
    assert rows(api) == before
    anonymous = api.client.post(
        f"/api/v1/organisations/{api.organisation_id}/membership-requests", json={}
    )
    assert anonymous.status_code == 401


def test_a_person_in_several_organisations_names_one_when_booking(api: Api) -> None:
    api.premises("room")
    booker = api.user("booker", api.organisation_id)
    asked = ask(api, booker, api.other_organisation_id).get_json()
    api.post(f"/api/v1/membership-requests/{asked['id']}/approve", role="staff")
    assert {o["id"] for o in me(api, booker)["organisations"]} == {
        api.organisation_id,
        api.other_organisation_id,
    }
    missing = book(api, booker, 10)
    assert missing.status_code == 422 and "organisation_id" in missing.get_json()["errors"]
    third = api.organisation("Kolmas ry")
    assert book(api, booker, 10, organisation_id=third).status_code == 403
    placed = book(api, booker, 10, organisation_id=api.other_organisation_id)
    assert placed.status_code == 201, placed.get_json()
    assert placed.get_json()["organisation_id"] == api.other_organisation_id
    # A booker of one organisation needs not name it.
    single = api.user("booker", api.organisation_id)
    assert book(api, single, 12).status_code == 201


def test_leaving_an_organisation_joined_by_request(api: Api) -> None:
    resident = api.user("resident")
    asked = ask(api, resident, api.organisation_id).get_json()
    api.post(f"/api/v1/membership-requests/{asked['id']}/approve", role="staff")
    keyed = {**headers(resident), "Idempotency-Key": "leave-once"}
    path = f"/api/v1/users/me/organisations/{api.organisation_id}"
    left = api.client.delete(path, headers=keyed)
    assert left.status_code == 204
    # API.md: the same Idempotency-Key returns the first response again.
    assert api.client.delete(path, headers=keyed).status_code == 204
    after = me(api, resident)
    assert after["organisations"] == [] and after["role"] == "resident"
    again = api.client.delete(
        f"/api/v1/users/me/organisations/{api.organisation_id}", headers=headers(resident)
    )
    assert again.status_code == 404


def test_the_data_export_holds_requests_and_sessions_and_erasure_shreds_them(api: Api) -> None:
    resident = api.user("resident")
    user_id = me(api, resident)["id"]
    ask(api, resident, api.organisation_id, message="Puhelin 040 123")
    held = api.client.get(f"/api/v1/users/{user_id}/data", headers=headers(resident)).get_json()
    assert [r["message"] for r in held["membership_requests"]] == ["Puhelin 040 123"]
    assert held["sessions"] == [] and held["identities"] == []
    assert api.post(f"/api/v1/users/{user_id}/erase", role="admin").status_code == 200
    after = api.get(f"/api/v1/users/{user_id}/data", role="admin").get_json()
    assert [r["message"] for r in after["membership_requests"]] == [None]


def test_a_person_in_several_organisations_names_one_when_applying(api: Api) -> None:
    """API.md: a person in several organisations names `organisation_id` when applying in an
    allocation round (422 without it, 403 for one not theirs), and then sees, changes and
    withdraws that organisation's application as its member."""
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    for premises_id in ("gym", "hall"):
        api.premises(premises_id, opening_hours=EVENINGS, rules=rules, capacity=60)
    round_id = api.post("/api/v1/allocation-rounds", round_body(), role="staff").get_json()["id"]
    path = f"/api/v1/allocation-rounds/{round_id}/applications"
    booker = api.user("booker", api.organisation_id)
    asked = ask(api, booker, api.other_organisation_id).get_json()
    api.post(f"/api/v1/membership-requests/{asked['id']}/approve", role="staff")

    def apply(**extra: Any) -> Any:
        return api.client.post(path, json={**application(), **extra}, headers=headers(booker))

    missing = apply()
    assert missing.status_code == 422 and "organisation_id" in missing.get_json()["errors"]
    assert apply(organisation_id=api.organisation("Kolmas ry")).status_code == 403
    made = apply(organisation_id=api.other_organisation_id)
    assert made.status_code == 201, made.get_json()
    application_id = made.get_json()["id"]
    listed = api.client.get(path, headers=headers(booker)).get_json()["applications"]
    assert [(a["id"], a["organisation_id"]) for a in listed] == [
        (application_id, api.other_organisation_id)
    ]
    shown = api.client.get(f"/api/v1/applications/{application_id}", headers=headers(booker))
    assert shown.status_code == 200
    # A booker of the first organisation only sees none of it.
    single = api.user("booker", api.organisation_id)
    assert api.client.get(path, headers=headers(single)).get_json()["applications"] == []
    other = api.client.get(f"/api/v1/applications/{application_id}", headers=headers(single))
    assert other.status_code == 403
    withdrawn = api.client.post(
        f"/api/v1/applications/{application_id}/withdraw", headers=headers(booker)
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert withdrawn.get_json()["status"] == "withdrawn"
