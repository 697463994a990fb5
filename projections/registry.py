"""The register of free-of-charge premises (open data): one row per premises ever registered.

A row is listed while the premises is free of charge and not retired; an update that makes
it paid (or free again) moves it out of (or back into) the list, so every premises keeps its
row. What is busy when is not kept here: the next free hour depends on the moment of asking
and is worked out from the inline availability table by the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from events.sql import JSONDocument
from events.store import RecordedEvent
from projections.batching import BatchProjection, data_of, upsert_replacing

FIELDS = (
    "name",
    "address",
    "district",
    "capacity",
    "free_of_charge",
    "free_use_conditions",
    "accessibility",
    "equipment",
    "timezone",
    "opening_hours",
)


def define(metadata: MetaData, suffix: str) -> tuple[Table, ...]:
    premises = Table(
        f"registry_premises{suffix}",
        metadata,
        Column("premises_id", String(100), primary_key=True),
        Column("name", JSONDocument, nullable=False),
        Column("address", String(300), nullable=False),
        Column("district", String(100), nullable=False),
        Column("capacity", Integer, nullable=False),
        Column("free_of_charge", Boolean, nullable=False),
        Column("free_use_conditions", JSONDocument, nullable=False),
        Column("accessibility", JSONDocument, nullable=False),
        Column("equipment", JSONDocument, nullable=False),
        Column("timezone", String(64), nullable=False),
        Column("opening_hours", JSONDocument, nullable=False),
        Column("retired", Boolean, nullable=False),
    )
    return (premises,)


class Registry(BatchProjection):
    name = "registry"
    event_types = frozenset({"PremisesRegistered", "PremisesUpdated", "PremisesRetired"})
    define = staticmethod(define)

    def apply_batch(self, conn: Connection, batch: Sequence[RecordedEvent]) -> None:
        (table,) = self.tables
        ids = {r.data["premises_id"] for r in batch}
        rows: dict[str, dict[str, Any]] = {
            row["premises_id"]: dict(row)
            for row in conn.execute(select(table).where(table.c.premises_id.in_(ids))).mappings()
        }
        touched: set[str] = set()
        for recorded in batch:
            data = data_of(recorded)
            premises_id = data["premises_id"]
            if recorded.type == "PremisesRegistered":
                rows[premises_id] = {
                    "premises_id": premises_id,
                    **{k: data[k] for k in FIELDS},
                    "retired": False,
                }
            elif premises_id not in rows:
                continue  # an update of premises this projection never saw registered
            elif recorded.type == "PremisesUpdated":
                rows[premises_id].update({k: v for k, v in data["changes"].items() if k in FIELDS})
            elif recorded.type == "PremisesRetired":
                rows[premises_id]["retired"] = True
            touched.add(premises_id)
        upsert_replacing(conn, table, ["premises_id"], [rows[i] for i in sorted(touched)])


def listed(conn: Connection, table: Table | None = None) -> list[Any]:
    """The premises in the register: free of charge and in use, by id."""
    t = table if table is not None else Registry().tables[0]
    return list(
        conn.execute(
            select(t)
            .where(t.c.free_of_charge.is_(True), t.c.retired.is_(False))
            .order_by(t.c.premises_id)
        )
    )
