"""The `booking` command line (API.md) against real SQLite and PostgreSQL databases.

Most commands run in-process through click's CliRunner; the demo is loaded once per
database by the installed `booking` script in a subprocess (its stderr is then a pipe, not a
terminal, so its progress comes as plain lines), and each test that needs it gets a copy.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, Table, inspect, select, text
from sqlalchemy.engine import make_url

from booking.app import create_app
from booking.cli import main
from booking.clock import system_clock
from booking.migrate import alembic_config
from booking.progress import Progress
from booking.tables import organisations, users
from events.sql import make_engine, read_transaction
from events.store import head_position
from projections import rebuilding, runner
from projections.availability import buffers_table, busy_table
from projections.bookings import bookings_table
from projections.catalogue import premises_table
from tests.conftest import PostgresServer, at_test_time, fresh_database

ANCHOR = "2026-11-23"
DEMO_BOOKINGS = 300
PROGRESS_LINE = re.compile(r"^(\w+): (\d+)(?:/(\d+))? (…|done) \(([\d,]+) (\w+)/s\)$")


def cli(url: str, tmp_path: Path, *args: str) -> Result:
    env = {
        "BOOKING_DATABASE_URL": url,
        "BOOKING_INSTANCE_PATH": str(tmp_path / "instance"),
        "BOOKING_SECRET_KEY": "tests",
        "BOOKING_RUN_SCHEDULER": "0",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def last_line(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


def head(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return head_position(conn)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def table_checksum(
    engine: Engine, table: Table, rewrite: Callable[[dict[str, Any]], dict[str, Any]] = dict
) -> str:
    """SHA-256 of the table's rows, each in a database-neutral form, sorted."""
    with read_transaction(engine) as conn:
        rows = conn.execute(select(table)).mappings().all()
    plain = sorted(
        json.dumps({k: _plain(v) for k, v in rewrite(dict(row)).items()}, sort_keys=True)
        for row in rows
    )
    return hashlib.sha256("\n".join(plain).encode()).hexdigest()


# --- accounts ---------------------------------------------------------------------------


def test_create_organisation_prints_its_id_as_the_last_line(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    result = cli(
        database_url,
        tmp_path,
        "admin", "create-organisation", "--name", "Mikkelin Shakkikerho ry",
        "--type", "association", "--business-id", "1234567-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    organisation_id = last_line(result)
    assert str(uuid.UUID(organisation_id)) == organisation_id
    with read_transaction(engine) as conn:
        row = conn.execute(select(organisations).where(organisations.c.id == organisation_id)).one()
    assert (row.name, row.type, row.business_id) == (
        "Mikkelin Shakkikerho ry",
        "association",
        "1234567-1",
    )


def test_create_organisation_refuses_an_unknown_type_or_a_blank_name(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    unknown = cli(
        database_url, tmp_path, "admin", "create-organisation", "--name", "X", "--type", "club"
    )
    blank = cli(database_url, tmp_path, "admin", "create-organisation", "--name", "  ")
    assert unknown.exit_code == 2 and "club" in unknown.output
    assert blank.exit_code == 2 and "name" in blank.output
    with read_transaction(engine) as conn:
        assert conn.execute(select(organisations)).all() == []


def test_the_cli_refuses_what_the_api_refuses(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # API.md: POST /api/v1/users "creates a user like the CLI does"; the same goes for
    # organisations. A short password or a malformed business id is refused by both.
    business = cli(
        database_url, tmp_path, "admin", "create-organisation", "--name", "X", "--business-id", "1"
    )
    assert business.exit_code == 2 and "business_id" in business.output
    password = cli(
        database_url,
        tmp_path,
        "admin", "create-user", "--email", "a@example.fi", "--name", "A", "--role", "staff",
        "--password", "short",
    )  # fmt: skip
    assert password.exit_code == 2 and "password" in password.output
    with read_transaction(engine) as conn:
        assert conn.execute(select(organisations)).all() == []
        assert conn.execute(select(users)).all() == []


def test_create_user_prints_a_token_that_works_for_users_me(
    database_url: str, client: FlaskClient, tmp_path: Path
) -> None:
    organisation_id = last_line(
        cli(
            database_url,
            tmp_path,
            "admin",
            "create-organisation",
            "--name",
            "Otavan kyläyhdistys ry",
        )
    )
    result = cli(
        database_url,
        tmp_path,
        "admin", "create-user", "--email", "Sihteeri@Otava.example", "--name", "Aino Virtanen",
        "--role", "booker", "--organisation", organisation_id, "--password", "salasana-123",
        "--language", "en",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = last_line(result)
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.get_json()
    assert me.get_json() | {"id": None} == {
        "id": None,
        "email": "sihteeri@otava.example",
        "name": "Aino Virtanen",
        "role": "booker",
        "organisation_id": organisation_id,
        "language": "en",
        "organisations": [{"id": organisation_id, "name": "Otavan kyläyhdistys ry"}],
    }
    wrong = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401


def test_create_user_refuses_a_taken_email_or_an_unknown_organisation(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    def create(*extra: str) -> Result:
        return cli(
            database_url, tmp_path,
            "admin", "create-user", "--email", "staff@mikkeli.example", "--name", "Staff",
            *extra,
        )  # fmt: skip

    assert create("--role", "staff").exit_code == 0
    again = create("--role", "admin")
    orphan = create("--role", "booker", "--organisation", str(uuid.uuid4()))
    assert again.exit_code == 2 and "exists" in again.output
    assert orphan.exit_code == 2 and "organisation" in orphan.output
    with read_transaction(engine) as conn:
        assert [r.role for r in conn.execute(select(users))] == ["staff"]


# --- the schema ------------------------------------------------------------------------


def _revision(engine: Engine) -> str:
    with read_transaction(engine) as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_db_upgrade_is_idempotent(database_url: str, engine: Engine, tmp_path: Path) -> None:
    head_revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    tables = set(inspect(engine).get_table_names())
    for _ in range(2):
        result = cli(database_url, tmp_path, "db", "upgrade")
        assert result.exit_code == 0, result.output
        assert _revision(engine) == head_revision
        assert set(inspect(engine).get_table_names()) == tables


def test_db_upgrade_creates_a_new_sqlite_database_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "tilavaraus.sqlite"
    for _ in range(2):
        result = cli(f"sqlite:///{path}", tmp_path, "db", "upgrade")
        assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert {"events", "booking_list", "catalogue_premises"} <= set(
            inspect(engine).get_table_names()
        )
        assert head(engine) == 0
    finally:
        engine.dispose()


# --- the demo, loaded once per database by the installed script ------------------------


@dataclass
class LoadedDemo:
    kind: str
    url: str
    stdout: str
    stderr: str
    returncode: int


def _load_demo(url: str, tmp_path: Path) -> LoadedDemo:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "BOOKING_DATABASE_URL": url,
        "BOOKING_INSTANCE_PATH": str(tmp_path / "instance"),
        "BOOKING_SECRET_KEY": "tests",
        "BOOKING_RUN_SCHEDULER": "0",
    }
    script = Path(sys.executable).with_name("booking")
    args = ["demo", "load", "--bookings", str(DEMO_BOOKINGS), "--anchor", ANCHOR]
    done = subprocess.run(
        [str(script), *args],
        env=at_test_time(env),
        capture_output=True,
        text=True,
        timeout=900,  # the allocation rounds solve two proposals; CI machines are shared
        check=False,
    )
    kind = make_url(url).get_backend_name()
    return LoadedDemo(kind, url, done.stdout, done.stderr, done.returncode)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def loaded_demo(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> LoadedDemo:
    folder = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        path = folder / "demo.sqlite"
        shutil.copy(sqlite_template, path)
        return _load_demo(f"sqlite:///{path}", folder)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return _load_demo(server.fresh_database(), folder)


@pytest.fixture
def demo_url(
    loaded_demo: LoadedDemo, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A copy of the loaded demo database, for one test to change."""
    assert loaded_demo.returncode == 0, loaded_demo.stderr
    if loaded_demo.kind == "sqlite":
        source = Path(make_url(loaded_demo.url).database or "")
        copy = tmp_path / "copy.sqlite"
        shutil.copy(source, copy)
        yield f"sqlite:///{copy}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    source_name = make_url(loaded_demo.url).database
    name = f"{source_name}_copy_{uuid.uuid4().hex[:6]}"
    with server.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"'))
    server.created.append(name)
    url = make_url(loaded_demo.url).set(database=name).render_as_string(hide_password=False)
    yield url
    server.drop(url)


@pytest.fixture
def fresh_url(demo_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database of the same kind as `demo_url`."""
    kind = make_url(demo_url).get_backend_name()
    with fresh_database(kind, request, tmp_path / "fresh.sqlite") as url:
        yield url


@pytest.fixture
def demo_engine(demo_url: str) -> Iterator[Engine]:
    engine = make_engine(demo_url)
    yield engine
    engine.dispose()


def app_for(engine: Engine, tmp_path: Path) -> Flask:
    return create_app(
        {
            "ENGINE": engine,
            "BOOKING_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "SECRET_KEY": "tests",
            "BOOKING_INSTANCE_PATH": str(tmp_path),
            "BOOKING_RUN_SCHEDULER": False,
            "TESTING": True,
        }
    )


def test_demo_load_summarises_and_prints_working_demo_accounts(
    loaded_demo: LoadedDemo, demo_engine: Engine, tmp_path: Path
) -> None:
    assert loaded_demo.returncode == 0, loaded_demo.stderr
    summary = loaded_demo.stdout
    placed = int(re.search(r"bookings\s+([\d,]+) placed", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert placed >= DEMO_BOOKINGS
    assert re.search(r"premises\s+47 \(\d+ free of charge\) in 15 districts", summary)
    with read_transaction(demo_engine) as conn:
        live = conn.execute(select(bookings_table.c.id)).all()
    assert len(live) == placed  # refused attempts leave no row, every placed booking one
    assert f"log            {head(demo_engine):,} events" in summary
    tokens = {}
    for role in ("admin", "staff", "analyst", "booker"):
        line = next(x for x in summary.splitlines() if x.strip().startswith(role))
        _, email, password, token, *_ = line.split()
        assert (email, password) == (f"{role}@demo.mikkeli.fi", f"demo-{role}")
        tokens[role] = token
    client = app_for(demo_engine, tmp_path).test_client()
    for role, token in tokens.items():
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.get_json()["role"] == role


def test_demo_progress_is_plain_lines_with_counts_and_a_rate_when_not_a_tty(
    loaded_demo: LoadedDemo,
) -> None:
    assert loaded_demo.returncode == 0, loaded_demo.stderr
    assert "\r" not in loaded_demo.stderr  # no progress bar redrawing itself
    lines = [PROGRESS_LINE.match(line) for line in loaded_demo.stderr.splitlines()]
    assert lines and all(lines), loaded_demo.stderr
    final = lines[-1]
    assert final is not None
    label, count, total, word, rate, unit = final.groups()
    assert (label, word, unit) == ("demo", "done", "cmd")
    assert count == total and int(count) > DEMO_BOOKINGS
    assert int(rate.replace(",", "")) > 0


def test_demo_load_if_empty_does_nothing_and_without_it_refuses(
    demo_url: str, demo_engine: Engine, tmp_path: Path
) -> None:
    before = head(demo_engine)
    skipped = cli(demo_url, tmp_path, "demo", "load", "--bookings", "50", "--if-empty")
    assert skipped.exit_code == 0, skipped.output
    assert "not loaded" in skipped.stdout
    refused = cli(demo_url, tmp_path, "demo", "load", "--bookings", "50")
    assert refused.exit_code == 1
    assert "empty database" in refused.output
    assert head(demo_engine) == before


# --- projections -----------------------------------------------------------------------


def _contents(engine: Engine) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return {p.name: rebuilding.contents(conn, p) for p in runner.ALL}


def test_projections_status_shows_every_projection_and_a_rebuild_equals_the_live_tables(
    demo_url: str, demo_engine: Engine, tmp_path: Path
) -> None:
    position = head(demo_engine)
    status = cli(demo_url, tmp_path, "projections", "status")
    assert status.exit_code == 0, status.output
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()}
    assert set(rows) == {p.name for p in runner.ALL}
    for p in runner.INLINE:
        assert rows[p.name][1:] == ["inline", "position", str(position), "lag", "0"]

    # The asynchronous ones are live only once caught up.
    runner.catch_up(demo_engine, clock=system_clock)
    live = _contents(demo_engine)
    assert live["bookings"]["booking_list"], "the demo should have bookings"
    rebuilt = cli(demo_url, tmp_path, "projections", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.startswith(f"rebuilt {', '.join(p.name for p in runner.ALL)} from ")
    assert _contents(demo_engine) == live
    after = cli(demo_url, tmp_path, "projections", "status")
    assert all(line.endswith("lag 0") for line in after.stdout.splitlines())


# --- the log as JSON lines --------------------------------------------------------------

COMPARED = (busy_table, buffers_table, bookings_table, premises_table)


def test_export_then_import_into_a_fresh_database_gives_the_same_tables(
    demo_url: str, demo_engine: Engine, fresh_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "log.jsonl"
    position = head(demo_engine)
    exported = cli(demo_url, tmp_path, "events", "export", str(file))
    assert exported.exit_code == 0, exported.output
    assert last_line(exported) == f"exported {position} events to {file}"
    assert len(file.read_text(encoding="utf-8").splitlines()) == position

    imported = cli(fresh_url, tmp_path, "events", "import", str(file))
    assert imported.exit_code == 0, imported.output
    assert last_line(imported) == f"imported {position} events from {file}"
    fresh = make_engine(fresh_url)
    try:
        assert head(fresh) == position
        for table in COMPARED:
            assert table_checksum(fresh, table) == table_checksum(demo_engine, table), table.name
        again = cli(fresh_url, tmp_path, "events", "import", str(file))
        assert again.exit_code != 0
        assert "not empty" in again.output
        assert head(fresh) == position
    finally:
        fresh.dispose()


def test_import_refuses_a_file_that_is_not_an_export(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    file = tmp_path / "not-a-log.jsonl"
    file.write_text('{"position": 1, "stream": "x"}\nnot json\n', encoding="utf-8")
    result = cli(database_url, tmp_path, "events", "import", str(file))
    assert result.exit_code != 0
    assert "line 1" in result.output
    assert head(engine) == 0


def test_progress_without_a_terminal_prints_periodic_lines_with_counts_and_rate() -> None:
    stream = StringIO()
    with Progress("rebuild", 30, stream=stream, every_seconds=0, unit="ev") as progress:
        for _ in range(3):
            progress(10)
    lines = stream.getvalue().splitlines()
    matches = [PROGRESS_LINE.match(line) for line in lines]
    assert all(matches), lines
    counts = [(m.group(2), m.group(3), m.group(4)) for m in matches if m]
    assert counts == [("10", "30", "…"), ("20", "30", "…"), ("30", "30", "…"), ("30", "30", "done")]
