"""Test fixtures: real databases (SQLite and PostgreSQL), the real app, real HTTP.

Every test that takes `engine` (or `app`, `client`, `api`) runs once on SQLite and once on
PostgreSQL. PostgreSQL tests skip when no server answers — except under CI=true, where a
missing server is a failure. Each test gets a fresh database: a copy of a migrated SQLite
file, or a PostgreSQL database created from a migrated template.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from booking import accounts
from booking.app import create_app
from booking.migrate import upgrade
from events.sql import make_engine, write_transaction

POSTGRES_SERVER = os.environ.get(
    "TILAVARAUS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HELSINKI = ZoneInfo("Europe/Helsinki")
# Property tests assert properties, never how long an example took: Hypothesis' deadline and
# its too-slow check are time assertions, which a loaded machine fails at random. CI draws
# the same examples on every run (derandomized from each test's name), so a red CI is a
# property broken by the change, not a new draw; local runs keep exploring.
settings.register_profile(
    "tilavaraus",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
)
settings.load_profile("tilavaraus")
# Every test starts at this instant, a Wednesday morning in Helsinki, and time runs on from
# there: no test depends on the hour, weekday or date it is run at. `clock` moves it.
TEST_NOW = datetime(2026, 11, 18, 10, 0, tzinfo=HELSINKI)


def libfaketime() -> str | None:
    """The libfaketime that the PyPI package `libfaketime` builds. Debian's 0.9.10 answers
    CPython's time.sleep (clock_nanosleep on the monotonic clock) with EINVAL."""
    try:
        import libfaketime as package
    except ImportError:
        return None
    found = Path(package.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return str(found) if found.exists() else None


def at_test_time(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process (a real `booking serve`, the CLI) that runs at this test's
    time rather than the machine's: libfaketime, started at the pinned now, ticking on."""
    library = libfaketime()
    if library is None:
        message = "libfaketime (PyPI package libfaketime) keeps child processes at the test's time"
        if IN_CI:
            pytest.fail(message + " (CI=true: it must be installed)")
        pytest.skip(message)
    return {
        **env,
        "LD_PRELOAD": library,
        "FAKETIME": datetime.now(UTC).strftime("@%Y-%m-%d %H:%M:%S"),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts and sleeps keep real durations
        "TZ": "UTC",  # how libfaketime reads FAKETIME
    }


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Passwords the tests set are hashed with the cheapest Argon2 settings: the defaults
    (RFC 9106's low-memory profile, 64 MiB) took 0.7 s a user on a busy 2-core machine, a
    third of the suite's time. Verification reads the settings from the hash, so nothing
    else changes; child processes (a real `booking serve`, the CLI) keep the defaults."""
    original = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    yield
    accounts._hasher = original


@pytest.fixture(scope="session", autouse=True)
def _session_clock() -> Iterator[None]:
    """Session-wide fixtures (the browser tests' site) are made at TEST_NOW as well."""
    with time_machine.travel(TEST_NOW, tick=True):
        yield


@pytest.fixture(autouse=True)
def clock(_session_clock: None) -> Iterator[time_machine.Coordinates]:
    """The time every test runs at (see TEST_NOW); `clock.move_to(…)` or `clock.shift(…)`."""
    with time_machine.travel(TEST_NOW, tick=True) as traveller:
        yield traveller


def _admin_engine() -> Engine:
    return create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _database_url(name: str) -> str:
    return make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)


class PostgresServer:
    """Creates one migrated template per test session and a fresh database per test."""

    def __init__(self, worker: str) -> None:
        self.admin = _admin_engine()
        self.prefix = f"tilavaraus_test_{worker}_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []
        self._create(self.template, template="template0")
        engine = make_engine(_database_url(self.template), poolclass=None)
        upgrade(engine)
        engine.dispose()

    def _create(self, name: str, template: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.created.append(name)

    def fresh_database(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        self._create(name, self.template)
        return _database_url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in reversed(self.created):
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_server(worker_id: str) -> Iterator[PostgresServer]:
    try:
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect means: no server here
        message = f"PostgreSQL not reachable at {POSTGRES_SERVER}: {error}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must not skip)")
        pytest.skip(message)
    server = PostgresServer(worker_id)
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    return str(worker)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    with fresh_database(request.param, request, tmp_path / "tilavaraus.sqlite") as url:
        yield url


@contextmanager
def fresh_database(kind: str, request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[str]:
    """A migrated, empty database of `kind` ("sqlite" at `sqlite_path`, or "postgresql")."""
    if kind == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), sqlite_path)
        yield f"sqlite:///{sqlite_path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    yield url
    server.drop(url)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database only (for tests that are about PostgreSQL itself)."""
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> Flask:
    return create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": str(engine.url),
            "SECRET_KEY": "tests",
            "BOOKING_TIMEZONE": "Europe/Helsinki",
            "BOOKING_INSTANCE_PATH": str(tmp_path),
            "BOOKING_RUN_SCHEDULER": False,
            "TESTING": True,
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Api:
    """A small client for tests: tokens per role and helpers to set up premises."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.engine: Engine = app.extensions["tilavaraus"].engine
        self._tokens: dict[str, str] = {}
        self.organisation_id = self.organisation("Mikkelin Shakkikerho ry")
        self.other_organisation_id = self.organisation("Kalevankankaan Kyläyhdistys ry")

    def organisation(self, name: str, type_: str = "association") -> str:
        with write_transaction(self.engine) as conn:
            return accounts.create_organisation(conn, name, type_, None, None)

    def user(self, role: str, organisation_id: str | None = None, email: str | None = None) -> str:
        """A new user's token."""
        with write_transaction(self.engine) as conn:
            created = accounts.create_user(
                conn,
                email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.fi",
                name=f"Test {role}",
                role=role,
                organisation_id=organisation_id,
                password="salasana-123",
                vault=self.app.extensions["tilavaraus"].vault,
            )
        return created.token

    def token(self, role: str) -> str:
        """One token per role; bookers belong to `organisation_id`."""
        if role not in self._tokens:
            org = self.organisation_id if role == "booker" else None
            self._tokens[role] = self.user(role, org)
        return self._tokens[role]

    def headers(self, role: str | None, **extra: str) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.token(role)}"} if role else {}
        return {**found, **extra}

    def get(self, path: str, role: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(role, **kw.pop("headers", {})), **kw)

    def post(self, path: str, json: Any = None, role: str | None = None, **kw: Any) -> Any:
        headers = self.headers(role, **kw.pop("headers", {}))
        return self.client.post(path, json=json, headers=headers, **kw)

    def patch(self, path: str, json: Any = None, role: str | None = None, **kw: Any) -> Any:
        headers = self.headers(role, **kw.pop("headers", {}))
        return self.client.patch(path, json=json, headers=headers, **kw)

    def premises(self, premises_id: str = "room", **overrides: Any) -> dict[str, Any]:
        body = premises_body(premises_id, **overrides)
        response = self.post("/api/v1/premises", body, role="staff")
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    def book(self, premises_id: str, start: datetime, end: datetime, **overrides: Any) -> Any:
        body = {
            "premises_id": premises_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "title": "Kerhoilta",
            "attendees": 5,
            **overrides,
        }
        role = body.pop("role", "booker")
        return self.post("/api/v1/bookings", body, role=role)


def premises_body(premises_id: str = "room", **overrides: Any) -> dict[str, Any]:
    every_day = {d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    body: dict[str, Any] = {
        "id": premises_id,
        "name": {"fi": "Kokoushuone 2", "en": "Meeting room 2"},
        "description": {"fi": "Kirjaston kokoushuone", "en": "A library meeting room"},
        "address": "Raatihuoneenkatu 6, 50100 Mikkeli",
        "district": "keskusta",
        "capacity": 12,
        "free_of_charge": True,
        "accessibility": ["step_free_access", "induction_loop"],
        "equipment": ["projector", "whiteboard"],
        "opening_hours": every_day,
        "rules": {"min_notice_minutes": 0, "max_advance_days": 365},
    }
    rules = overrides.pop("rules", {})
    body.update(overrides)
    body["rules"] = {**body["rules"], **rules}
    return body


@pytest.fixture
def api(app: Flask, client: FlaskClient) -> Api:
    return Api(app, client)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    """An aware Helsinki wall-clock time."""
    return datetime.combine(day, time(hh, mm), tzinfo=HELSINKI)


def future_weekday(weekday: int, weeks_ahead: int = 2) -> date:
    """A date `weeks_ahead` weeks from now that falls on `weekday` (0 = Monday)."""
    today = datetime.now(UTC).astimezone(HELSINKI).date()
    start = today + timedelta(weeks=weeks_ahead)
    return start + timedelta(days=(weekday - start.weekday()) % 7)


# pytest-xdist (-n 2): most tests go one at a time to whichever worker is free. The tests
# that share a slow module-scoped fixture go to one worker together, so that it is made once
# per run rather than once on each worker that gets one of them: a browser module's served
# site, test_demo's loads, and test_cli's load per database. Those units are handed out
# first (the largest first), so no long one is left for the end while a core idles.
# (xdist_group marks would say this, but pytest-xdist 3.8's --dist loadgroup renames items
# through an attribute pytest 9 no longer reads: it silently groups nothing.)
SHARED_SET_UP = ("tests/browser/", "tests/integration/test_demo.py")
PER_DATABASE_SET_UP = ("tests/integration/test_cli.py",)


def work_unit(nodeid: str) -> str:
    """The unit of work that the test `nodeid` is scheduled in."""
    path, _, name = nodeid.partition("::")
    if path.startswith(PER_DATABASE_SET_UP):
        kind = next((k for k in ("sqlite", "postgresql") if f"[{k}" in name), "")
        return f"{path}[{kind}]"
    if path.startswith(SHARED_SET_UP):
        return path
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "load":  # an explicit --dist other than the default
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reaches the PostgreSQL server carries the `postgres` mark, however it
    gets there (the `database` parameter or `postgres_url` directly), so `-m` selects exactly."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
