"""What a projection is: a name, its tables, and a handler per event type it cares about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, Integer, MetaData, String, Table, delete
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


def handles(*event_types: type[Event]) -> Callable[[Handler], Handler]:
    """Marks a method as the handler of the given event types."""

    def mark(method: Handler) -> Handler:
        method._handles = event_types  # type: ignore[attr-defined]
        return method

    return mark


class Projection:
    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    # Inline projections are written in the transaction of the append (read your own
    # writes); the others are fed by the runner and keep a checkpoint.
    inline: ClassVar[bool] = False
    _handlers: ClassVar[dict[type[Event], Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            event_type: method
            for method in cls.__dict__.values()
            for event_type in getattr(method, "_handles", ())
        }

    @classmethod
    def handled_types(cls) -> frozenset[str]:
        return frozenset(t.__name__ for t in cls._handlers)

    def apply(self, conn: Connection, event: Event, recorded: RecordedEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, conn, event, recorded)

    def clear(self, conn: Connection) -> None:
        for table in reversed(self.tables):
            conn.execute(delete(table))
