"""Pop-up requests over HTTP: hold, approve, reject, withdraw, expire, and their threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from booking.domain.popups import ExpirePopups
from booking.outbox import outbox
from booking.service import run_premises_command
from events.sql import read_transaction, write_transaction
from events.store import Metadata, events_table
from tests.conftest import Api

HELSINKI = ZoneInfo("Europe/Helsinki")
POPUP_RULES = {"popup_allowed": True, "popup_max_duration_minutes": 180, "min_notice_minutes": 0}
ALWAYS_OPEN = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def soon(hours: int, length_minutes: int = 60) -> tuple[str, str]:
    """A slot starting `hours` from now, on the quarter hour, in Helsinki time."""
    start = (datetime.now(UTC) + timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    start = start.astimezone(HELSINKI)
    return start.isoformat(), (start + timedelta(minutes=length_minutes)).isoformat()


def ask(api: Api, premises_id: str = "room", hours: int = 30, role: str = "resident", **extra):
    start, end = soon(hours)
    body = {
        "premises_id": premises_id,
        "start": start,
        "end": end,
        "title": "Kirpputori",
        "description": "Soita Liisalle 040 123 4567",
        "expected_attendees": 10,
        **extra,
    }
    return api.post("/api/v1/popup-requests", body, role=role)


def event_count(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def test_a_pending_request_holds_its_slot_until_approved(api: Api) -> None:
    api.premises("room", rules=POPUP_RULES, opening_hours=ALWAYS_OPEN)
    asked = ask(api)
    assert asked.status_code == 201, asked.get_json()
    popup = asked.get_json()
    assert popup["status"] == "pending"
    assert popup["description"] == "Soita Liisalle 040 123 4567"
    deadline = datetime.fromisoformat(popup["decision_deadline"])
    created = datetime.fromisoformat(popup["created_at"])
    assert deadline - created == timedelta(hours=48) or deadline == datetime.fromisoformat(
        popup["start"]
    ) - timedelta(hours=1)

    # The hold keeps a booking out of the slot.
    clash = api.post(
        "/api/v1/bookings",
        {"premises_id": "room", "start": popup["start"], "end": popup["end"], "title": "Kerho"},
        role="booker",
    )
    assert clash.status_code == 409
    assert clash.get_json()["conflicts"][0]["kind"] == "hold"

    # Another resident cannot see it; staff can, and approve it into a booking.
    other = api.user("resident")
    assert (
        api.client.get(
            f"/api/v1/popup-requests/{popup['id']}", headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 403
    )
    approved = api.post(f"/api/v1/popup-requests/{popup['id']}/approve", role="staff")
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    booking_id = approved.get_json()["booking_id"]
    booking = api.get(f"/api/v1/bookings/{booking_id}", role="staff").get_json()
    assert booking["status"] == "confirmed" and booking["start"] == popup["start"]

    # The requester hears of it in their language; no one else does.
    with read_transaction(api.engine) as conn:
        subjects = [r.subject for r in conn.execute(select(outbox))]
    assert any(s.startswith("Pop-up hyväksytty") for s in subjects)
    assert not any(s.startswith("Varaus vahvistettu") for s in subjects)

    again = api.post(f"/api/v1/popup-requests/{popup['id']}/approve", role="staff")
    assert again.status_code == 409


def test_rules_of_pop_ups(api: Api) -> None:
    api.premises("room", rules=POPUP_RULES)
    api.premises("closed-to-popups", rules={"popup_allowed": False})
    assert ask(api, "closed-to-popups").status_code == 422
    too_long = api.post(
        "/api/v1/popup-requests",
        {"premises_id": "room", "start": soon(30)[0], "end": soon(30, 240)[1], "title": "x"},
        role="resident",
    )
    assert too_long.status_code == 422 and "end" in too_long.get_json()["errors"]
    far = ask(api, hours=24 * 31)
    assert far.status_code == 422 and "start" in far.get_json()["errors"]
    assert ask(api, role=None).status_code == 401


def test_reject_withdraw_and_threads(api: Api) -> None:
    api.premises("room", rules=POPUP_RULES, opening_hours=ALWAYS_OPEN)
    first = ask(api, hours=30).get_json()
    second = ask(api, hours=40).get_json()
    assert (
        api.post(
            f"/api/v1/popup-requests/{first['id']}/reject", {"reason": "Varattu"}, role="resident"
        ).status_code
        == 403
    )
    rejected = api.post(
        f"/api/v1/popup-requests/{first['id']}/reject", {"reason": "Remontti"}, role="staff"
    ).get_json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "Remontti"
    withdrawn = api.post(f"/api/v1/popup-requests/{second['id']}/withdraw", role="resident")
    assert withdrawn.get_json()["status"] == "withdrawn"
    # The slot is free again.
    assert ask(api, hours=40).status_code == 201

    posted = api.post(
        f"/api/v1/popup-requests/{first['id']}/messages",
        {"body": "Voisiko toisena päivänä?"},
        role="resident",
    )
    assert posted.status_code == 201
    reply = api.post(
        f"/api/v1/popup-requests/{first['id']}/messages", {"body": "Käy!"}, role="staff"
    )
    assert reply.status_code == 201
    thread = api.get(f"/api/v1/popup-requests/{first['id']}/messages", role="resident")
    assert [m["body"] for m in thread.get_json()["messages"]] == [
        "Voisiko toisena päivänä?",
        "Käy!",
    ]
    stranger = api.user("resident")
    assert (
        api.client.get(
            f"/api/v1/popup-requests/{first['id']}/messages",
            headers={"Authorization": f"Bearer {stranger}"},
        ).status_code
        == 403
    )


def test_decisions_and_withdrawal_honour_if_match(api: Api) -> None:
    # API.md: a write may send If-Match: "<version>" and gets 412 if it is stale.
    api.premises("room", rules=POPUP_RULES, opening_hours=ALWAYS_OPEN)
    first = ask(api, hours=30).get_json()
    second = ask(api, hours=40).get_json()
    third = ask(api, hours=50).get_json()
    for path, body, role in [
        (f"/api/v1/popup-requests/{first['id']}/approve", None, "staff"),
        (f"/api/v1/popup-requests/{second['id']}/reject", {"reason": "Remontti"}, "staff"),
        (f"/api/v1/popup-requests/{third['id']}/withdraw", None, "resident"),
    ]:
        before = event_count(api)
        stale = api.post(path, body, role=role, headers={"If-Match": '"2"'})
        assert stale.status_code == 412, path
        assert stale.mimetype == "application/problem+json"
        assert event_count(api) == before
        done = api.post(path, body, role=role, headers={"If-Match": '"1"'})
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["version"] == 2
    # Someone else's request is refused as such, whatever If-Match says.
    stranger = api.user("resident")
    other = api.client.post(
        f"/api/v1/popup-requests/{first['id']}/withdraw",
        headers={"Authorization": f"Bearer {stranger}", "If-Match": '"9"'},
    )
    assert other.status_code == 403


def test_expiry_releases_the_hold_once(api: Api) -> None:
    api.premises("room", rules=POPUP_RULES, opening_hours=ALWAYS_OPEN)
    popup = ask(api, hours=30).get_json()
    deadline = datetime.fromisoformat(popup["decision_deadline"])
    repo = api.app.extensions["tilavaraus"].premises
    with write_transaction(api.engine) as conn:
        early = run_premises_command(
            conn,
            repo,
            "room",
            ExpirePopups("room", deadline - timedelta(seconds=1)),
            Metadata(),
            now=datetime.now(UTC),
        )
    assert early == []
    before = event_count(api)
    for _ in range(2):  # a second run finds nothing to expire
        with write_transaction(api.engine) as conn:
            run_premises_command(
                conn,
                repo,
                "room",
                ExpirePopups("room", deadline),
                Metadata(),
                now=datetime.now(UTC),
            )
    assert event_count(api) == before + 1
    assert (
        api.get(f"/api/v1/popup-requests/{popup['id']}", role="resident").get_json()["status"]
        == "expired"
    )
    assert ask(api, hours=30).status_code == 201
