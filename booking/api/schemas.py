"""The JSON shapes of the public API (API.md), as marshmallow schemas.

Incoming instants must carry an offset (naive ones get 422); unknown fields are refused.
These schemas are also what the OpenAPI document at /api/v1/openapi.json is made from.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from booking.domain.spaces import ID_PATTERN, SPACE_ID_LENGTH, is_id
from events.serialization import InstantField

Text = fields.String


class Localised(fields.Dict):
    """`{"fi": "...", "en": "...", "sv": null}`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=fields.String(validate=validate.OneOf(["fi", "en", "sv"])),
            values=fields.String(allow_none=True, validate=validate.Length(max=5000)),
            **kwargs,
        )


WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK_PATTERN = r"^([01]\d|2[0-4]):[0-5]\d$"
# What the OpenAPI document says of a day's intervals; apispec would say only "a map of
# anything" for the keys, so the seven days are named as properties (issue 14.6).
_DAY_SCHEMA = {
    "type": "array",
    "maxItems": 6,
    "items": {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "items": {"type": "string", "pattern": CLOCK_PATTERN},
    },
}


class OpeningHoursField(fields.Dict):
    """`{"mon": [["08:00", "20:00"]], …, "sun": []}`: only the seven days, up to six
    intervals each."""

    def __init__(self, **kwargs: Any) -> None:
        interval = fields.List(
            fields.String(validate=validate.Regexp(CLOCK_PATTERN)),
            validate=validate.Length(equal=2),
        )
        super().__init__(
            keys=fields.String(validate=validate.OneOf(WEEKDAY_KEYS)),
            values=fields.List(interval, validate=validate.Length(max=6)),
            **kwargs,
        )


def opening_hours_properties(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """An apispec attribute function (registered by booking.app): an OpeningHoursField is
    documented with the seven days as its only properties. apispec's own Dict conversion
    runs before it and would allow any key (`additionalProperties`)."""
    if not isinstance(field, OpeningHoursField):
        return {}
    return {"properties": {day: _DAY_SCHEMA for day in WEEKDAY_KEYS}, "additionalProperties": False}


# Instants outside these bounds are no booking's: refusing them early keeps date arithmetic
# (padding, offsets, day windows) from overflowing into a 500.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


_LOWER_CASE_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt][0-9:.]+([Zz]|[+-]\d{2}:\d{2})$")


class ApiInstant(InstantField):
    """An RFC 3339 instant with an offset, between 1970 and 2200."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and _LOWER_CASE_RFC3339.match(value):
            value = value.upper()  # RFC 3339 5.6: `t` and `z` may be written in lower case
        try:
            result = super()._deserialize(value, attr, data, **kwargs)
        except OverflowError:
            raise ma.ValidationError("Not a valid instant.") from None
        if not EARLIEST <= result < LATEST:
            raise ma.ValidationError("Give an instant between 1970 and 2200.")
        return result


class JsonBoolean(fields.Boolean):
    """`true` or `false` in a JSON body; marshmallow's Boolean would also take "yes", "on",
    "1" or 1, which a JSON client means as no boolean (422 like any other wrong type). Query
    strings keep `fields.Boolean`: there every value is text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def instant(**kwargs: Any) -> InstantField:
    return ApiInstant(format="iso", **kwargs)


# `2027-03-02T18:00:00 02:00`: an instant whose offset's `+` was written into a URL as it is
# and arrived as a space (a `+` in a query string means a space).
_SPACED_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}T[0-9:.,]+) (\d{2}:?\d{2})$")


class QueryInstant(ApiInstant):
    """An instant in a query string: `?start=2027-03-02T18:00:00+02:00` written unencoded
    means +02:00, as its writer meant, not a malformed instant."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str):
            value = _SPACED_OFFSET.sub(r"\1+\2", value)
        return super()._deserialize(value, attr, data, **kwargs)


def query_instant(**kwargs: Any) -> InstantField:
    return QueryInstant(format="iso", **kwargs)


FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2199, 12, 31)
# The same bounds as standard JSON Schema can say them (issue 14.6: apispec writes a date
# Range as the non-standard `x-minimum`/`x-maximum`): a year from 1970 to 2199.
DATE_PATTERN = r"^(19[7-9][0-9]|2[01][0-9]{2})-[0-9]{2}-[0-9]{2}$"


def _within_dates(value: date) -> None:
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ma.ValidationError("Give a date from 1970 to 2199.")


class LocalDate(fields.Date):
    """A date written `YYYY-MM-DD` only (API.md): `date.fromisoformat` also reads ISO 8601's
    other spellings (`20270111`, `2027-W02-1`), which the contract and the pattern refuse."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def local_date(**kwargs: Any) -> fields.Date:
    """A `YYYY-MM-DD` date in the years of instants (day windows are built from it)."""
    metadata = {"pattern": DATE_PATTERN, **kwargs.pop("metadata", {})}
    return LocalDate(validate=_within_dates, metadata=metadata, **kwargs)


def not_blank(text: str) -> None:
    if not text.strip():
        raise ma.ValidationError("Must not be blank.")


ID_RULE = (
    f"1 to {SPACE_ID_LENGTH} lower-case letters (a-z), digits and hyphens, not starting with "
    "a hyphen."
)


def premises_id(text: str) -> None:
    """A premises id as it is written (booking.domain.spaces.ID_PATTERN), the whole text: a
    regular expression's `match` would let a trailing line feed through before `$`."""
    if not is_id(text):
        raise ma.ValidationError(f"A premises id is {ID_RULE}")


# Bounds for numbers that reach SQL: an unbounded integer overflows SQLite's INTEGER.
MAX_POSITION = 2**53


class RulesSchema(ma.Schema):
    min_duration_minutes = fields.Integer(strict=True, validate=validate.Range(1, 60 * 24 * 7))
    max_duration_minutes = fields.Integer(strict=True, validate=validate.Range(1, 60 * 24 * 7))
    min_notice_minutes = fields.Integer(strict=True, validate=validate.Range(0, 60 * 24 * 365))
    max_advance_days = fields.Integer(strict=True, validate=validate.Range(1, 3 * 365))
    buffer_minutes = fields.Integer(strict=True, validate=validate.Range(0, 24 * 60))
    requires_approval = JsonBoolean()
    bookable_by = fields.String(validate=validate.OneOf(["organisations", "anyone"]))
    popup_allowed = JsonBoolean()
    popup_max_duration_minutes = fields.Integer(strict=True, validate=validate.Range(1, 24 * 60))
    popup_auto_approve = JsonBoolean()
    requires_strong_identity = JsonBoolean(
        metadata={"description": "bookings and requests only from people signed in strongly"}
    )
    cancellation_deadline_minutes = fields.Integer(
        strict=True, validate=validate.Range(0, 60 * 24 * 60)
    )
    quota_hours_per_week = fields.Float(allow_none=True, validate=validate.Range(0, 168))
    quota_hours_per_month = fields.Float(allow_none=True, validate=validate.Range(0, 744))


def _premises_fields(required: bool) -> dict[str, fields.Field[Any]]:
    short = validate.Length(min=1, max=300)
    features = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(max=50)
    )
    return {
        "name": Localised(required=required),
        "description": Localised(),
        "address": Text(required=required, validate=short),
        "district": Text(required=required, validate=validate.Length(1, 100)),
        "capacity": fields.Integer(
            strict=True, required=required, validate=validate.Range(1, 100_000)
        ),
        "free_of_charge": JsonBoolean(),
        "hourly_price_cents": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(0, 100_000_000)
        ),
        "free_use_conditions": Localised(),
        "accessibility": features,
        "equipment": features,
        "timezone": Text(validate=validate.Length(1, 64)),
        "opening_hours": OpeningHoursField(required=required),
        "rules": fields.Nested(RulesSchema),
        "spaces": fields.List(
            # The pattern is checked by the domain (booking.domain.spaces.space_problems),
            # which lets a premises' own spaces of older spelling be sent back as they are.
            Text(validate=[validate.Length(1, 100), not_blank], metadata={"pattern": ID_PATTERN}),
            validate=[validate.Length(1, 20, error="Name 1 to 20 spaces."), _each_once],
            metadata={
                "description": "The pieces of floor the premises occupies (API.md, premises "
                "made of spaces): premises sharing a space never overlap in time. A new id "
                "creates the space; a space id is written as a premises id is: "
                + ID_RULE
                + " Default: one space named after the premises."
            },
        ),
    }


def _each_once(spaces: list[str]) -> None:
    if len(set(spaces)) != len(spaces):
        raise ma.ValidationError("Name each space once.")


PremisesCreate = ma.Schema.from_dict(
    {
        "id": Text(
            validate=premises_id,
            metadata={"pattern": ID_PATTERN, "description": f"The premises' slug: {ID_RULE}"},
        ),
        **_premises_fields(required=True),
    },
    name="PremisesCreate",
)
PremisesPatch = ma.Schema.from_dict(_premises_fields(required=False), name="PremisesPatch")


class PremisesOut(ma.Schema):
    id = Text()
    name = fields.Dict()
    description = fields.Dict()
    address = Text()
    district = Text()
    capacity = fields.Integer()
    free_of_charge = fields.Boolean()
    hourly_price_cents = fields.Integer(allow_none=True)
    free_use_conditions = fields.Dict()
    accessibility = fields.List(Text())
    equipment = fields.List(Text())
    timezone = Text()
    opening_hours = fields.Dict()
    rules = fields.Nested(RulesSchema)
    spaces = fields.List(Text())
    retired = fields.Boolean()
    version = fields.Integer()


class PremisesList(ma.Schema):
    premises = fields.List(fields.Nested(PremisesOut))


class PremisesQuery(ma.Schema):
    district = Text()
    min_capacity = fields.Integer(validate=validate.Range(0, 1_000_000))
    feature = fields.List(Text())
    free_of_charge = fields.Boolean()
    q = Text(validate=validate.Length(max=200))
    include_retired = fields.Boolean(load_default=False)


class ClosureIn(ma.Schema):
    start = instant(required=True)
    end = instant(required=True)
    reason = Text(required=True, validate=validate.Length(1, 1000))
    cancel_conflicting = JsonBoolean(load_default=False)


class ClosureOut(ma.Schema):
    id = Text()
    premises_id = Text()
    start = fields.String()
    end = fields.String()
    reason = Text()
    cancelled_bookings = fields.List(Text())


class RetireIn(ma.Schema):
    reason = Text(
        load_default="",
        validate=validate.Length(max=1000),
        metadata={"description": "Why; told to each booker whose booking is cancelled"},
    )
    cancel_conflicting = JsonBoolean(
        load_default=False,
        metadata={
            "description": "Cancel the bookings still to come and reject the pending pop-up "
            "requests (each booker is told why); without it they make a 409"
        },
    )


class RetiredOut(PremisesOut):
    cancelled_bookings = fields.List(Text())
    rejected_popup_requests = fields.List(Text())


class BookingIn(ma.Schema):
    premises_id = Text(required=True, validate=validate.Length(1, 100))
    start = instant(required=True)
    end = instant(required=True)
    title = Text(required=True, validate=[validate.Length(1, 300), not_blank])
    attendees = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100_000))
    public = JsonBoolean(load_default=False)
    notes = Text(load_default="", validate=validate.Length(max=5000))
    organisation_id = Text(metadata={"description": "staff only: book for this organisation"})


class BookingOut(ma.Schema):
    id = Text()
    status = Text()
    premises_id = Text()
    organisation_id = Text(allow_none=True)
    series_id = Text(allow_none=True)
    start = Text()
    end = Text()
    title = Text()
    attendees = fields.Integer()
    public = fields.Boolean()
    notes = Text(allow_none=True, metadata={"description": "null once the booker is erased"})
    version = fields.Integer()
    created_at = Text()
    updated_at = Text()
    late = fields.Boolean(allow_none=True)
    reason = Text(
        allow_none=True,
        metadata={"description": "the canceller's or decider's own words; null when never given"},
    )
    reason_code = fields.String(
        allow_none=True,
        metadata={
            "description": "why the system cancelled or turned it down, as a code; null when "
            "a person did it with their own words",
            "enum": ["premises_closed", "popup_withdrawn", "premises_retired", None],
        },
    )
    reason_text = Text(
        allow_none=True,
        metadata={
            "description": "the whole reason as a sentence in the reader's language (the "
            "token owner's, else Accept-Language: fi, sv, en)"
        },
    )


class BookingList(ma.Schema):
    bookings = fields.List(fields.Nested(BookingOut))


class BookingQuery(ma.Schema):
    from_ = local_date(
        data_key="from",
        metadata={"description": "Bookings that meet this day or later, in their premises' zone"},
    )
    to = local_date(
        metadata={"description": "Bookings that meet this day or earlier, in their premises' zone"}
    )
    premises_id = Text()
    status = Text(
        validate=validate.OneOf(["confirmed", "pending_approval", "cancelled", "rejected"])
    )
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))


class ReasonIn(ma.Schema):
    reason = Text(load_default="", validate=validate.Length(max=2000))


class SeriesIn(BookingIn):
    rrule = Text(required=True, validate=validate.Length(1, 500))
    on_conflict = Text(load_default="skip", validate=validate.OneOf(["skip", "fail"]))


class Skipped(ma.Schema):
    start = Text()
    end = Text()
    reason = Text(
        metadata={"description": "`conflict`, or the rule that was broken (`field: message`)"}
    )
    reason_text = Text(
        metadata={
            "description": "the reason as a sentence in the reader's language (the token "
            "owner's: fi, sv, en)"
        }
    )


class SeriesOut(ma.Schema):
    series_id = Text()
    bookings = fields.List(fields.Nested(BookingOut))
    skipped = fields.List(fields.Nested(Skipped))


class DateRange(ma.Schema):
    from_ = local_date(data_key="from", required=True)
    to = local_date(required=True)


class BusyOut(ma.Schema):
    start = Text()
    end = Text()
    kind = Text()
    title = Text()
    via = Text(
        metadata={
            "description": "Another premises sharing a space with this one holds the time "
            "(a whole hall and its halves); no details of its booker."
        }
    )


class DayOut(ma.Schema):
    date = Text()
    open = fields.List(fields.List(Text()))
    busy = fields.List(fields.Nested(BusyOut))
    free = fields.List(fields.List(Text()))


class AvailabilityOut(ma.Schema):
    premises_id = Text()
    timezone = Text()
    days = fields.List(fields.Nested(DayOut))


class SearchQuery(ma.Schema):
    start = query_instant(required=True)
    end = query_instant(required=True)
    min_capacity = fields.Integer(validate=validate.Range(0, 1_000_000))
    district = Text()
    feature = fields.List(Text())
    free_of_charge = fields.Boolean()


class SearchOut(ma.Schema):
    start = Text()
    end = Text()
    premises = fields.List(fields.Nested(PremisesOut))


class EventsQuery(ma.Schema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(0, MAX_POSITION),
        metadata={
            "description": "Events after this position (a previous page's `next`); a position "
            "beyond the log's head is 422."
        },
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class EventOut(ma.Schema):
    position = fields.Integer()
    stream = Text()
    version = fields.Integer()
    type = Text()
    schema_version = fields.Integer()
    recorded_at = Text()
    data = fields.Dict()


class EventsOut(ma.Schema):
    events = fields.List(fields.Nested(EventOut))
    next = fields.Integer()


class UserIn(ma.Schema):
    email = fields.Email(required=True)
    name = Text(required=True, validate=validate.Length(1, 300))
    role = Text(
        required=True, validate=validate.OneOf(["resident", "booker", "staff", "analyst", "admin"])
    )
    organisation_id = Text(allow_none=True)
    password = Text(validate=validate.Length(8, 200), load_only=True)
    language = Text(load_default="fi", validate=validate.OneOf(["fi", "en", "sv"]))


class OrganisationRefOut(ma.Schema):
    id = Text()
    name = Text()


class UserOut(ma.Schema):
    id = Text()
    email = Text()
    name = Text()
    role = Text()
    organisation_id = Text(allow_none=True)
    language = Text()
    organisations = fields.List(
        fields.Nested(OrganisationRefOut),
        metadata={"description": "users/me: the organisations the person belongs to"},
    )
    token = Text(
        allow_none=True,
        metadata={
            "description": "the user's API token, only in the response that creates the user"
            " and in a replay of its Idempotency-Key (derived again from the key: tokens are"
            " kept only as hashes); null in a replay of an answer from before tokens were"
            " derived"
        },
    )


class OrganisationIn(ma.Schema):
    name = Text(required=True, validate=validate.Length(1, 300))
    type = Text(
        load_default="association", validate=validate.OneOf(["association", "company", "other"])
    )
    business_id = Text(allow_none=True, validate=validate.Regexp(r"^\d{7}-\d$"))


class OrganisationOut(ma.Schema):
    id = Text()
    name = Text()
    type = Text()
    business_id = Text(allow_none=True)
