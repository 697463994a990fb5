"""The premises catalogue as a table: what lists, filters and the registry read."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Boolean, Column, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Connection

from events.catalog import PremisesRegistered, PremisesRetired, PremisesUpdated
from events.sql import JSONDocument, UTCDateTime
from events.store import RecordedEvent
from projections.base import Projection, handles, metadata

premises_table = Table(
    "catalogue_premises",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", JSONDocument, nullable=False),
    Column("description", JSONDocument, nullable=False),
    Column("address", String(300), nullable=False),
    Column("district", String(100), nullable=False, index=True),
    Column("capacity", Integer, nullable=False),
    Column("free_of_charge", Boolean, nullable=False),
    Column("hourly_price_cents", Integer),
    Column("free_use_conditions", JSONDocument, nullable=False),
    Column("accessibility", JSONDocument, nullable=False),
    Column("equipment", JSONDocument, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("opening_hours", JSONDocument, nullable=False),
    Column("rules", JSONDocument, nullable=False),
    Column("spaces", JSONDocument, nullable=False),  # the space ids it occupies
    Column("retired", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

PROFILE_FIELDS = (
    "name",
    "description",
    "address",
    "district",
    "capacity",
    "free_of_charge",
    "hourly_price_cents",
    "free_use_conditions",
    "accessibility",
    "equipment",
    "timezone",
    "opening_hours",
    "rules",
    "spaces",
)


def search_text(row: dict[str, Any]) -> str:
    parts = [row["id"], row["address"], row["district"]]
    for key in ("name", "description"):
        # By language, not by dict order: JSONB hands keys back in its own order, so a
        # rebuild on PostgreSQL would otherwise differ from the live row.
        parts += [v for _, v in sorted((row[key] or {}).items()) if v]
    return " ".join(parts).casefold()


class Catalogue(Projection):
    name = "catalogue"
    tables = (premises_table,)
    inline = True

    @handles(PremisesRegistered)
    def registered(self, conn: Connection, e: PremisesRegistered, rec: RecordedEvent) -> None:
        row = {k: v for k, v in asdict(e).items() if k in PROFILE_FIELDS}
        row["spaces"] = e.spaces or [e.premises_id]
        row.update(id=e.premises_id, retired=False, version=1, updated_at=rec.recorded_at)
        row["search_text"] = search_text(row)
        conn.execute(insert(premises_table).values(row))

    @handles(PremisesUpdated)
    def updated(self, conn: Connection, e: PremisesUpdated, rec: RecordedEvent) -> None:
        t = premises_table
        current = conn.execute(select(t).where(t.c.id == e.premises_id)).mappings().one()
        row = dict(current)
        changes = dict(e.changes)
        if "rules" in changes:
            changes["rules"] = {**row["rules"], **changes["rules"]}
        row.update({k: v for k, v in changes.items() if k in PROFILE_FIELDS})
        row.update(version=current["version"] + 1, updated_at=rec.recorded_at)
        row["search_text"] = search_text(row)
        conn.execute(update(t).where(t.c.id == e.premises_id).values(row))

    @handles(PremisesRetired)
    def retired(self, conn: Connection, e: PremisesRetired, rec: RecordedEvent) -> None:
        t = premises_table
        conn.execute(
            update(t)
            .where(t.c.id == e.premises_id)
            .values(retired=True, version=t.c.version + 1, updated_at=rec.recorded_at)
        )
