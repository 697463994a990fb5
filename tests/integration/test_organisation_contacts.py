"""An organisation's own contact person decides its membership requests beside staff (issue
17 point 4): staff name a member as contact (an event), the contact lists and decides the
requests to that organisation only (never their own), and loses that right when un-named.
A retired organisation takes no requests and lets no one in. The request list is paged like
every other list. Admins assign roles. Both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from booking.memberships import membership_requests, memberships
from events.sql import read_transaction
from events.store import read_stream
from tests.conftest import Api
from tests.integration.test_memberships import ask, headers, me


def name_contact(api: Api, organisation_id: str, user_id: str | None, role: str = "staff") -> Any:
    return api.client.put(
        f"/api/v1/organisations/{organisation_id}/contact",
        json={"user_id": user_id},
        headers=api.headers(role),
    )


def as_person(api: Api, token: str, method: str, path: str, body: Any = None) -> Any:
    return api.client.open(path, method=method, json=body, headers=headers(token))


def rows(api: Api) -> tuple[int, int]:
    with read_transaction(api.engine) as conn:
        return (
            conn.execute(select(func.count()).select_from(membership_requests)).scalar_one(),
            conn.execute(select(func.count()).select_from(memberships)).scalar_one(),
        )


def test_the_named_contact_person_decides_their_organisations_requests(api: Api) -> None:
    contact = api.user("booker", api.organisation_id)
    contact_id = me(api, contact)["id"]
    plain_member = api.user("booker", api.organisation_id)
    resident, stranger = api.user("resident"), api.user("resident")
    mine = ask(api, resident, api.organisation_id).get_json()
    theirs = ask(api, stranger, api.other_organisation_id).get_json()
    # Before anyone is named, members are no deciders.
    assert as_person(api, contact, "GET", "/api/v1/membership-requests").status_code == 403
    refused = as_person(api, contact, "POST", f"/api/v1/membership-requests/{mine['id']}/approve")
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    named = name_contact(api, api.organisation_id, contact_id)
    assert named.status_code == 200, named.get_json()
    assert named.get_json()["contact_user_id"] == contact_id
    assert named.get_json()["retired_at"] is None
    with read_transaction(api.engine) as conn:
        recorded = read_stream(conn, f"organisation-{api.organisation_id}")
    assert [(e.type, e.data) for e in recorded][-1] == (
        "OrganisationContactNamed",
        {"organisation_id": api.organisation_id, "contact_user_id": contact_id},
    )
    # The contact sees the requests to their organisation only; another member sees none.
    listed = as_person(api, contact, "GET", "/api/v1/membership-requests?status=pending")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.get_json()["membership_requests"]] == [mine["id"]]
    assert as_person(api, plain_member, "GET", "/api/v1/membership-requests").status_code == 403
    other = as_person(api, contact, "POST", f"/api/v1/membership-requests/{theirs['id']}/approve")
    assert other.status_code == 403
    # Never their own request (to another organisation: not theirs to decide either).
    own = ask(api, contact, api.other_organisation_id).get_json()
    assert (
        as_person(
            api, contact, "POST", f"/api/v1/membership-requests/{own['id']}/approve"
        ).status_code
        == 403
    )
    approved = as_person(api, contact, "POST", f"/api/v1/membership-requests/{mine['id']}/approve")
    assert approved.status_code == 200, approved.get_json()
    assert me(api, resident)["role"] == "booker"
    # Un-named, the contact decides nothing any more.
    third = ask(api, api.user("resident"), api.organisation_id).get_json()
    assert name_contact(api, api.organisation_id, None).get_json()["contact_user_id"] is None
    again = as_person(api, contact, "POST", f"/api/v1/membership-requests/{third['id']}/reject")
    assert again.status_code == 403
    pending = api.get("/api/v1/membership-requests?status=pending", role="staff").get_json()
    assert {r["id"] for r in pending["membership_requests"]} == {
        theirs["id"],
        own["id"],
        third["id"],
    }


def test_a_contact_person_is_a_member_named_by_staff(api: Api) -> None:
    outsider = me(api, api.user("resident"))["id"]
    bad = name_contact(api, api.organisation_id, outsider)
    assert bad.status_code == 422 and "contact_user_id" in bad.get_json()["errors"]
    assert name_contact(api, api.organisation_id, "nobody").status_code == 422
    assert name_contact(api, "no-such-organisation", None).status_code == 404
    member = me(api, api.user("booker", api.organisation_id))["id"]
    assert name_contact(api, api.organisation_id, member, role="booker").status_code == 403
    assert name_contact(api, api.organisation_id, member, role="admin").status_code == 200
    # A contact who leaves the organisation decides nothing there.
    resident = api.user("resident")
    joined = ask(api, resident, api.other_organisation_id).get_json()
    api.post(f"/api/v1/membership-requests/{joined['id']}/approve", role="staff")
    resident_id = me(api, resident)["id"]
    assert name_contact(api, api.other_organisation_id, resident_id).status_code == 200
    asking = ask(api, api.user("resident"), api.other_organisation_id).get_json()
    left = as_person(
        api, resident, "DELETE", f"/api/v1/users/me/organisations/{api.other_organisation_id}"
    )
    assert left.status_code == 204
    after = as_person(api, resident, "POST", f"/api/v1/membership-requests/{asking['id']}/approve")
    assert after.status_code == 403


def test_a_retired_organisation_takes_no_requests_and_lets_no_one_in(api: Api) -> None:
    resident = api.user("resident")
    waiting = ask(api, resident, api.other_organisation_id).get_json()
    retired = api.post(f"/api/v1/organisations/{api.other_organisation_id}/retire", role="staff")
    assert retired.status_code == 200 and retired.get_json()["retired_at"].endswith("Z")
    again = api.post(f"/api/v1/organisations/{api.other_organisation_id}/retire", role="staff")
    assert again.get_json() == retired.get_json()
    before = rows(api)
    refused = ask(api, api.user("resident"), api.other_organisation_id)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert "retired" in refused.get_json()["detail"]
    approve = api.post(f"/api/v1/membership-requests/{waiting['id']}/approve", role="staff")
    assert approve.status_code == 409 and "retired" in approve.get_json()["detail"]
    assert rows(api) == before and me(api, resident)["role"] == "resident"
    rejected = api.post(
        f"/api/v1/membership-requests/{waiting['id']}/reject", {"reason": "Lakkautettu"}, "staff"
    )
    assert rejected.status_code == 200
    assert name_contact(api, api.other_organisation_id, None).status_code == 409
    assert api.post("/api/v1/organisations/nope/retire", role="staff").status_code == 404


def test_membership_requests_are_paged(api: Api) -> None:
    made = [ask(api, api.user("resident"), api.organisation_id).get_json()["id"] for _ in range(5)]
    first = api.get("/api/v1/membership-requests?limit=2", role="staff")
    body = first.get_json()
    assert [r["id"] for r in body["membership_requests"]] == made[:2]
    assert body["next"] and 'rel="next"' in first.headers["Link"]
    seen = [r["id"] for r in body["membership_requests"]]
    cursor = body["next"]
    while cursor:
        page = api.get(f"/api/v1/membership-requests?limit=2&after={cursor}", role="staff")
        seen += [r["id"] for r in page.get_json()["membership_requests"]]
        cursor = page.get_json()["next"]
        assert ("Link" in page.headers) == bool(cursor)
    assert seen == made
    bad = api.get("/api/v1/membership-requests?after=garbage", role="staff")
    assert bad.status_code == 422 and "after" in bad.get_json()["errors"]
    assert api.get("/api/v1/membership-requests?limit=0", role="staff").status_code == 422


def test_admins_assign_roles(api: Api) -> None:
    resident = api.user("resident")
    person = me(api, resident)["id"]
    made = api.client.put(
        f"/api/v1/users/{person}/role", json={"role": "staff"}, headers=api.headers("admin")
    )
    assert made.status_code == 200, made.get_json()
    assert made.get_json() == {"id": person, "role": "staff", "organisation_id": None}
    assert me(api, resident)["role"] == "staff"
    assert (
        api.get("/api/v1/membership-requests", role=None, headers=headers(resident)).status_code
        == 200
    )
    with read_transaction(api.engine) as conn:
        recorded = read_stream(conn, f"user-{person}")
    assert [e.type for e in recorded] == ["UserRegistered", "UserRoleChanged"]
    assert recorded[-1].data["by"] == "admin"

    def assign(user_id: str, body: dict[str, Any], role: str = "admin") -> Any:
        return api.client.put(f"/api/v1/users/{user_id}/role", json=body, headers=api.headers(role))

    assert assign(person, {"role": "booker"}).status_code == 422  # no organisation
    booker = assign(person, {"role": "booker", "organisation_id": api.organisation_id})
    assert booker.status_code == 200 and me(api, resident)["organisation_id"] == api.organisation_id
    assert assign(person, {"role": "emperor"}).status_code == 422
    assert assign("nobody", {"role": "staff"}).status_code == 404
    assert assign(person, {"role": "admin"}, role="staff").status_code == 403
    own = me(api, api.token("admin"))["id"]
    assert assign(own, {"role": "resident"}).status_code == 409
