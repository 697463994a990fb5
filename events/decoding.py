"""The one way events come back from the log's JSON: fast, without marshmallow.

`serializer.load` validates every field through a marshmallow schema: right for input read
once, but on a rebuild it costs more than all the projections' writes together (about
0.3 ms an event). What the log holds was validated by `serializer.dump` before it was
appended, so reading it back only needs the instants parsed: this does that and builds the
dataclass. Old schema versions, and any type this does not know, still go through
`serializer.load` (the upcasters declared beside each type included).
`RecordedEvent.to_event`, the replay of the projections and the write side's load all
decode here; `tests/integration/test_runner_rebuild.py` checks that it gives the events
the serializer gives.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from events.catalog import ALL_EVENTS, Event, JSONObject
from events.serialization import serializer

if TYPE_CHECKING:  # events.store imports this module to decode its records
    from events.store import RecordedEvent

Decoder = Callable[[JSONObject], Event]


def _decoder(event_type: type[Event]) -> Decoder:
    hints = typing.get_type_hints(event_type)
    instants = [
        f.name
        for f in dataclasses.fields(event_type)
        if hints[f.name] is datetime or hints[f.name] == datetime | None
    ]
    parse = datetime.fromisoformat

    def decode(data: JSONObject) -> Event:
        values = dict(data)
        for name in instants:
            if (text := values[name]) is not None:
                values[name] = parse(text).astimezone(UTC)
        return event_type(**values)

    return decode


_DECODERS: dict[str, tuple[int, Decoder]] = {
    t.__name__: (t.schema_version, _decoder(t)) for t in ALL_EVENTS
}


def decode(type_name: str, schema_version: int, data: JSONObject) -> Event:
    """The event of this type, version and JSON, as `serializer.load` gives it."""
    found = _DECODERS.get(type_name)
    if found is None or schema_version != found[0]:
        return serializer.load(type_name, schema_version, data)
    return found[1](data)


def event_of(recorded: RecordedEvent) -> Event:
    """The recorded event: the one this process appended, or decoded from the log."""
    if recorded.source is not None:
        return recorded.source
    return decode(recorded.type, recorded.schema_version, recorded.data)
