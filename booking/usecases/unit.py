"""What a handler works in, and the one call through which handlers record commands on a
premises' stream (booking.service holds the transaction, retry and idempotency plumbing)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.clock import Clock
from booking.domain.decide import Command
from booking.domain.errors import NotFound
from booking.privacy import Vault
from booking.service import PremisesRepository, run_premises_command
from events.store import Metadata, RecordedEvent
from projections.catalogue import premises_table


@dataclass(frozen=True)
class Unit:
    """One write transaction's connection, the premises cache, the vault for sealing, and
    the metadata recorded with the events, the clock their recording time is read from.
    `notify=False` records history nobody should be
    told about (the demo)."""

    conn: Connection
    premises: PremisesRepository
    vault: Vault
    metadata: Metadata
    clock: Clock
    notify: bool = True


def record(unit: Unit, premises_id: str, command: Command) -> list[RecordedEvent]:
    """Decide `command` on the premises and record what it decided (events, inline
    projections, mails) in the unit's transaction."""
    return run_premises_command(
        unit.conn,
        unit.premises,
        premises_id,
        command,
        unit.metadata,
        unit.notify,
        now=unit.clock(),
    )


def zone_of(unit: Unit, premises_id: str) -> ZoneInfo:
    """The premises' zone: from the cached state when loaded, else from the catalogue."""
    zone = known_zone(unit, premises_id)
    if zone is None:
        raise NotFound(f"No premises {premises_id!r}.")
    return zone


def known_zone(unit: Unit, premises_id: str) -> ZoneInfo | None:
    """`zone_of`, or None for a premises not in the catalogue (the decision says so)."""
    zone = unit.premises.zone(premises_id)
    if zone is not None:
        return zone
    p = premises_table
    found = unit.conn.execute(select(p.c.timezone).where(p.c.id == premises_id)).scalar()
    return ZoneInfo(found) if found is not None else None
