"""Events to JSON and back, through marshmallow schemas, with upcasters for old shapes.

Each event type's schema is derived from its dataclass fields, so a field added to an event
is validated and serialised without a second declaration. Old stored versions are brought up
to the current shape by the upcasters declared beside each event type in `events.catalog`
(`upcast_<type>_v1_v2`) before the schema loads them.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from operator import attrgetter, methodcaller
from typing import Any

import marshmallow as ma
from marshmallow import fields

from events.catalog import ALL_EVENTS, Event, JSONObject, Upcaster


class UnknownEventType(LookupError):
    pass


class UnreadableEvent(ValueError):
    """An event whose data could not be read back: refused before it reaches the log."""


class InstantField(fields.AwareDateTime):
    """An RFC 3339 instant; always deserialised to UTC. Naive values are refused on the way
    in too: stored, they could never be read back (the schema rejects them on load)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise UnreadableEvent(f"{attr}: naive datetime given where an instant is required")
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            return result.astimezone(UTC)
        except OverflowError:  # an offset that moves year 1 or 9999 off the calendar
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def _unwrapped(annotation: Any) -> tuple[Any, Any, bool]:
    """(annotation, its origin, optional) of a field's type hint, `X | None` unwrapped."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0]
    return annotation, typing.get_origin(annotation) or annotation, optional


def _field_for(annotation: Any) -> fields.Field[Any]:
    annotation, origin, optional = _unwrapped(annotation)
    field: fields.Field[Any]
    if origin is str:
        field = fields.String(allow_none=optional)
    elif origin is bool:
        field = fields.Boolean(allow_none=optional)
    elif origin is int:
        field = fields.Integer(strict=True, allow_none=optional)
    elif origin is datetime:
        field = InstantField(format="iso", allow_none=optional)
    elif origin is list:
        (item,) = typing.get_args(annotation)
        field = fields.List(_field_for(item), allow_none=optional)
    elif origin is dict:
        field = fields.Dict(allow_none=optional)
    else:  # pragma: no cover - a new event field type must be taught here
        raise TypeError(f"no marshmallow field for {annotation!r}")
    field.required = True
    return field


class _Unusual(Exception):
    """A value outside `_plain`'s exact types: the schema decides what becomes of it."""


Plain = Callable[[Any], Any]


def _plain_for(annotation: Any) -> Plain:
    """A function giving exactly what the field's schema dumps — for values of exactly the
    annotated type, which need no coercion and pass the schema's validation as they are —
    and raising `_Unusual` for anything else."""
    annotation, origin, optional = _unwrapped(annotation)
    inner: Plain | None = None
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner = _plain_for(item)

    def plain(value: Any) -> Any:
        kind = type(value)
        if kind is origin:
            if kind is datetime:
                if value.utcoffset() is None:
                    raise _Unusual
                return value.isoformat()
            if inner is not None:
                return [inner(item) for item in value]
            if kind is dict:
                return dict(value)
            return value  # str, bool, int
        if value is None and optional:
            return None
        raise _Unusual

    return plain


# What `json.dumps` writes for a value of exactly these types.
_JSON_TEXT: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
}
_UTC_OFFSET = methodcaller("utcoffset")


def _plain_column(values: list[Any], annotation: Any) -> tuple[list[Any], list[str]] | None:
    """(what `_plain_for(annotation)` gives for each value, and its JSON text) when every
    value is of exactly the annotated scalar type, None otherwise: checked and converted over
    the whole column by C functions, not by a Python call per value."""
    _, origin, _ = _unwrapped(annotation)
    if set(map(type, values)) != {origin}:  # None, a subclass, another type
        return None
    if origin is datetime:
        offsets = list(map(_UTC_OFFSET, values))
        if None in offsets:  # naive: `dump` refuses it through the schema
            return None
        # Written once per distinct instant and offset (an expiry run's 10,000 events share
        # one): equal instants at one offset read the same, at another they do not.
        keys = list(zip(offsets, values, strict=True))
        written = {key: key[1].isoformat() for key in set(keys)}
        quoted = {key: encode_basestring_ascii(text) for key, text in written.items()}
        return list(map(written.__getitem__, keys)), list(map(quoted.__getitem__, keys))
    text = _JSON_TEXT.get(origin)
    if text is None:  # a list or a dict: `dump` copies it
        return None
    return values, list(map(text, values))


def schema_for(event_type: type[Event]) -> ma.Schema:
    hints = typing.get_type_hints(event_type)
    declared = {f.name: _field_for(hints[f.name]) for f in dataclasses.fields(event_type)}
    schema_class = ma.Schema.from_dict(declared, name=f"{event_type.__name__}Schema")
    return schema_class()


def _plain_fields(event_type: type[Event]) -> list[tuple[str, Plain]]:
    hints = typing.get_type_hints(event_type)
    return [(f.name, _plain_for(hints[f.name])) for f in dataclasses.fields(event_type)]


class EventSerializer:
    """Maps event objects to (type name, schema version, JSON data) and back."""

    def __init__(self, event_types: tuple[type[Event], ...] = ALL_EVENTS) -> None:
        self._types = {t.__name__: t for t in event_types}
        self._schemas = {t.__name__: schema_for(t) for t in event_types}
        self._plain = {t.__name__: _plain_fields(t) for t in event_types}
        self._hints = {
            t: [(f.name, typing.get_type_hints(t)[f.name]) for f in dataclasses.fields(t)]
            for t in event_types
        }
        self._upcasters: dict[tuple[str, int], Upcaster] = {
            (t.__name__, version): upcaster
            for t in event_types
            for version, upcaster in t.upcasters.items()
        }

    def dump(self, event: Event) -> tuple[str, int, JSONObject]:
        name = type(event).__name__
        try:
            data = {field: plain(getattr(event, field)) for field, plain in self._plain[name]}
            return name, type(event).schema_version, data
        except _Unusual:
            return self.dump_by_schema(event)

    def dump_texts(self, events: Sequence[Event]) -> tuple[list[JSONObject], list[str]]:
        """Each event's data, as `dump` gives it, and that data's JSON text, as `json.dumps`
        writes it, for events of one type (an expiry run's 10,000 `PopupExpired`). Field by
        field over all the events at once, where `dump` and `json.dumps` call Python per
        field and event; a field with any value `dump` would not take as it is (None, a
        list, a naive instant …) sends them all through `dump` and `json.dumps` instead."""
        columns = self._plain_columns(events)
        if columns is None:
            datas = [self.dump(e)[2] for e in events]
            return datas, list(map(json.dumps, datas))
        names = list(columns)
        values = [plain for plain, _ in columns.values()]
        datas = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
        # json.dumps' default separators; keys and values as it writes them.
        template = "{" + ", ".join(f"{encode_basestring_ascii(n)}: %s" for n in names) + "}"
        texts = [text for _, text in columns.values()]
        return datas, [template % row for row in zip(*texts, strict=True)]

    def _plain_columns(
        self, events: Sequence[Event]
    ) -> dict[str, tuple[list[Any], list[str]]] | None:
        """Per field, every event's plain value and its JSON text; None unless all the
        events are of one type with fields, every value of exactly its annotated type."""
        if not events or any(type(e) is not type(events[0]) for e in events):
            return None
        columns = {}
        for field, annotation in self._hints.get(type(events[0]), ()):
            column = _plain_column(list(map(attrgetter(field), events)), annotation)
            if column is None:
                return None
            columns[field] = column
        return columns or None

    def dump_by_schema(self, event: Event) -> tuple[str, int, JSONObject]:
        """`dump` through the marshmallow schema alone (what the fast path must equal)."""
        name = type(event).__name__
        schema = self._schemas[name]
        data: JSONObject = schema.dump(event)
        # The log is forever: refuse here what `load` would refuse later (a wrong type, a
        # missing value) rather than store an event no reader can decode.
        errors = schema.validate(data)
        if errors:
            raise UnreadableEvent(f"{name} would not read back: {errors}")
        return name, type(event).schema_version, data

    def load(self, name: str, schema_version: int, data: JSONObject) -> Event:
        try:
            event_type = self._types[name]
        except KeyError:
            raise UnknownEventType(name) from None
        while schema_version < event_type.schema_version:
            data = self._upcasters[(name, schema_version)](data)
            schema_version += 1
        loaded = self._schemas[name].load(data)
        return event_type(**loaded)

    def known(self, name: str) -> bool:
        return name in self._types


serializer = EventSerializer()
