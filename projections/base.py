"""What a projection is: a name, its tables, and a handler per event type it cares about."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, delete
from sqlalchemy.engine import Connection

from events.catalog import Event
from events.sql import UTCDateTime
from events.store import RecordedEvent

metadata = MetaData()

checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

E = TypeVar("E", bound=Event)
Handler = Callable[[Any, Connection, Any, RecordedEvent], None]
BatchHandler = Callable[[Any, Connection, list[Any]], None]


def handles(*event_types: type[Event]) -> Callable[[Handler], Handler]:
    """Marks a method as the handler of the given event types."""

    def mark(method: Handler) -> Handler:
        # Marks the function object itself, which types no attributes.
        method._handles = event_types  # type: ignore[attr-defined]
        return method

    return mark


def handles_many(*event_types: type[Event]) -> Callable[[BatchHandler], BatchHandler]:
    """Marks a method as the handler of runs of consecutive events of these types, given as
    one list: one statement for a run instead of one per event (expiring 10,000 requests)."""

    def mark(method: BatchHandler) -> BatchHandler:
        method._handles_many = event_types  # type: ignore[attr-defined]  # as `handles` does
        return method

    return mark


class Projection:
    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    # Inline projections are written in the transaction of the append (read your own
    # writes); the others are fed by the runner and keep a checkpoint.
    inline: ClassVar[bool] = False
    # An inline projection that never reads a recorded event's position or time can be
    # written before the append, outside the append lock (`booking.service`).
    needs_position: ClassVar[bool] = True
    # Secondary indexes that neither `replay` nor the live handlers it falls back to need
    # (at worst a rare event then scans): on SQLite a rebuild drops them while it replays
    # and builds each once at the end, which costs less than keeping them up row by row.
    rebuild_drops: ClassVar[tuple[Index, ...]] = ()
    _handlers: ClassVar[dict[type[Event], Handler]]
    _batch_handlers: ClassVar[dict[type[Event], BatchHandler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            event_type: method
            for method in cls.__dict__.values()
            for event_type in getattr(method, "_handles", ())
        }
        cls._batch_handlers = {
            event_type: method
            for method in cls.__dict__.values()
            for event_type in getattr(method, "_handles_many", ())
        }

    @classmethod
    def handled_types(cls) -> frozenset[str]:
        return frozenset(t.__name__ for t in (*cls._handlers, *cls._batch_handlers))

    def apply(self, conn: Connection, event: Event, recorded: RecordedEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, conn, event, recorded)
            return
        batch_handler = self._batch_handlers.get(type(event))
        if batch_handler is not None:
            batch_handler(self, conn, [event])

    def apply_all(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """Apply events in order; consecutive events of one batch-handled type go together."""
        run: list[Event] = []
        for event, recorded in pairs:
            if run and type(event) is not type(run[0]):
                self._batch_handlers[type(run[0])](self, conn, run)
                run = []
            if type(event) in self._batch_handlers:
                run.append(event)
            else:
                self.apply(conn, event, recorded)
        if run:
            self._batch_handlers[type(run[0])](self, conn, run)

    def replay(self, conn: Connection, pairs: Sequence[tuple[Event, RecordedEvent]]) -> None:
        """Apply a batch of a rebuild (`projections.shadowing.rebuild_inline`): events in log
        order, on shadow tables that only the rebuild writes, filled from empty batch by batch
        (a transaction each, in the caller's). By default the live
        handlers, one event at a time; a projection overrides it to load what the batch
        touches, change it in memory and write each table with one many-row statement."""
        for event, recorded in pairs:
            self.apply(conn, event, recorded)

    def clear(self, conn: Connection) -> None:
        for table in reversed(self.tables):
            conn.execute(delete(table))
