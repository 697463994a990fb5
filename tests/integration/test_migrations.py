"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, insert, select
from sqlalchemy.exc import IntegrityError

from booking.migrate import alembic_config, declared_metadata, upgrade
from projections.availability import busy_table, space_keys_table, spaces_table
from projections.catalogue import premises_table


def test_migrated_schema_equals_the_declared_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        differences = compare_metadata(context, declared_metadata())
    assert differences == []


def test_0008_gives_every_existing_premises_a_space_of_its_own(engine: Engine) -> None:
    """Issue 15: premises made before spaces each occupy one space named after them, and
    their busy rows lie on it (on PostgreSQL under the exclusion constraint per space)."""
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    old = MetaData()
    old.reflect(engine, only=["catalogue_premises", "availability_buffers", "availability_busy"])
    at = datetime(2026, 11, 20, 8, tzinfo=UTC)
    with engine.begin() as conn:
        for premises_id in ("sali", "huone"):
            conn.execute(insert(old.tables["catalogue_premises"]), _filled(old, premises_id))
            conn.execute(
                insert(old.tables["availability_buffers"]),
                {"premises_id": premises_id, "buffer_minutes": 0},
            )
            conn.execute(
                insert(old.tables["availability_busy"]),
                {
                    "premises_id": premises_id,
                    "ref_id": f"b-{premises_id}",
                    "kind": "booking",
                    "start": at,
                    "end": at + timedelta(hours=1),
                    "blocked_until": at + timedelta(hours=1),
                    "title": None,
                    "public": False,
                },
            )
    upgrade(engine)
    with engine.connect() as conn:
        spaces = dict(conn.execute(select(premises_table.c.id, premises_table.c.spaces)).all())
        assert spaces == {"sali": ["sali"], "huone": ["huone"]}
        assert sorted(conn.execute(select(spaces_table)).all()) == [
            ("huone", "huone"),
            ("sali", "sali"),
        ]
        busy = conn.execute(select(busy_table.c.premises_id, busy_table.c.space_id)).all()
        assert sorted(busy) == [("huone", "huone"), ("sali", "sali")]
    if engine.dialect.name == "postgresql":  # the constraint is per space now
        row = {
            "premises_id": "muu",
            "ref_id": "b-muu",
            "space_id": "sali",
            "space_key": _key_of(engine, "sali"),
            "kind": "booking",
            "start": at + timedelta(minutes=30),
            "end": at + timedelta(hours=2),
            "blocked_until": at + timedelta(hours=2),
            "title": None,
            "public": False,
        }
        with pytest.raises(IntegrityError, match="no_overlap"), engine.begin() as conn:
            conn.execute(insert(busy_table), row)


def _key_of(engine: Engine, space_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(space_keys_table.c.space_key).where(space_keys_table.c.space_id == space_id)
            ).scalar_one()
        )


def test_0013_keys_every_space_and_its_busy_rows_and_downgrades(engine: Engine) -> None:
    """Spaces of premises and spaces only busy rows of the past lie on get keys; every busy
    row its space's key; on PostgreSQL the exclusion constraint then compares keys, and a
    downgrade puts back the one on the text id, the rows kept."""
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
    old = MetaData()
    old.reflect(engine, only=["availability_spaces", "availability_busy"])
    spaces, busy = old.tables["availability_spaces"], old.tables["availability_busy"]
    at = datetime(2026, 11, 20, 8, tzinfo=UTC)
    row = {
        "kind": "booking",
        "start": at,
        "end": at + timedelta(hours=1),
        "blocked_until": at + timedelta(hours=1),
        "title": None,
        "public": False,
    }
    with engine.begin() as conn:
        conn.execute(insert(spaces), [{"premises_id": "sali", "space_id": s} for s in "ab"])
        conn.execute(
            insert(busy),
            [
                {**row, "premises_id": "sali", "ref_id": "x", "space_id": "a"},
                {**row, "premises_id": "sali", "ref_id": "x", "space_id": "b"},
                # A space the premises left long ago: its row of the past keeps a key too.
                {**row, "premises_id": "sali", "ref_id": "old", "space_id": "0-left"},
            ],
        )
    upgrade(engine)
    with engine.connect() as conn:
        keys = dict(conn.execute(select(space_keys_table)).all())
        assert keys == {"0-left": 1, "a": 2, "b": 3}
        rows = conn.execute(select(busy_table.c.space_id, busy_table.c.space_key)).all()
        assert sorted(rows) == [("0-left", 1), ("a", 2), ("b", 3)]
    if engine.dialect.name == "postgresql":
        later = {**row, "start": at + timedelta(minutes=30), "premises_id": "puoli"}
        with pytest.raises(IntegrityError, match="no_overlap"), engine.begin() as conn:
            conn.execute(
                insert(busy_table), {**later, "ref_id": "y", "space_id": "b", "space_key": 3}
            )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
    old = MetaData()
    old.reflect(engine, only=["availability_busy"])
    busy = old.tables["availability_busy"]
    assert "space_key" not in busy.c
    with engine.connect() as conn:
        assert len(conn.execute(select(busy)).all()) == 3
    if engine.dialect.name == "postgresql":  # the constraint on the text id is back
        later = {**row, "start": at + timedelta(minutes=30), "premises_id": "puoli"}
        with pytest.raises(IntegrityError, match="no_overlap"), engine.begin() as conn:
            conn.execute(insert(busy), {**later, "ref_id": "y", "space_id": "b"})
    upgrade(engine)


def _filled(old: MetaData, premises_id: str) -> dict[str, Any]:
    """A catalogue row of the schema before 0008: every required column given a value."""
    values: dict[str, Any] = {"id": premises_id}
    for column in old.tables["catalogue_premises"].columns:
        if column.name in values or column.nullable:
            continue
        try:
            kind = column.type.python_type
        except NotImplementedError:
            kind = dict
        values[column.name] = {
            bool: False,
            int: 1,
            str: "x",
            datetime: datetime(2026, 11, 1, tzinfo=UTC),
        }.get(kind, {})
    return values
