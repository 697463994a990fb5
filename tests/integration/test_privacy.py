"""Personal data end to end (DESIGN.md invariant 5), on SQLite and PostgreSQL: a person's
e-mail, name and a phone number in their booking notes and messages never sit in the log in
clear, and after POST /api/v1/users/{id}/erase they are nowhere in the database at all —
the raw SQLite file (and its WAL) and a pg_dump are searched byte by byte — while the
person's bookings still count in the statistics."""

from __future__ import annotations

import glob
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, text

from booking.cli import main
from booking.clock import system_clock
from booking.jobs import Jobs
from booking.logio import export_events
from booking.outbox import outbox
from booking.privacy import person_keys
from booking.progress import Progress
from booking.service import PremisesRepository
from booking.tables import users
from events.sql import read_transaction, write_transaction
from events.store import head_position
from projections import runner
from tests.conftest import Api, future_weekday, local
from tests.integration.test_pages_helpers import post_form

# ASCII on purpose: the same bytes whatever the encoding (JSON escapes, UTF-8, SQL dumps).
EMAIL = "hilja.zyxwvutsson-7q4k@esimerkki.fi"
NAME = "Hilja Zyxwvutsson"
PHONE = "040 918 2736"
SECRETS = (EMAIL, NAME, PHONE)


def _person(api: Api) -> tuple[str, str]:
    """The distinctive booker, created by an admin (with an Idempotency-Key, so that the
    stored response holds the address too): (user id, token)."""
    created = api.post(
        "/api/v1/users",
        {
            "email": EMAIL,
            "name": NAME,
            "role": "booker",
            "organisation_id": api.organisation_id,
            "password": "salasana-123",
        },
        role="admin",
        headers={"Idempotency-Key": "new-person-1"},
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["email"], body["name"]) == (EMAIL, NAME)
    return body["id"], body["token"]


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _history(api: Api, token: str) -> dict[str, Any]:
    """A booking with notes holding the phone number, a message and a pop-up request."""
    api.premises("room", rules={"popup_allowed": True, "popup_auto_approve": False})
    day = future_weekday(2)
    placed = api.client.post(
        "/api/v1/bookings",
        json={
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 12).isoformat(),
            "title": "Kerhoilta",
            "attendees": 6,
            "notes": f"Avain: soita {PHONE}",
        },
        headers={**_as(token), "Idempotency-Key": "booking-1"},
    )
    assert placed.status_code == 201, placed.get_json()
    booking = placed.get_json()
    assert booking["notes"] == f"Avain: soita {PHONE}"
    message = api.client.post(
        f"/api/v1/bookings/{booking['id']}/messages",
        json={"body": f"Tavoitatte minut numerosta {PHONE}"},
        headers=_as(token),
    )
    assert message.status_code == 201, message.get_json()
    tomorrow = future_weekday(3, weeks_ahead=0)
    popup = api.client.post(
        "/api/v1/popup-requests",
        json={
            "premises_id": "room",
            "start": local(tomorrow, 14).isoformat(),
            "end": local(tomorrow, 15).isoformat(),
            "title": "Kirpputori",
            "description": f"Kysy {NAME}, {PHONE}",
        },
        headers=_as(token),
    )
    assert popup.status_code == 201, popup.get_json()
    return booking


def _found_in(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob]


def _database_bytes(engine: Engine, tmp_path: Path) -> bytes:
    """Everything the database holds on disk: the SQLite file and its WAL after a
    checkpoint, or a pg_dump of the PostgreSQL database."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(str(engine.url.database))
        wal = Path(f"{path}-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    if not found:
        pytest.fail("pg_dump is not installed beside the PostgreSQL server")
    url = engine.url
    dump = tmp_path / "dump.sql"
    subprocess.run(
        [
            found[-1],
            "--host",
            str(url.host),
            "--port",
            str(url.port or 5432),
            "--username",
            str(url.username),
            "--file",
            str(dump),
            str(url.database),
        ],
        check=True,
        timeout=120,
    )
    return dump.read_bytes()


def test_an_erased_person_is_nowhere_in_the_database_and_never_was_in_the_log(
    api: Api, tmp_path: Path
) -> None:
    user_id, token = _person(api)
    _history(api, token)
    with read_transaction(api.engine) as conn:
        log_rows = conn.execute(text("SELECT stream, type, data, metadata FROM events")).all()
        stored_users = conn.execute(select(users.c.email, users.c.name)).all()
        wrapped = conn.execute(
            select(person_keys.c.wrapped_key).where(person_keys.c.person_id == user_id)
        ).scalar_one()
    log_text = "\n".join(json.dumps([str(c) for c in row]) for row in log_rows)
    assert "BookingPlaced" in log_text and "MessagePosted" in log_text
    assert _found_in(log_text.encode()) == []
    assert all(email.startswith("pd1.") for email, _ in stored_users)
    # The log API strips personal fields anyway; what is left holds nothing personal.
    events = api.get("/api/v1/events?limit=1000", role="admin")
    assert events.status_code == 200
    assert _found_in(events.data) == []

    erased = api.post(f"/api/v1/users/{user_id}/erase", role="admin")
    assert erased.status_code == 200, erased.get_json()
    body = erased.get_json()
    assert (body["id"], body["erased"]) == (user_id, True)
    again = api.post(f"/api/v1/users/{user_id}/erase", role="admin")
    assert again.status_code == 200 and again.get_json() == body  # idempotent

    on_disk = _database_bytes(api.engine, tmp_path)
    assert len(on_disk) > 10_000  # a real database image, not an empty file
    assert b"Kerhoilta" in on_disk  # the booking itself stays
    assert _found_in(on_disk) == []
    assert wrapped.encode() not in on_disk  # the deleted key left no copy behind


def test_after_erasure_everything_of_theirs_reads_as_nothing(api: Api, tmp_path: Path) -> None:
    user_id, token = _person(api)
    booking = _history(api, token)
    staff_feed = api.post("/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff")
    feed_path = str(staff_feed.get_json()["url"]).removeprefix("http://localhost")
    assert NAME in api.client.get(feed_path).get_data(as_text=True).replace("\r\n ", "")
    jobs = Jobs(api.engine, PremisesRepository(), api.app.extensions["tilavaraus"].vault, None)
    with read_transaction(api.engine) as conn:
        assert jobs.address_of(conn, user_id) == EMAIL
        assert conn.execute(select(outbox).where(outbox.c.recipient_id == user_id)).all()
    assert api.get("/api/v1/users/me", headers=_as(token)).get_json()["email"] == EMAIL
    api.token("analyst")  # a new user is an event too: before the catch-up
    runner.catch_up(api.engine, clock=system_clock)
    day = local(future_weekday(2), 10).date().isoformat()
    usage = f"/api/v1/stats/usage?from={day}&to={day}&group_by=premises"
    counted = api.get(usage, role="analyst").get_json()["rows"][0]["bookings"]
    assert counted == 1

    assert api.post(f"/api/v1/users/{user_id}/erase", role="admin").status_code == 200

    # Their token and password no longer work; they cannot sign up into the old account.
    assert api.get("/api/v1/users/me", headers=_as(token)).status_code == 401
    login = {"email": EMAIL, "password": "salasana-123"}
    assert post_form(api.app.test_client(), "/login", login).status_code == 422
    # Staff still see the booking, without the notes, the message text or the description.
    seen = api.get(f"/api/v1/bookings/{booking['id']}", role="staff").get_json()
    assert seen["status"] == "confirmed" and seen["notes"] is None
    thread = api.get(f"/api/v1/bookings/{booking['id']}/messages", role="staff").get_json()
    assert [m["body"] for m in thread["messages"]] == [None]
    popups = api.get("/api/v1/popup-requests", role="staff").get_json()["popup_requests"]
    assert [p["description"] for p in popups] == [None]
    # The stored Idempotency-Key responses were scrubbed: a replay shows nothing personal.
    replay = api.post(
        "/api/v1/users",
        {
            "email": EMAIL,
            "name": NAME,
            "role": "booker",
            "organisation_id": api.organisation_id,
            "password": "salasana-123",
        },
        role="admin",
        headers={"Idempotency-Key": "new-person-1"},
    )
    assert replay.status_code == 201 and replay.get_json()["id"] == user_id
    assert replay.get_json()["email"] is None and replay.get_json()["name"] is None
    # Feeds, mail, the admin's view of their data: nothing readable.
    feed = api.client.get(feed_path).get_data(as_text=True).replace("\r\n ", "")
    assert "Kerhoilta" in feed and _found_in(feed.encode()) == []
    with read_transaction(api.engine) as conn:
        assert jobs.address_of(conn, user_id) is None
        pending = select(outbox).where(outbox.c.recipient_id == user_id, outbox.c.sent_at.is_(None))
        assert conn.execute(pending).all() == []
    data = api.get(f"/api/v1/users/{user_id}/data", role="admin").get_json()
    assert data["account"]["email"] is None and data["account"]["name"] is None
    assert data["account"]["erased_at"].endswith("Z")
    assert [b["notes"] for b in data["bookings"]] == [None]
    assert _found_in(json.dumps(data).encode()) == []
    # The booking still counts: statistics carry no personal data and lose nothing.
    runner.catch_up(api.engine, clock=system_clock)
    assert api.get(usage, role="analyst").get_json()["rows"][0]["bookings"] == counted
    # `booking events export` writes envelopes only (opened by nothing once the key is gone).
    exported = tmp_path / "log.jsonl"
    url = api.engine.url.render_as_string(hide_password=False)
    env = {"BOOKING_DATABASE_URL": url, "BOOKING_SECRET_KEY": "tests"}
    env["BOOKING_INSTANCE_PATH"] = str(tmp_path)
    done = CliRunner().invoke(main, ["events", "export", str(exported)], env=env)
    assert done.exit_code == 0, done.output
    lines = exported.read_text(encoding="utf-8")
    assert "BookingPlaced" in lines and '"notes": "pd1.' in lines.replace('":"', '": "')
    assert _found_in(lines.encode()) == []


def test_data_export_holds_everything_for_the_person_or_an_admin(api: Api) -> None:
    user_id, token = _person(api)
    booking = _history(api, token)
    mine = api.get(f"/api/v1/users/{user_id}/data", headers=_as(token))
    assert mine.status_code == 200, mine.get_json()
    data = mine.get_json()
    account = data["account"]
    assert (account["email"], account["name"], account["role"]) == (EMAIL, NAME, "booker")
    assert account["organisation_id"] == api.organisation_id
    assert account["organisation_name"] == "Mikkelin Shakkikerho ry"
    assert account["language"] == "fi" and account["erased_at"] is None
    assert [(b["id"], b["notes"]) for b in data["bookings"]] == [
        (booking["id"], f"Avain: soita {PHONE}")
    ]
    assert [m["body"] for m in data["messages"]] == [f"Tavoitatte minut numerosta {PHONE}"]
    assert data["messages"][0]["thread_id"] == booking["id"]
    assert [p["description"] for p in data["popup_requests"]] == [f"Kysy {NAME}, {PHONE}"]
    assert len(data["api_tokens"]) == 1 and data["api_tokens"][0]["revoked_at"] is None
    assert {m["subject"].split(":")[0] for m in data["outbox"]} >= {"Varaus vahvistettu"}
    feed = api.client.post(
        "/api/v1/feed-tokens",
        json={"scope": {"organisation": api.organisation_id}},
        headers=_as(token),
    ).get_json()
    tokens = api.get(f"/api/v1/users/{user_id}/data", role="admin").get_json()["feed_tokens"]
    assert tokens == [
        {
            "id": feed["id"],
            "scope": {"organisation": api.organisation_id},
            "created_at": tokens[0]["created_at"],
            "revoked_at": None,
        }
    ]
    assert feed["url"].split("/")[-1].removesuffix(".ics") not in json.dumps(tokens)
    # API.md: instants that belong to no premises are in UTC, written with `Z` (a booking's
    # and a pop-up request's are in their premises' offset).
    data = api.get(f"/api/v1/users/{user_id}/data", role="admin").get_json()
    utc = [
        (part, key, value)
        for part, found in data.items()
        if part not in ("bookings", "popup_requests")
        for item in (found if isinstance(found, list) else [found])
        for key, value in item.items()
        if key.endswith("_at") and value is not None
    ]
    assert {part for part, _, _ in utc} >= {"account", "messages", "feed_tokens", "api_tokens"}
    assert [found for found in utc if not found[2].endswith("Z")] == []

    # Someone else's data: only an admin; an unknown person: 404 for an admin.
    assert api.get(f"/api/v1/users/{user_id}/data", role="booker").status_code == 403
    assert api.get(f"/api/v1/users/{user_id}/data", role="staff").status_code == 403
    assert api.get(f"/api/v1/users/{user_id}/data").status_code == 401
    assert api.get("/api/v1/users/nobody/data", role="admin").status_code == 404


def test_erase_is_for_admins_and_refuses_what_it_cannot_do(api: Api) -> None:
    user_id, token = _person(api)
    for role in ("staff", "booker"):
        api.token(role)  # a new user is an event too: before reading the head
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    for role, status in (("staff", 403), ("booker", 403), (None, 401)):
        refused = api.post(f"/api/v1/users/{user_id}/erase", role=role)
        assert refused.status_code == status
        assert refused.mimetype == "application/problem+json"
    assert api.post("/api/v1/users/nobody/erase", role="admin").status_code == 404
    admin_id = api.get("/api/v1/users/me", role="admin").get_json()["id"]
    assert api.post(f"/api/v1/users/{admin_id}/erase", role="admin").status_code == 409
    with read_transaction(api.engine) as conn:
        assert head_position(conn) == head
        assert conn.execute(select(users.c.erased_at)).scalars().all() == [None] * 4
    assert api.get("/api/v1/users/me", headers=_as(token)).status_code == 200


def test_an_erased_address_can_sign_up_afresh_as_a_new_person(api: Api) -> None:
    user_id, _ = _person(api)
    assert api.post(f"/api/v1/users/{user_id}/erase", role="admin").status_code == 200
    again = api.post(
        "/api/v1/users", {"email": EMAIL, "name": NAME, "role": "resident"}, role="admin"
    )
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["id"] != user_id and again.get_json()["email"] == EMAIL
    taken = api.post("/api/v1/users", {"email": EMAIL, "name": "X", "role": "resident"}, "admin")
    assert taken.status_code == 409


def test_sign_in_and_pages_open_the_sealed_name(api: Api) -> None:
    _person(api)
    client = api.app.test_client()
    login = {"email": EMAIL.upper(), "password": "salasana-123"}
    assert post_form(client, "/login", login).status_code == 303
    assert NAME in client.get("/my").get_data(as_text=True)


def test_export_of_the_log_before_erasure_holds_envelopes_only(api: Api) -> None:
    _, token = _person(api)
    _history(api, token)
    out = io.StringIO()
    with Progress("export", stream=io.StringIO()) as progress:
        export_events(api.engine, out, progress)
    assert "pd1." in out.getvalue() and _found_in(out.getvalue().encode()) == []


def test_migration_seals_users_that_were_in_clear(engine: Engine) -> None:
    """0005 on a database with users from before it: their addresses and names are sealed
    with the deployment's secret, and they can still be found by e-mail."""
    from alembic import command

    from booking.accounts import user_by_password, user_id_by_email
    from booking.migrate import alembic_config
    from booking.privacy import Vault

    config = alembic_config(engine)
    config.attributes["secret_key"] = "migration-secret"
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    with write_transaction(engine) as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, name, role, language, created_at) VALUES "
                "('u1', :email, :name, 'resident', 'fi', CURRENT_TIMESTAMP)"
            ),
            {"email": EMAIL, "name": NAME},
        )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    vault = Vault("migration-secret")
    with read_transaction(engine) as conn:
        row = conn.execute(select(users)).one()
        assert row.email.startswith("pd1.u1.") and row.name.startswith("pd1.u1.")
        assert vault.reader(conn).open(row.email) == EMAIL
        assert user_id_by_email(conn, EMAIL.upper(), vault) == "u1"
        assert user_by_password(conn, EMAIL, "x", vault) is None  # no password: no sign-in
