"""Allocation rounds, applications and allocations (offers) as rows: what the rounds API,
the staff grid and the lapse job read. Written inline, so a write is seen at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, delete, insert, update
from sqlalchemy.engine import Connection

from events.catalog import (
    AllocationAdjusted,
    AllocationApplicationSubmitted,
    AllocationApplicationUpdated,
    AllocationApplicationWithdrawn,
    AllocationOfferAccepted,
    AllocationOfferDeclined,
    AllocationOfferLapsed,
    AllocationProposed,
    AllocationRoundOpened,
    AllocationRoundPublished,
)
from events.sql import JSONDocument, UTCDateTime
from events.store import RecordedEvent
from projections.base import Projection, handles, metadata

rounds_table = Table(
    "allocation_rounds",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", JSONDocument, nullable=False),
    Column("season_start", String(10), nullable=False),
    Column("season_end", String(10), nullable=False),
    Column("applications_open", UTCDateTime, nullable=False),
    Column("applications_close", UTCDateTime, nullable=False),
    Column("premises", JSONDocument, nullable=False),
    Column("criteria", JSONDocument, nullable=False),
    Column("confirm_days", Integer, nullable=False),
    Column("unallocated", JSONDocument),
    Column("metrics", JSONDocument),
    Column("proposed_at", UTCDateTime),
    Column("published_at", UTCDateTime),
    Column("confirm_by", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

applications_table = Table(
    "allocation_applications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("round_id", String(64), nullable=False, index=True),
    Column("organisation_id", String(64), nullable=False, index=True),
    Column("submitted_by", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("age_group", String(8), nullable=False),
    Column("group_size", Integer, nullable=False),
    Column("sections", JSONDocument, nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
)

allocations_table = Table(
    "allocations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("round_id", String(64), nullable=False, index=True),
    Column("application_id", String(64), nullable=False, index=True),
    Column("organisation_id", String(64), nullable=False, index=True),
    Column("section", String(200), nullable=False),
    Column("premises_id", String(100), nullable=False),
    Column("weekday", String(3), nullable=False),
    Column("start_time", String(5), nullable=False),
    Column("end_time", String(5), nullable=False),
    Column("tier", Integer),
    Column("priority", String(16), nullable=False),
    Column("premises_rank", Integer),
    Column("status", String(16), nullable=False),
    Column("override_reason", Text, nullable=False),
    Column("confirm_by", UTCDateTime),
    Column("series_id", String(64)),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_allocations_status_confirm_by", "status", "confirm_by"),
)

ALLOCATION_FIELDS = (
    "id",
    "application_id",
    "organisation_id",
    "section",
    "premises_id",
    "weekday",
    "start_time",
    "end_time",
    "tier",
    "priority",
    "premises_rank",
)


def _allocation_row(
    round_id: str, allocation: dict[str, Any], organisations: dict[str, str], **values: Any
) -> dict[str, Any]:
    row = {key: allocation.get(key) for key in ALLOCATION_FIELDS}
    row["organisation_id"] = row["organisation_id"] or organisations.get(
        allocation["application_id"], ""
    )
    return {"round_id": round_id, **row, **values}


class Allocations(Projection):
    name = "allocation"
    tables = (rounds_table, applications_table, allocations_table)
    inline = True
    needs_position = False

    def _round(self, conn: Connection, round_id: str, **values: Any) -> None:
        t = rounds_table
        conn.execute(update(t).where(t.c.id == round_id).values(version=t.c.version + 1, **values))

    @handles(AllocationRoundOpened)
    def opened(self, conn: Connection, e: AllocationRoundOpened, rec: RecordedEvent) -> None:
        conn.execute(
            insert(rounds_table).values(
                id=e.round_id,
                name=e.name,
                season_start=e.season_start,
                season_end=e.season_end,
                applications_open=e.applications_open,
                applications_close=e.applications_close,
                premises=e.premises,
                criteria=e.criteria,
                confirm_days=e.confirm_days,
                created_at=e.opened_at,
                updated_at=e.opened_at,
                version=1,
            )
        )

    @handles(AllocationApplicationSubmitted)
    def submitted(
        self, conn: Connection, e: AllocationApplicationSubmitted, rec: RecordedEvent
    ) -> None:
        conn.execute(
            insert(applications_table).values(
                id=e.application_id,
                round_id=e.round_id,
                organisation_id=e.organisation_id,
                submitted_by=e.submitted_by,
                status="submitted",
                purpose=e.purpose,
                age_group=e.age_group,
                group_size=e.group_size,
                sections=e.sections,
                submitted_at=e.submitted_at,
                updated_at=e.submitted_at,
                version=1,
            )
        )
        self._round(conn, e.round_id, updated_at=e.submitted_at)

    def _application(self, conn: Connection, application_id: str, **values: Any) -> None:
        t = applications_table
        conn.execute(
            update(t).where(t.c.id == application_id).values(version=t.c.version + 1, **values)
        )

    @handles(AllocationApplicationUpdated)
    def updated(
        self, conn: Connection, e: AllocationApplicationUpdated, rec: RecordedEvent
    ) -> None:
        self._application(conn, e.application_id, updated_at=e.updated_at, **e.changes)
        self._round(conn, e.round_id, updated_at=e.updated_at)

    @handles(AllocationApplicationWithdrawn)
    def withdrawn(
        self, conn: Connection, e: AllocationApplicationWithdrawn, rec: RecordedEvent
    ) -> None:
        self._application(conn, e.application_id, status="withdrawn", updated_at=e.withdrawn_at)
        self._round(conn, e.round_id, updated_at=e.withdrawn_at)

    def _organisations(self, conn: Connection, round_id: str) -> dict[str, str]:
        t = applications_table
        rows = conn.execute(t.select().where(t.c.round_id == round_id))
        return {r.id: r.organisation_id for r in rows}

    @handles(AllocationProposed)
    def proposed(self, conn: Connection, e: AllocationProposed, rec: RecordedEvent) -> None:
        conn.execute(delete(allocations_table).where(allocations_table.c.round_id == e.round_id))
        organisations = self._organisations(conn, e.round_id)
        rows = [
            _allocation_row(
                e.round_id,
                a,
                organisations,
                status="proposed",
                override_reason="",
                updated_at=e.proposed_at,
                version=1,
            )
            for a in e.allocations
        ]
        if rows:
            conn.execute(insert(allocations_table), rows)
        self._round(
            conn,
            e.round_id,
            unallocated=e.unallocated,
            metrics=e.metrics,
            proposed_at=e.proposed_at,
            updated_at=e.proposed_at,
        )

    @handles(AllocationAdjusted)
    def adjusted(self, conn: Connection, e: AllocationAdjusted, rec: RecordedEvent) -> None:
        t = allocations_table
        if e.removed_id is not None:
            conn.execute(delete(t).where(t.c.id == e.removed_id))
        if e.allocation is not None:
            row = _allocation_row(
                e.round_id,
                e.allocation,
                self._organisations(conn, e.round_id),
                status="proposed",
                override_reason=e.override_reason,
                updated_at=e.adjusted_at,
                version=1,
            )
            conn.execute(insert(t).values(**row))
        self._round(conn, e.round_id, updated_at=e.adjusted_at)

    @handles(AllocationRoundPublished)
    def published(self, conn: Connection, e: AllocationRoundPublished, rec: RecordedEvent) -> None:
        t = allocations_table
        conn.execute(
            update(t)
            .where(t.c.round_id == e.round_id, t.c.id.in_(e.offer_ids))
            .values(
                status="offered",
                confirm_by=e.confirm_by,
                updated_at=e.published_at,
                version=t.c.version + 1,
            )
        )
        self._round(
            conn,
            e.round_id,
            published_at=e.published_at,
            confirm_by=e.confirm_by,
            updated_at=e.published_at,
        )

    def _offer(self, conn: Connection, allocation_id: str, **values: Any) -> None:
        t = allocations_table
        conn.execute(
            update(t).where(t.c.id == allocation_id).values(version=t.c.version + 1, **values)
        )

    @handles(AllocationOfferAccepted)
    def accepted(self, conn: Connection, e: AllocationOfferAccepted, rec: RecordedEvent) -> None:
        self._offer(
            conn,
            e.allocation_id,
            status="accepted",
            series_id=e.series_id,
            updated_at=e.accepted_at,
        )

    @handles(AllocationOfferDeclined)
    def declined(self, conn: Connection, e: AllocationOfferDeclined, rec: RecordedEvent) -> None:
        self._offer(conn, e.allocation_id, status="declined", updated_at=e.declined_at)

    @handles(AllocationOfferLapsed)
    def lapsed(self, conn: Connection, e: AllocationOfferLapsed, rec: RecordedEvent) -> None:
        self._offer(conn, e.allocation_id, status="lapsed", updated_at=e.lapsed_at)
