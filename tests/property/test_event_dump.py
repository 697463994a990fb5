"""`serializer.dump` writes plain values without marshmallow; for every event type and any
field values it must give exactly what the schema path gives — the same JSON, in the same
order — or refuse exactly what it refuses."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import ALL_EVENTS, Event, PopupExpired
from events.serialization import UnreadableEvent, serializer

SETTINGS = settings(max_examples=60, deadline=None)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets | st.just(UTC)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def values_for(annotation: Any) -> st.SearchStrategy[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (member,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return st.none() | values_for(member)
    origin = typing.get_origin(annotation) or annotation
    if origin is str:
        return st.text(max_size=20)
    if origin is bool:
        return st.booleans()
    if origin is int:
        return st.integers(-(2**40), 2**40)
    if origin is datetime:
        return aware
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(values_for(item), max_size=4)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    raise TypeError(f"teach values_for about {annotation!r}")


def events_of(event_type: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(event_type)
    return st.builds(
        event_type, **{f.name: values_for(hints[f.name]) for f in dataclasses.fields(event_type)}
    )


def outcome(dump: Any, event: Event) -> Any:
    try:
        name, version, data = dump(event)
    except UnreadableEvent as error:
        return ("refused", type(error))
    return name, version, list(data.items())  # the order of the keys is the stored order


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
@SETTINGS
@given(data=st.data())
def test_the_plain_dump_equals_the_schemas(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(events_of(event_type))
    assert outcome(serializer.dump, event) == outcome(serializer.dump_by_schema, event)


class Tagged(str):
    """A str subclass: not plain, so the schema path must take it."""


def origin_of(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) or annotation


# Per annotated type, a value of another type: naive instants, str and int subclasses.
ODD: dict[Any, Any] = {datetime: datetime(2027, 1, 1, 10), str: Tagged("x"), bool: 1, int: True}


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
@SETTINGS
@given(data=st.data())
def test_unusual_values_go_the_schemas_way(event_type: type[Event], data: st.DataObject) -> None:
    hints = typing.get_type_hints(event_type)
    event = data.draw(events_of(event_type))
    for field in dataclasses.fields(event_type):
        odd = ODD.get(origin_of(hints[field.name]))
        if odd is not None:
            changed = dataclasses.replace(event, **{field.name: odd})
            assert outcome(serializer.dump, changed) == outcome(serializer.dump_by_schema, changed)


def texts_outcome(events: list[Event]) -> Any:
    """What `dump_texts` must give: each event's `dump` and its `json.dumps`, keys in order."""
    try:
        datas = [serializer.dump(e)[2] for e in events]
    except UnreadableEvent as error:
        return ("refused", type(error))
    return [list(d.items()) for d in datas], [json.dumps(d) for d in datas]


def dump_texts_outcome(events: list[Event]) -> Any:
    try:
        datas, texts = serializer.dump_texts(events)
    except UnreadableEvent as error:
        return ("refused", type(error))
    return [list(d.items()) for d in datas], texts


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
@SETTINGS
@given(data=st.data())
def test_the_dump_of_many_events_equals_each_ones(
    event_type: type[Event], data: st.DataObject
) -> None:
    """`dump_texts`, which serialises events of one type field by field, gives each event's
    `dump` and `json.dumps` — also when one event carries an unusual value (naive instants,
    str and int subclasses), which sends them all the one-by-one way."""
    events = data.draw(st.lists(events_of(event_type), min_size=1, max_size=5))
    assert dump_texts_outcome(events) == texts_outcome(events)
    hints = typing.get_type_hints(event_type)
    for field in dataclasses.fields(event_type):
        odd = ODD.get(origin_of(hints[field.name]))
        if odd is not None:
            changed = [*events[:-1], dataclasses.replace(events[-1], **{field.name: odd})]
            assert dump_texts_outcome(changed) == texts_outcome(changed)


def test_one_instant_at_two_offsets_is_written_at_each() -> None:
    """`dump_texts` writes each distinct instant once; the same instant at another offset
    is another text (equal datetimes, different isoformat)."""
    at = datetime(2027, 3, 1, 12, tzinfo=UTC)
    events = [
        PopupExpired("p", "r1", at),
        PopupExpired("p", "r2", at.astimezone(timezone(timedelta(hours=2)))),
        PopupExpired("p", "r3", at),
    ]
    assert dump_texts_outcome(events) == texts_outcome(events)
    assert '"expired_at": "2027-03-01T14:00:00+02:00"' in serializer.dump_texts(events)[1][1]
