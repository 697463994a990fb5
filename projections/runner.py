"""Feeding projections from the log: inline ones in the append's transaction, rebuilds and
status for all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from events.catalog import Event
from events.sql import write_transaction
from events.store import RecordedEvent, head_position, read_all
from projections.availability import Availability
from projections.base import Projection
from projections.bookings import Bookings
from projections.catalogue import Catalogue

INLINE: tuple[Projection, ...] = (Catalogue(), Bookings(), Availability())
ALL: tuple[Projection, ...] = INLINE

Progress = Callable[[int], None]


def by_name(names: Sequence[str] = ()) -> list[Projection]:
    known = {p.name: p for p in ALL}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [known[n] for n in names] if names else list(ALL)


def project_inline(conn: Connection, appended: Sequence[tuple[Event, RecordedEvent]]) -> None:
    """Apply just-appended events to the inline projections, in the caller's transaction."""
    for projection in INLINE:
        for event, recorded in appended:
            projection.apply(conn, event, recorded)


def rebuild(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> int:
    """Empty the projections' tables and replay the whole log into them; returns the count
    of events read. One transaction, so readers see the old tables until it commits; on
    PostgreSQL appends wait meanwhile (the append lock), so nothing is missed."""
    wanted = frozenset().union(*(p.handled_types() for p in projections))
    count = 0
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
        for projection in projections:
            projection.clear(conn)
        position = 0
        while batch := read_all(conn, position, batch_size):
            for recorded in batch:
                if recorded.type in wanted:
                    event = recorded.to_event()
                    for projection in projections:
                        projection.apply(conn, event, recorded)
            position = batch[-1].position
            count += len(batch)
            if progress:
                progress(len(batch))
    return count


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    lag: int
    inline: bool


def status(conn: Connection) -> list[Status]:
    head = head_position(conn)
    return [Status(p.name, head, 0, p.inline) for p in ALL]
