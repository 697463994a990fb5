"""Allocation rounds as the pages read them (API.md "Seasonal allocation rounds"): the
rounds with their status at a given instant, a round's applications and allocations, a
member's applications and offers (their organisations' only), and what an accepted offer's
series skipped. Who may see what is decided here, not in the views."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from booking.allocation.model import WEEKDAYS
from booking.allocation.state import status_at
from booking.domain.errors import NotFound
from booking.service import premises_stream
from booking.tables import organisations
from events.decoding import decode
from events.store import events_table
from projections.allocation import allocations_table, applications_table, rounds_table
from projections.catalogue import premises_table

# What a round's status may be, in the order people meet them.
SHOWN_PUBLICLY = ("open", "upcoming", "allocating", "published")
# Offers are shown to their organisation once the round is published, never before.
ANSWERED = ("offered", "accepted", "declined", "lapsed")


@dataclass(frozen=True)
class RoundRow:
    """A round's projection row with its status at the instant it was read."""

    row: Any
    status: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def status_of(row: Any, at: datetime) -> str:
    return status_at(
        row.applications_open, row.applications_close, row.published_at, row.season_end, at
    )


def every_round(conn: Connection, at: datetime) -> list[RoundRow]:
    """Every round, newest season first, each with its status at `at`."""
    t = rounds_table
    rows = conn.execute(select(t).order_by(t.c.season_start.desc(), t.c.id).limit(1000))
    return [RoundRow(r, status_of(r, at)) for r in rows]


def one_round(conn: Connection, round_id: str, at: datetime) -> RoundRow:
    row = conn.execute(select(rounds_table).where(rounds_table.c.id == round_id)).first()
    if row is None:
        raise NotFound(f"No allocation round {round_id!r}.")
    return RoundRow(row, status_of(row, at))


def premises_of(conn: Connection, ids: Iterable[str]) -> dict[str, Any]:
    """premises id → its catalogue row (name, zone, opening hours), for the ids named."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    t = premises_table
    return {r.id: r for r in conn.execute(select(t).where(t.c.id.in_(wanted)))}


def organisation_names(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    t = organisations
    rows = conn.execute(select(t.c.id, t.c.name).where(t.c.id.in_(wanted)))
    return {r.id: r.name for r in rows}


def applications_of_round(
    conn: Connection, round_id: str, organisation_ids: Iterable[str] | None = None
) -> list[Any]:
    """A round's applications, first submitted first; `organisation_ids` limits them to
    those organisations' (a member's view), None shows all (staff)."""
    t = applications_table
    sql = select(t).where(t.c.round_id == round_id).order_by(t.c.submitted_at, t.c.id)
    if organisation_ids is not None:
        sql = sql.where(t.c.organisation_id.in_(sorted(set(organisation_ids))))
    return list(conn.execute(sql))


def application_counts(conn: Connection) -> dict[str, int]:
    """round id → how many applications it has (withdrawn ones included)."""
    t = applications_table
    rows = conn.execute(select(t.c.round_id, func.count()).group_by(t.c.round_id))
    return {round_id: int(count) for round_id, count in rows}


def applications_of(conn: Connection, organisation_ids: Iterable[str]) -> list[Any]:
    """Every application of these organisations, newest first."""
    wanted = sorted(set(organisation_ids))
    if not wanted:
        return []
    t = applications_table
    sql = (
        select(t)
        .where(t.c.organisation_id.in_(wanted))
        .order_by(t.c.submitted_at.desc(), t.c.id)
        .limit(500)
    )
    return list(conn.execute(sql))


def application_row(conn: Connection, application_id: str) -> Any:
    t = applications_table
    row = conn.execute(select(t).where(t.c.id == application_id)).first()
    if row is None:
        raise NotFound(f"No application {application_id!r}.")
    return row


def allocations_of_round(conn: Connection, round_id: str) -> list[Any]:
    """The round's allocations (the proposal as adjusted, or the offers), by premises,
    weekday and time."""
    a = allocations_table
    rows = conn.execute(select(a).where(a.c.round_id == round_id))
    return sorted(rows, key=lambda r: (r.premises_id, *_in_week(r)))


def offers_of(conn: Connection, application_ids: Iterable[str]) -> list[Any]:
    """The offers made to these applications: only those of published rounds (a proposal
    is staff's work in progress until then)."""
    wanted = sorted(set(application_ids))
    if not wanted:
        return []
    a = allocations_table
    sql = select(a).where(a.c.application_id.in_(wanted), a.c.status.in_(ANSWERED))
    return sorted(conn.execute(sql), key=_in_week)


def _in_week(row: Any) -> tuple[int, str, str]:
    """Monday first (the weekday keys do not sort alphabetically)."""
    return (WEEKDAYS.index(row.weekday), row.start_time, row.id)


def allocation_row(conn: Connection, allocation_id: str) -> Any:
    a = allocations_table
    row = conn.execute(select(a).where(a.c.id == allocation_id)).first()
    if row is None:
        raise NotFound(f"No allocation {allocation_id!r}.")
    return row


def series_skipped(conn: Connection, premises_id: str, series_id: str) -> list[dict[str, Any]]:
    """The dates an accepted offer's series could not book (`[{start, end, reason}]`), as
    its header event in the premises' stream says."""
    e = events_table
    rows = conn.execute(
        select(e.c.type, e.c.schema_version, e.c.data).where(
            e.c.stream == premises_stream(premises_id), e.c.type == "BookingSeriesPlaced"
        )
    )
    for row in rows:
        header = decode(row.type, row.schema_version, row.data)
        if getattr(header, "series_id", None) == series_id:
            return list(getattr(header, "skipped", []) or [])
    return []
