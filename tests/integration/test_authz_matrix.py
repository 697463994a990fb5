"""Who may do what: every endpoint called by every role (and by nobody), compared with the
table below, on SQLite and PostgreSQL.

A call that is allowed must succeed (2xx): each role gets its own fresh booking, pop-up
request, series or token where the call changes one, so no call depends on another. A call
that is not allowed must be refused with 401 (no token), 403 (a token that may not), or
404 where the API does not reveal that someone else's thing exists — and change nothing.
`booker2` is a booker of another organisation: the object-level column.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask

from events.sql import read_transaction
from events.store import head_position
from tests.conftest import TEST_NOW, Api, future_weekday, local, premises_body
from tests.integration.test_allocation_api import EVENINGS, application, round_body

ROLES = (None, "resident", "booker", "booker2", "staff", "analyst", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {None}
STAFF = frozenset({"staff", "admin"})
BOOKERS = frozenset({"booker", "staff", "admin"})  # booker: of the thing's organisation


class World:
    """Things to aim the calls at, each made fresh on demand, in free slots of their own."""

    def __init__(self, api: Api, clock: Any) -> None:
        self.api = api
        self.slots = itertools.count()
        self.booker2_token = api.user("booker", api.other_organisation_id)
        api.premises("room")
        api.premises("hall", rules={"requires_approval": True})
        api.premises("popups", rules={"popup_allowed": True, "popup_auto_approve": False})
        self.booking_id = self.booking()
        self.popup_id = self.popup()
        self.booker_id = api.get("/api/v1/users/me", role="booker").get_json()["id"]
        self.allocation_rounds(clock)

    def allocation_rounds(self, clock: Any) -> None:
        """A round open for applications; and, once the clock is past their close, one
        allocating with a proposal, two more ready to publish, and a published one with
        offers (one per allowed answer, and one left for the refused)."""
        rules = {"max_advance_days": 365, "max_duration_minutes": 180}
        for premises_id in ("gym", "court"):
            self.api.premises(premises_id, opening_hours=EVENINGS, rules=rules, capacity=60)
        soon = (TEST_NOW + timedelta(hours=1)).isoformat()
        self.open_round = self.round(body=round_body(premises=["gym", "court"]))
        self.allocating_round = self.round(soon)
        self.to_publish = [self.round(soon), self.round(soon)]
        self.published = published = self.round(soon)
        wishes = [(d, t) for t in ("17:00", "19:00") for d in ("mon", "tue", "wed", "thu")]
        self.allocating_applications = [
            self.application(self.allocating_round, *wish) for wish in wishes[:2]
        ]
        for round_id in self.to_publish:
            self.application(round_id, *wishes[0])
        for wish in wishes:
            self.application(published, *wish)
        clock.move_to(TEST_NOW + timedelta(hours=2))
        for round_id, status in ((self.open_round, "open"), (self.allocating_round, "allocating")):
            assert self.api.get(f"/api/v1/allocation-rounds/{round_id}").get_json()["status"] == (
                status
            )
        for round_id in (self.allocating_round, *self.to_publish, published):
            made = self.api.post(f"/api/v1/allocation-rounds/{round_id}/proposal", role="staff")
            assert made.status_code == 200, made.get_json()
        done = self.api.post(f"/api/v1/allocation-rounds/{published}/publish", role="staff")
        assert done.status_code == 200, done.get_json()
        self.offers = [str(o["id"]) for o in done.get_json()["offers"]]
        assert len(self.offers) == len(wishes)
        self.hand_slots = itertools.count()

    def round(self, close: str | None = None, body: dict[str, Any] | None = None) -> str:
        body = body or round_body(premises=["gym", "court"], applications_close=close)
        made = self.api.post("/api/v1/allocation-rounds", body, role="staff")
        assert made.status_code == 201, made.get_json()
        return str(made.get_json()["id"])

    def application(self, round_id: str, weekday: str = "mon", start: str = "17:00") -> str:
        body = self.application_body(weekday, start)
        made = self.api.post(f"/api/v1/allocation-rounds/{round_id}/applications", body, "booker")
        assert made.status_code == 201, made.get_json()
        return str(made.get_json()["id"])

    @staticmethod
    def application_body(weekday: str = "mon", start: str = "17:00") -> dict[str, Any]:
        """One section wishing 90 minutes at `start` on `weekday`, in the World's rounds."""
        end = f"{int(start[:2]) + 1}:30"
        body = application()
        section = body["sections"][0]
        section["premises"] = ["gym", "court"]
        section["times"] = [{"weekday": weekday, "from": start, "to": end, "priority": "primary"}]
        return body

    def open_application(self) -> str:
        return self.application(self.open_round)

    def offer(self, role: str | None) -> str:
        """A fresh offer for a role that may answer it; a refused role gets one left over."""
        return self.offers.pop() if role in BOOKERS else self.offers[-1]

    def round_to_publish(self, role: str | None) -> str:
        return self.to_publish.pop() if role in STAFF else self.to_publish[-1]

    def an_allocation(self) -> str:
        path = f"/api/v1/allocation-rounds/{self.allocating_round}/allocations"
        return str(self.api.get(path, role="staff").get_json()["allocations"][0]["id"])

    def person(self) -> str:
        """A new resident's id, to be erased."""
        token = self.api.user("resident")
        me = self.api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        return str(me.get_json()["id"])

    def membership_request(self) -> str:
        """A new resident's pending request to join the organisation, to be decided."""
        token = self.api.user("resident")
        response = self.api.client.post(
            f"/api/v1/organisations/{self.api.organisation_id}/membership-requests",
            json={"message": "Jäsen"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    def headers(self, role: str | None) -> dict[str, str]:
        if role == "booker2":
            return {"Authorization": f"Bearer {self.booker2_token}"}
        return self.api.headers(role)

    def slot(self, days_ahead: int = 14) -> tuple[str, str]:
        n = next(self.slots)
        day = future_weekday(0, weeks_ahead=0) + timedelta(days=days_ahead + n // 12)
        start = local(day, 8 + n % 12)
        return start.isoformat(), (start + timedelta(minutes=45)).isoformat()

    def booking(self, premises_id: str = "room") -> str:
        start, end = self.slot()
        body = {"premises_id": premises_id, "start": start, "end": end, "title": "Kerho"}
        response = self.api.post("/api/v1/bookings", {**body, "attendees": 4}, role="booker")
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    def series(self) -> str:
        start, end = self.slot()
        response = self.api.post("/api/v1/booking-series", self.series_body(start, end), "booker")
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["series_id"])

    @staticmethod
    def series_body(start: str, end: str) -> dict[str, Any]:
        return {
            "premises_id": "room",
            "start": start,
            "end": end,
            "rrule": "FREQ=WEEKLY;COUNT=2",
            "title": "Sarja",
            "attendees": 3,
            "on_conflict": "skip",
        }

    def popup(self) -> str:
        start, end = self.slot(days_ahead=3)
        response = self.api.post("/api/v1/popup-requests", self.popup_body(start, end), "resident")
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    @staticmethod
    def popup_body(start: str, end: str) -> dict[str, Any]:
        return {
            "premises_id": "popups",
            "start": start,
            "end": end,
            "title": "Kirpputori",
            "description": "",
            "expected_attendees": 5,
        }

    def feed_token(self, role: str = "booker") -> str:
        scope = {"organisation": self.api.organisation_id}
        response = self.api.client.post(
            "/api/v1/feed-tokens", json={"scope": scope}, headers=self.headers(role)
        )
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    def private_feed(self) -> str:
        response = self.api.post(
            "/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff"
        )
        url = response.get_json()["url"]
        return "/" + url.split("/", 3)[3]


# (method, path, body) for one call, made for one role (fresh things where it writes).
Call = Callable[[World, str | None], tuple[str, str, Any]]


@dataclass(frozen=True)
class Rule:
    method: str
    rule: str  # the Flask URL rule, to check that every endpoint is in the table
    allowed: frozenset[str | None]
    call: Call
    denied_as: int | None = None  # 404 where others' things are hidden; else 403 (401)


def _range() -> str:
    first = future_weekday(0)
    return f"from={first}&to={first + timedelta(days=6)}"


def _closure(w: World, _: str | None) -> tuple[str, str, Any]:
    start, end = w.slot(days_ahead=200)
    return "POST", "/api/v1/premises/room/closures", {"start": start, "end": end, "reason": "x"}


def _retire(w: World, _: str | None) -> tuple[str, str, Any]:
    premises_id = f"p-{uuid.uuid4().hex[:8]}"
    w.api.premises(premises_id)
    return "POST", f"/api/v1/premises/{premises_id}/retire", {}


def _search(w: World, _: str | None) -> tuple[str, str, Any]:
    start, end = w.slot()
    query = f"start={start}&end={end}".replace("+", "%2B")
    return "GET", f"/api/v1/availability?{query}", None


def _on_behalf(w: World, role: str | None) -> dict[str, str]:
    """Staff book on an organisation's behalf; bookers for their own."""
    return {"organisation_id": w.api.organisation_id} if role in STAFF else {}


def _book(w: World, role: str | None) -> tuple[str, str, Any]:
    start, end = w.slot()
    body = {"premises_id": "room", "start": start, "end": end, "title": "K", "attendees": 2}
    return "POST", "/api/v1/bookings", {**body, **_on_behalf(w, role)}


def _place_series(w: World, role: str | None) -> tuple[str, str, Any]:
    return "POST", "/api/v1/booking-series", {**w.series_body(*w.slot()), **_on_behalf(w, role)}


def _popup(w: World, _: str | None) -> tuple[str, str, Any]:
    return "POST", "/api/v1/popup-requests", w.popup_body(*w.slot(days_ahead=3))


def _new_user(w: World, _: str | None) -> tuple[str, str, Any]:
    email = f"new-{uuid.uuid4().hex[:8]}@example.fi"
    return "POST", "/api/v1/users", {"email": email, "name": "Uusi", "role": "resident"}


def _org_token(w: World, role: str | None) -> tuple[str, str, Any]:
    return "POST", "/api/v1/feed-tokens", {"scope": {"organisation": w.api.organisation_id}}


def _revoke(w: World, _: str | None) -> tuple[str, str, Any]:
    return "DELETE", f"/api/v1/feed-tokens/{w.feed_token()}", None


def _get(path: str) -> Call:
    return lambda w, _: ("GET", path.format(w=w, range=_range()), None)


def _post(path: str, body: Any, fresh: Callable[[World], str] | None = None) -> Call:
    def call(w: World, _: str | None) -> tuple[str, str, Any]:
        return "POST", path.format(w=w, id=fresh(w) if fresh else ""), body

    return call


def _apply(w: World, role: str | None) -> tuple[str, str, Any]:
    path = f"/api/v1/allocation-rounds/{w.open_round}/applications"
    return "POST", path, {**w.application_body(), **_on_behalf(w, role)}


def _by_hand(w: World, _: str | None) -> tuple[str, str, Any]:
    """A slot of its own on the court, outside the wishes (hence the reason)."""
    n = next(w.hand_slots)
    body = {
        "application_id": w.allocating_applications[0],
        "section": "P10",
        "premises_id": "court",
        "weekday": ("wed", "thu", "fri")[n % 3],
        "start_time": f"{16 + 2 * (n // 3)}:00",
        "end_time": f"{17 + 2 * (n // 3)}:30",
        "override_reason": "Sovittu",
    }
    return "POST", f"/api/v1/allocation-rounds/{w.allocating_round}/allocations", body


def _rounds(path: str) -> str:
    return "/api/v1/allocation-rounds" + path


def _delete(path: str) -> Call:
    return lambda w, _: ("DELETE", path.format(w=w), None)


TABLE: tuple[Rule, ...] = (
    Rule("GET", "/api/v1/premises", EVERYONE, _get("/api/v1/premises")),
    Rule(
        "POST",
        "/api/v1/premises",
        STAFF,
        lambda w, _: ("POST", "/api/v1/premises", premises_body(f"p-{uuid.uuid4().hex[:8]}")),
    ),
    Rule("GET", "/api/v1/premises/<premises_id>", EVERYONE, _get("/api/v1/premises/room")),
    Rule(
        "PATCH",
        "/api/v1/premises/<premises_id>",
        STAFF,
        lambda w, _: ("PATCH", "/api/v1/premises/room", {"capacity": 13}),
    ),
    Rule("POST", "/api/v1/premises/<premises_id>/closures", STAFF, _closure),
    Rule("POST", "/api/v1/premises/<premises_id>/retire", STAFF, _retire),
    Rule(
        "GET",
        "/api/v1/premises/<premises_id>/availability",
        EVERYONE,
        _get("/api/v1/premises/room/availability?{range}"),
    ),
    Rule("GET", "/api/v1/availability", EVERYONE, _search),
    Rule(
        "GET", "/api/v1/premises/<premises_id>/feed", EVERYONE, _get("/api/v1/premises/room/feed")
    ),
    Rule("POST", "/api/v1/bookings", BOOKERS | {"booker2"}, _book),
    Rule("GET", "/api/v1/bookings", SIGNED_IN, _get("/api/v1/bookings")),
    Rule("GET", "/api/v1/bookings/<booking_id>", BOOKERS, _get("/api/v1/bookings/{w.booking_id}")),
    Rule(
        "POST",
        "/api/v1/bookings/<booking_id>/cancel",
        BOOKERS,
        _post("/api/v1/bookings/{id}/cancel", {"reason": "Ei tarvita"}, lambda w: w.booking()),
    ),
    Rule(
        "POST",
        "/api/v1/bookings/<booking_id>/approve",
        STAFF,
        _post("/api/v1/bookings/{id}/approve", {}, lambda w: w.booking("hall")),
    ),
    Rule(
        "POST",
        "/api/v1/bookings/<booking_id>/reject",
        STAFF,
        _post("/api/v1/bookings/{id}/reject", {"reason": "Ei"}, lambda w: w.booking("hall")),
    ),
    Rule("POST", "/api/v1/booking-series", BOOKERS | {"booker2"}, _place_series),
    Rule(
        "POST",
        "/api/v1/booking-series/<series_id>/cancel",
        BOOKERS,
        _post("/api/v1/booking-series/{id}/cancel", {"reason": "Loppui"}, World.series),
    ),
    Rule("POST", "/api/v1/popup-requests", SIGNED_IN, _popup),
    Rule("GET", "/api/v1/popup-requests", SIGNED_IN, _get("/api/v1/popup-requests")),
    Rule(
        "GET",
        "/api/v1/popup-requests/<request_id>",
        STAFF | {"resident"},
        _get("/api/v1/popup-requests/{w.popup_id}"),
    ),
    Rule(
        "POST",
        "/api/v1/popup-requests/<request_id>/approve",
        STAFF,
        _post("/api/v1/popup-requests/{id}/approve", {}, World.popup),
    ),
    Rule(
        "POST",
        "/api/v1/popup-requests/<request_id>/reject",
        STAFF,
        _post("/api/v1/popup-requests/{id}/reject", {"reason": "Ei"}, World.popup),
    ),
    Rule(
        "POST",
        "/api/v1/popup-requests/<request_id>/withdraw",
        STAFF | {"resident"},
        _post("/api/v1/popup-requests/{id}/withdraw", {}, World.popup),
    ),
    Rule(
        "GET",
        "/api/v1/bookings/<booking_id>/messages",
        BOOKERS,
        _get("/api/v1/bookings/{w.booking_id}/messages"),
    ),
    Rule(
        "POST",
        "/api/v1/bookings/<booking_id>/messages",
        BOOKERS,
        _post("/api/v1/bookings/{w.booking_id}/messages", {"body": "Hei"}),
    ),
    Rule(
        "GET",
        "/api/v1/popup-requests/<request_id>/messages",
        STAFF | {"resident"},
        _get("/api/v1/popup-requests/{w.popup_id}/messages"),
    ),
    Rule(
        "POST",
        "/api/v1/popup-requests/<request_id>/messages",
        STAFF | {"resident"},
        _post("/api/v1/popup-requests/{w.popup_id}/messages", {"body": "Hei"}),
    ),
    Rule("GET", "/api/v1/users/me", SIGNED_IN, _get("/api/v1/users/me")),
    Rule("POST", "/api/v1/users", frozenset({"admin"}), _new_user),
    Rule(
        "POST",
        "/api/v1/users/<user_id>/erase",
        frozenset({"admin"}),
        _post("/api/v1/users/{id}/erase", {}, World.person),
    ),
    # The person themself (here the booker) or an admin.
    Rule(
        "GET",
        "/api/v1/users/<user_id>/data",
        frozenset({"booker", "admin"}),
        _get("/api/v1/users/{w.booker_id}/data"),
    ),
    Rule(
        "POST",
        "/api/v1/organisations",
        STAFF,
        lambda w, _: ("POST", "/api/v1/organisations", {"name": f"Seura {uuid.uuid4().hex[:6]}"}),
    ),
    Rule("GET", "/api/v1/events", frozenset({"admin"}), _get("/api/v1/events")),
    Rule("POST", "/api/v1/feed-tokens", BOOKERS, _org_token),
    Rule("GET", "/api/v1/feed-tokens", SIGNED_IN, _get("/api/v1/feed-tokens")),
    # Someone else's token is not revealed: 404, as if there were none.
    Rule(
        "DELETE",
        "/api/v1/feed-tokens/<token_id>",
        frozenset({"booker", "admin"}),
        _revoke,
        denied_as=404,
    ),
    Rule("GET", "/api/v1/registry/free-premises", EVERYONE, _get("/api/v1/registry/free-premises")),
    Rule(
        "GET",
        "/api/v1/stats/usage",
        frozenset({"analyst", "staff", "admin"}),
        _get("/api/v1/stats/usage?{range}"),
    ),
    Rule(
        "GET",
        "/api/v1/stats/allocation",
        frozenset({"analyst", "staff", "admin"}),
        _get("/api/v1/stats/allocation?group_by=age_group"),
    ),
    # A published round's result is open data: no names of people in it.
    Rule("GET", _rounds("/<round_id>/result"), EVERYONE, _get(_rounds("/{w.published}/result"))),
    Rule("GET", "/feeds/premises/<premises_id>.ics", EVERYONE, _get("/feeds/premises/room.ics")),
    # The secret in the path is the credential; an Authorization header changes nothing.
    Rule(
        "GET",
        "/feeds/private/<token>.ics",
        EVERYONE,
        lambda w, _: ("GET", w.private_feed(), None),
    ),
    Rule(
        "POST",
        "/api/v1/allocation-rounds",
        STAFF,
        lambda w, _: ("POST", _rounds(""), round_body(premises=["gym", "court"])),
    ),
    Rule("GET", "/api/v1/allocation-rounds", EVERYONE, _get(_rounds(""))),
    Rule("GET", _rounds("/<round_id>"), EVERYONE, _get(_rounds("/{w.open_round}"))),
    # Another organisation's booker applies for their own organisation.
    Rule("POST", _rounds("/<round_id>/applications"), BOOKERS | {"booker2"}, _apply),
    # Signed-in users see their organisation's applications (maybe none).
    Rule(
        "GET",
        _rounds("/<round_id>/applications"),
        SIGNED_IN,
        _get(_rounds("/{w.open_round}/applications")),
    ),
    Rule(
        "GET",
        "/api/v1/applications/<application_id>",
        BOOKERS,
        lambda w, _: ("GET", f"/api/v1/applications/{w.open_application()}", None),
    ),
    Rule(
        "PATCH",
        "/api/v1/applications/<application_id>",
        BOOKERS,
        lambda w, _: (
            "PATCH",
            f"/api/v1/applications/{w.open_application()}",
            {"group_size": 22},
        ),
    ),
    Rule(
        "POST",
        "/api/v1/applications/<application_id>/withdraw",
        BOOKERS,
        _post("/api/v1/applications/{id}/withdraw", {}, World.open_application),
    ),
    Rule(
        "POST",
        _rounds("/<round_id>/proposal"),
        STAFF,
        _post(_rounds("/{w.allocating_round}/proposal"), {}),
    ),
    Rule(
        "GET",
        _rounds("/<round_id>/allocations"),
        STAFF,
        _get(_rounds("/{w.allocating_round}/allocations")),
    ),
    Rule("POST", _rounds("/<round_id>/allocations"), STAFF, _by_hand),
    Rule(
        "DELETE",
        _rounds("/<round_id>/allocations/<allocation_id>"),
        STAFF,
        lambda w, _: (
            "DELETE",
            _rounds(f"/{w.allocating_round}/allocations/{w.an_allocation()}"),
            None,
        ),
    ),
    Rule(
        "POST",
        _rounds("/<round_id>/publish"),
        STAFF,
        lambda w, role: ("POST", _rounds(f"/{w.round_to_publish(role)}/publish"), {}),
    ),
    Rule(
        "GET",
        "/api/v1/allocations/<allocation_id>",
        BOOKERS,
        lambda w, _: ("GET", f"/api/v1/allocations/{w.offers[0]}", None),
    ),
    Rule(
        "POST",
        "/api/v1/allocations/<allocation_id>/accept",
        BOOKERS,
        lambda w, role: ("POST", f"/api/v1/allocations/{w.offer(role)}/accept", {}),
    ),
    Rule(
        "POST",
        "/api/v1/allocations/<allocation_id>/decline",
        BOOKERS,
        lambda w, role: ("POST", f"/api/v1/allocations/{w.offer(role)}/decline", {"reason": "Ei"}),
    ),
    Rule("GET", "/healthz", EVERYONE, _get("/healthz")),
    Rule("GET", "/api/v1/openapi.json", EVERYONE, _get("/api/v1/openapi.json")),
    Rule("GET", "/api/v1/users/me/sessions", SIGNED_IN, _get("/api/v1/users/me/sessions")),
    Rule("DELETE", "/api/v1/users/me/sessions", SIGNED_IN, _delete("/api/v1/users/me/sessions")),
    # Only one's own sessions can be ended: anyone else's (or none) is not found.
    Rule(
        "DELETE",
        "/api/v1/users/me/sessions/<session_id>",
        frozenset(),
        _delete("/api/v1/users/me/sessions/someone-elses"),
        denied_as=404,
    ),
    Rule(
        "POST",
        "/api/v1/users/<user_id>/disable",
        frozenset({"admin"}),
        _post("/api/v1/users/{id}/disable", {}, World.person),
    ),
    Rule(
        "POST",
        "/api/v1/organisations/<organisation_id>/membership-requests",
        SIGNED_IN,
        lambda w, _: (
            "POST",
            f"/api/v1/organisations/{w.api.organisation('Uusi ry')}/membership-requests",
            {"message": "Jäsen"},
        ),
    ),
    Rule("GET", "/api/v1/membership-requests", STAFF, _get("/api/v1/membership-requests")),
    Rule(
        "POST",
        "/api/v1/membership-requests/<request_id>/approve",
        STAFF,
        _post("/api/v1/membership-requests/{id}/approve", {}, World.membership_request),
    ),
    Rule(
        "POST",
        "/api/v1/membership-requests/<request_id>/reject",
        STAFF,
        _post(
            "/api/v1/membership-requests/{id}/reject", {"reason": "Ei"}, World.membership_request
        ),
    ),
    Rule(
        "PUT",
        "/api/v1/organisations/<organisation_id>/contact",
        STAFF,
        lambda w, _: (
            "PUT",
            f"/api/v1/organisations/{w.api.organisation_id}/contact",
            {"user_id": w.booker_id},
        ),
    ),
    Rule(
        "POST",
        "/api/v1/organisations/<organisation_id>/retire",
        STAFF,
        lambda w, _: ("POST", f"/api/v1/organisations/{w.api.organisation('Vanha ry')}/retire", {}),
    ),
    Rule(
        "PUT",
        "/api/v1/users/<user_id>/role",
        frozenset({"admin"}),
        lambda w, _: ("PUT", f"/api/v1/users/{w.person()}/role", {"role": "staff"}),
    ),
    # Leaving is for organisations joined by request: none here, so not found for anyone.
    Rule(
        "DELETE",
        "/api/v1/users/me/organisations/<organisation_id>",
        frozenset(),
        _delete("/api/v1/users/me/organisations/{w.api.organisation_id}"),
        denied_as=404,
    ),
)


def _expected(rule: Rule, role: str | None) -> str:
    if role in rule.allowed:
        return "2xx"
    if rule.denied_as and role is not None:
        return str(rule.denied_as)
    return "401" if role is None else "403"


def _got(status: int) -> str:
    return "2xx" if 200 <= status < 300 else str(status)


def _head(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return head_position(conn)


def _api_rules(app: Flask) -> set[tuple[str, str]]:
    """Every endpoint of the API, the feeds and health (pages have their own tests)."""
    found = set()
    for url_rule in app.url_map.iter_rules():
        feed_or_health = url_rule.endpoint.startswith(("feeds.", "health."))
        if url_rule.rule.startswith("/api/") or feed_or_health:
            for method in url_rule.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    found.add((method, url_rule.rule))
    return found


def test_the_table_names_every_endpoint(app: Flask) -> None:
    """A new endpoint must be put in the table (rows for endpoints of API.md that are not
    served yet are skipped below, and named when the matrix is printed)."""
    listed = {(r.method, r.rule) for r in TABLE}
    assert len(listed) == len(TABLE)
    assert _api_rules(app) - listed == set()


def test_every_role_may_do_exactly_what_the_table_says(api: Api, clock: Any) -> None:
    world = World(api, clock)
    served = _api_rules(api.app)
    mismatches, matrix = [], []
    for rule in TABLE:
        if (rule.method, rule.rule) not in served:
            matrix.append(f"{rule.method:6} {rule.rule:48} (not served)")
            continue
        row = []
        for role in ROLES:
            method, path, body = rule.call(world, role)
            before = _head(api)
            response = api.client.open(path, method=method, json=body, headers=world.headers(role))
            got, wanted = _got(response.status_code), _expected(rule, role)
            row.append(got)
            if got != wanted:
                detail = response.get_data(as_text=True)[:200]
                mismatches.append(f"{method} {path} as {role}: {got}, wanted {wanted}: {detail}")
            elif wanted != "2xx":
                assert response.mimetype == "application/problem+json", (method, path)
                assert _head(api) == before, f"{method} {path} as {role} changed the log"
        matrix.append(f"{rule.method:6} {rule.rule:48} " + " ".join(f"{g:>4}" for g in row))
    print("\n" + " " * 56 + " ".join(f"{str(r)[:4]:>4}" for r in ROLES))
    print("\n".join(matrix))
    assert not mismatches, "\n".join(mismatches)
