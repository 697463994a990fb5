"""Feeding projections from the log: inline ones in the append's transaction, rebuilds and
status for all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from events.catalog import Event
from events.sql import write_transaction
from events.store import RecordedEvent, head_position, read_all
from projections.availability import Availability
from projections.base import Projection, checkpoints
from projections.bookings import Bookings
from projections.catalogue import Catalogue
from projections.feed_entries import FeedEntries
from projections.messages import Messages
from projections.popups import Popups

# Every projection, inline or fed by the runner; add a new one here.
ALL: tuple[Projection, ...] = (
    Catalogue(),
    Bookings(),
    Availability(),
    FeedEntries(),
    Popups(),
    Messages(),
)
INLINE = tuple(p for p in ALL if p.inline)
ASYNC = tuple(p for p in ALL if not p.inline)

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
            if not projection.inline:
                _checkpoint(conn, projection.name)
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
        for projection in projections:
            if not projection.inline:
                conn.execute(
                    update(checkpoints)
                    .where(checkpoints.c.name == projection.name)
                    .values(position=position, updated_at=datetime.now(UTC))
                )
    return count


def _checkpoint(conn: Connection, name: str, lock: bool = False) -> int:
    query = select(checkpoints.c.position).where(checkpoints.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar()
    if found is None:
        conn.execute(
            insert(checkpoints).values(name=name, position=0, updated_at=datetime.now(UTC))
        )
        return 0
    return int(found)


def catch_up(
    engine: Engine,
    projections: Sequence[Projection] | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Feed asynchronous projections the events after their checkpoints; returns how many
    events were applied. Each batch and its checkpoint commit together, so a crash repeats
    nothing and skips nothing."""
    applied = 0
    for projection in projections if projections is not None else ASYNC:
        wanted = projection.handled_types()
        while True:
            with write_transaction(engine) as conn:
                position = _checkpoint(conn, projection.name, lock=True)
                batch = read_all(conn, position, batch_size)
                if not batch:
                    break
                for recorded in batch:
                    if recorded.type in wanted:
                        projection.apply(conn, recorded.to_event(), recorded)
                conn.execute(
                    update(checkpoints)
                    .where(checkpoints.c.name == projection.name)
                    .values(position=batch[-1].position, updated_at=datetime.now(UTC))
                )
            applied += len(batch)
            if progress:
                progress(len(batch))
    return applied


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    lag: int
    inline: bool


def status(conn: Connection) -> list[Status]:
    head = head_position(conn)
    found = []
    for p in ALL:
        position = head if p.inline else _checkpoint(conn, p.name)
        found.append(Status(p.name, position, head - position, p.inline))
    return found
