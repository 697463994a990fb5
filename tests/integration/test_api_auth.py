"""Who may do what, over HTTP on SQLite and PostgreSQL: 401 without a valid bearer token, 403
for a role that may not, and the user endpoints (API.md, "Conventions" and "People")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from booking.accounts import token_hash
from booking.tables import api_tokens, idempotency_keys
from tests.conftest import Api, future_weekday, local, premises_body
from tests.integration.test_api_log import event_count

PROBLEM = "application/problem+json"
ROLES = ("resident", "booker", "staff", "analyst", "admin")


def _setup(api: Api) -> dict[str, str]:
    """Premises, a confirmed booking, a pending one and a series to aim the writes at."""
    api.premises("room")
    api.premises("hall", rules={"requires_approval": True})
    api.premises("old")
    day = future_weekday(2)
    confirmed = api.book("room", local(day, 10), local(day, 11)).get_json()
    pending = api.book("hall", local(day, 10), local(day, 11)).get_json()
    other_pending = api.book("hall", local(day, 12), local(day, 13)).get_json()
    series = api.post(
        "/api/v1/booking-series",
        {
            "premises_id": "room",
            "start": local(day, 14).isoformat(),
            "end": local(day, 15).isoformat(),
            "rrule": "FREQ=WEEKLY;COUNT=2",
            "title": "Sarja",
        },
        role="booker",
    ).get_json()
    return {
        "booking": confirmed["id"],
        "pending": pending["id"],
        "other_pending": other_pending["id"],
        "series": series["series_id"],
    }


def _writes(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None, set[str]]]:
    """(method, path, body, roles allowed) for every write endpoint of the foundation."""
    day = future_weekday(3)
    slot = {"start": local(day, 10).isoformat(), "end": local(day, 11).isoformat()}
    later = {"start": local(day, 16).isoformat(), "end": local(day, 18).isoformat()}
    staff = {"staff", "admin"}
    bookers = {"booker", "staff", "admin"}
    return [
        ("POST", "/api/v1/premises", premises_body("new-room"), staff),
        ("PATCH", "/api/v1/premises/room", {"capacity": 20}, staff),
        ("POST", "/api/v1/premises/room/closures", {**later, "reason": "Remontti"}, staff),
        ("POST", "/api/v1/premises/old/retire", {"reason": "Myyty"}, staff),
        ("POST", "/api/v1/bookings", {**slot, "premises_id": "room", "title": "Ilta"}, bookers),
        ("POST", f"/api/v1/bookings/{ids['booking']}/cancel", {"reason": "x"}, bookers),
        ("POST", f"/api/v1/bookings/{ids['pending']}/approve", None, staff),
        ("POST", f"/api/v1/bookings/{ids['other_pending']}/reject", {"reason": "x"}, staff),
        (
            "POST",
            "/api/v1/booking-series",
            {**slot, "premises_id": "room", "title": "Sarja", "rrule": "FREQ=WEEKLY;COUNT=2"},
            bookers,
        ),
        ("POST", f"/api/v1/booking-series/{ids['series']}/cancel", {"reason": "x"}, bookers),
        (
            "POST",
            "/api/v1/users",
            {"email": "uusi@example.fi", "name": "Uusi", "role": "staff"},
            {"admin"},
        ),
    ]


def _call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.open(path, method=method, json=body, headers=headers)


def test_no_token_or_a_bad_one_is_401_everywhere(api: Api) -> None:
    ids = _setup(api)
    before = event_count(api)
    reads = [("GET", "/api/v1/bookings", None), ("GET", f"/api/v1/bookings/{ids['booking']}", None)]
    reads += [("GET", "/api/v1/users/me", None), ("GET", "/api/v1/events", None)]
    calls = [(m, p, b) for m, p, b, _ in _writes(ids)] + reads
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": api.token("admin")},  # the token without its scheme
    ):
        for method, path, body in calls:
            response = _call(api, method, path, body, headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.mimetype == PROBLEM
            assert response.get_json()["status"] == 401
            assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert event_count(api) == before


def test_each_write_refuses_the_roles_it_is_not_for(api: Api) -> None:
    ids = _setup(api)
    for role in ROLES:
        api.token(role)
    before = event_count(api)
    for method, path, body, allowed in _writes(ids):
        for role in sorted(set(ROLES) - allowed):
            response = _call(api, method, path, body, api.headers(role))
            assert response.status_code == 403, (method, path, role, response.get_json())
            assert response.mimetype == PROBLEM
            assert set(response.get_json()) >= {"type", "title", "status", "detail"}
    assert event_count(api) == before


def test_each_write_admits_the_roles_it_is_for(api: Api) -> None:
    ids = _setup(api)
    for method, path, body, allowed in _writes(ids):
        # The first allowed role in this order acts; admins are checked separately below.
        role = next(r for r in ("booker", "staff", "admin") if r in allowed)
        response = _call(api, method, path, body, api.headers(role))
        assert response.status_code in (200, 201), (method, path, role, response.get_json())


def test_admin_may_do_what_staff_may(api: Api) -> None:
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(2)
    pending = api.book("hall", local(day, 10), local(day, 11)).get_json()
    approved = api.post(f"/api/v1/bookings/{pending['id']}/approve", role="admin")
    assert approved.status_code == 200
    patched = api.patch("/api/v1/premises/hall", {"capacity": 3}, role="admin")
    assert patched.status_code == 200


def test_users_me_for_every_role(api: Api) -> None:
    for role in ROLES:
        response = api.get("/api/v1/users/me", role=role)
        assert response.status_code == 200, role
        body = response.get_json()
        assert set(body) >= {"id", "email", "name", "role", "organisation_id", "language"}
        assert body["role"] == role
        assert body["language"] == "fi"
        assert body["email"].startswith(f"{role}-")
        assert body["organisation_id"] == (api.organisation_id if role == "booker" else None)
        assert "token" not in body
        assert "password" not in body and "password_hash" not in body


def test_admin_creates_a_user_whose_token_works(api: Api) -> None:
    response = api.post(
        "/api/v1/users",
        {
            "email": "Liisa.Virtanen@Example.fi",
            "name": "Liisa Virtanen",
            "role": "booker",
            "organisation_id": api.organisation_id,
            "language": "en",
            "password": "pitkä-salasana",
        },
        role="admin",
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["role"] == "booker"
    assert created["email"] == "liisa.virtanen@example.fi"
    assert created["organisation_id"] == api.organisation_id
    assert "password" not in created
    token = created["token"]
    assert isinstance(token, str) and len(token) >= 32

    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    # users/me also lists the person's organisations (API.md, issue 17).
    assert me.get_json() == {
        **{k: v for k, v in created.items() if k != "token"},
        "organisations": [{"id": api.organisation_id, "name": "Mikkelin Shakkikerho ry"}],
    }
    # The new booker books for its organisation.
    api.premises("room")
    day = future_weekday(2)
    booked = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 11).isoformat(),
            "title": "Ilta",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert booked.status_code == 201
    assert booked.get_json()["organisation_id"] == api.organisation_id

    # The same address again (in any case) is a conflict.
    again = api.post(
        "/api/v1/users",
        {"email": "liisa.virtanen@example.fi", "name": "L", "role": "staff"},
        role="admin",
    )
    assert again.status_code == 409
    assert again.mimetype == PROBLEM


def test_a_replay_shows_the_same_token_which_is_never_kept(api: Api) -> None:
    # API.md: a replay of the same Idempotency-Key and body returns the same status and body.
    # The token in it is derived again from the key, not kept: the answer kept for replays
    # holds none, api_tokens only its hash.
    body = {"email": "kerran@example.fi", "name": "Kerran", "role": "resident"}
    headers = {"Idempotency-Key": "new-user-once"}
    first = api.post("/api/v1/users", body, role="admin", headers=headers)
    assert first.status_code == 201, first.get_json()
    token = first.get_json()["token"]
    assert isinstance(token, str) and len(token) >= 32
    again = api.post("/api/v1/users", body, role="admin", headers=headers)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    with api.engine.connect() as conn:
        kept = conn.execute(select(idempotency_keys.c.body)).scalars().all()
        hashes = conn.execute(select(api_tokens.c.token_hash)).scalars().all()
    assert kept and not any(token in str(answer) for answer in kept)
    assert token not in hashes and token_hash(token) in hashes
    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["email"] == "kerran@example.fi"
    other = {**body, "email": "toinen@example.fi"}
    second = api.post("/api/v1/users", other, role="admin", headers={"Idempotency-Key": "2nd"})
    assert second.status_code == 201 and second.get_json()["token"] not in (None, token)


def test_a_replay_shows_no_token_that_the_key_did_not_make(api: Api) -> None:
    # An answer kept before tokens were derived from the key names a user whose token was
    # random: its replay shows null, never a token that would not work.
    body = {"email": "vanha@example.fi", "name": "Vanha", "role": "resident"}
    headers = {"Idempotency-Key": "from-before"}
    first = api.post("/api/v1/users", body, role="admin", headers=headers)
    assert first.status_code == 201
    with api.engine.begin() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.user_id == first.get_json()["id"])
            .values(token_hash=token_hash("a random token of the time before"))
        )
    again = api.post("/api/v1/users", body, role="admin", headers=headers)
    assert again.status_code == 201
    assert again.get_json() == {**first.get_json(), "token": None}


def test_bad_new_users_are_422(api: Api) -> None:
    before = event_count(api)
    for body, field in [
        ({"email": "not-an-address", "name": "X", "role": "staff"}, "email"),
        ({"email": "x@example.fi", "name": "X", "role": "superuser"}, "role"),
        ({"email": "x@example.fi", "name": "X", "role": "booker"}, "organisation_id"),
        (
            {"email": "x@example.fi", "name": "X", "role": "booker", "organisation_id": "nope"},
            "organisation_id",
        ),
        ({"email": "x@example.fi", "name": "", "role": "staff"}, "name"),
        ({"email": "x@example.fi", "name": "X", "role": "staff", "language": "de"}, "language"),
        ({"email": "x@example.fi", "name": "X", "role": "staff", "password": "short"}, "password"),
        ({"email": "x@example.fi", "name": "X", "role": "staff", "token": "mine"}, "token"),
    ]:
        response = api.post("/api/v1/users", body, role="admin")
        assert response.status_code == 422, (body, response.get_json())
        assert response.mimetype == PROBLEM
        assert field in response.get_json()["errors"], (body, response.get_json())
    assert event_count(api) == before
