"""The JSON shapes of the allocation rounds' API (API.md "Seasonal allocation rounds"), as
marshmallow schemas: what requests are checked against and what the OpenAPI document shows."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from booking.allocation.model import WEEKDAYS
from booking.allocation.state import ROUND_STATUSES
from booking.allocation.tiers import (
    AGE_GROUPS,
    CRITERIA,
    MAX_CRITERIA,
    MAX_VALUES,
    MAX_WORD,
    YOUNG,
    criteria_problems,
)
from booking.api.paging import PageQuery, next_field
from booking.api.schemas import JsonBoolean, Localised, instant, local_date, not_blank
from booking.domain.accounts import ORGANISATION_TYPES

CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


def _criteria_values(criteria: list[dict[str, Any]]) -> None:
    """The values each criterion takes (booking.allocation.tiers.criteria_problems)."""
    if problems := criteria_problems(criteria):
        raise ma.ValidationError(problems)


class CriterionIn(ma.Schema):
    key = fields.String(required=True, validate=validate.OneOf(CRITERIA))
    in_ = fields.List(
        fields.String(validate=validate.Length(1, MAX_WORD)),
        data_key="in",
        validate=validate.Length(max=MAX_VALUES),
        metadata={
            "description": "`age_group`: some of "
            + ", ".join(AGE_GROUPS)
            + " (default: "
            + ", ".join(YOUNG)
            + "); `organisation_type`: some of "
            + ", ".join(ORGANISATION_TYPES)
            + " (default: association); `purpose` "
            "(required): words the purpose mentions (case-insensitive; each 1 to "
            f"{MAX_WORD} characters, no spaces at either end); `previous_season`: none, "
            f"leave `in` out. Each value once, at most {MAX_VALUES}; anything else is 422."
        },
    )

    @ma.post_load
    def _named_as_sent(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "in_" in data:
            data["in"] = data.pop("in_")
        return data


class RoundIn(ma.Schema):
    name = Localised(required=True)
    season_start = local_date(required=True)
    season_end = local_date(
        required=True,
        metadata={"description": "On or after `season_start`; a season lasts at most 366 days."},
    )
    applications_open = instant(required=True)
    applications_close = instant(
        required=True,
        metadata={"description": "After `applications_open`, by the season's last day."},
    )
    premises = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        required=True,
        validate=validate.Length(1, 500),
        metadata={"description": "Premises in use, each once."},
    )
    criteria = fields.List(
        fields.Nested(CriterionIn),
        load_default=list,
        validate=[validate.Length(max=MAX_CRITERIA), _criteria_values],
        metadata={"description": "Ordered priority tiers: an application's is the first it meets."},
    )
    confirm_days = fields.Integer(strict=True, load_default=14, validate=validate.Range(1, 90))


class TimeIn(ma.Schema):
    weekday = fields.String(required=True, validate=validate.OneOf(WEEKDAYS))
    from_ = fields.String(required=True, data_key="from", validate=validate.Regexp(CLOCK))
    to = fields.String(required=True, validate=validate.Regexp(CLOCK))
    priority = fields.String(
        load_default="primary", validate=validate.OneOf(["primary", "secondary"])
    )

    @ma.post_load
    def _named_as_sent(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["from"] = data.pop("from_")
        return data


class SectionIn(ma.Schema):
    name = fields.String(required=True, validate=[validate.Length(1, 200), not_blank])
    slots_per_week = fields.Integer(strict=True, required=True, validate=validate.Range(1, 7))
    duration_minutes = fields.Integer(
        strict=True, required=True, validate=validate.Range(15, 24 * 60)
    )
    premises = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        required=True,
        validate=validate.Length(1, 10),
    )
    times = fields.List(fields.Nested(TimeIn), required=True, validate=validate.Length(1, 21))


class ApplicationIn(ma.Schema):
    organisation_id = fields.String(validate=validate.Length(1, 64))
    purpose = fields.String(required=True, validate=[validate.Length(1, 500), not_blank])
    age_group = fields.String(required=True, validate=validate.OneOf(AGE_GROUPS))
    group_size = fields.Integer(strict=True, required=True, validate=validate.Range(1, 10_000))
    terms_accepted = JsonBoolean(required=True)
    sections = fields.List(fields.Nested(SectionIn), required=True, validate=validate.Length(1, 20))


class ApplicationPatch(ma.Schema):
    purpose = fields.String(validate=[validate.Length(1, 500), not_blank])
    age_group = fields.String(validate=validate.OneOf(AGE_GROUPS))
    group_size = fields.Integer(strict=True, validate=validate.Range(1, 10_000))
    sections = fields.List(fields.Nested(SectionIn), validate=validate.Length(1, 20))


class AllocationIn(ma.Schema):
    application_id = fields.String(required=True, validate=validate.Length(1, 64))
    section = fields.String(required=True, validate=validate.Length(1, 200))
    premises_id = fields.String(required=True, validate=validate.Length(1, 100))
    weekday = fields.String(required=True, validate=validate.OneOf(WEEKDAYS))
    start_time = fields.String(required=True, validate=validate.Regexp(CLOCK))
    end_time = fields.String(required=True, validate=validate.Regexp(CLOCK))
    override_reason = fields.String(load_default="", validate=validate.Length(max=2000))


class AllocationsQuery(PageQuery):
    preview = fields.String(
        validate=validate.OneOf(["series"]),
        metadata={"description": "`series`: add each listed allocation's `series_preview`"},
    )


class RoundOut(ma.Schema):
    id = fields.String()
    name = fields.Dict()
    status = fields.String(metadata={"enum": list(ROUND_STATUSES)})
    season_start = fields.String()
    season_end = fields.String()
    applications_open = fields.String()
    applications_close = fields.String()
    premises = fields.List(fields.String())
    criteria = fields.List(fields.Dict())
    confirm_days = fields.Integer()
    published_at = fields.String(allow_none=True)
    confirm_by = fields.String(allow_none=True)
    version = fields.Integer()
    unallocated = fields.List(fields.Dict(), allow_none=True)
    metrics = fields.Dict(allow_none=True)


class RoundList(ma.Schema):
    allocation_rounds = fields.List(fields.Nested(RoundOut))
    next = next_field()


class ApplicationOut(ma.Schema):
    id = fields.String()
    round_id = fields.String()
    organisation_id = fields.String()
    status = fields.String(metadata={"enum": ["submitted", "withdrawn"]})
    purpose = fields.String()
    age_group = fields.String()
    group_size = fields.Integer()
    sections = fields.List(fields.Dict())
    submitted_at = fields.String()
    updated_at = fields.String()
    version = fields.Integer()


class ApplicationList(ma.Schema):
    applications = fields.List(fields.Nested(ApplicationOut))
    next = next_field()


class AllocationOut(ma.Schema):
    id = fields.String()
    round_id = fields.String()
    application_id = fields.String()
    organisation_id = fields.String()
    section = fields.String()
    premises_id = fields.String()
    weekday = fields.String()
    start_time = fields.String()
    end_time = fields.String()
    tier = fields.Integer(allow_none=True)
    priority = fields.String(metadata={"enum": ["primary", "secondary", "outside_wishes"]})
    premises_rank = fields.Integer(allow_none=True)
    status = fields.String(
        metadata={"enum": ["proposed", "offered", "accepted", "declined", "lapsed"]}
    )
    override_reason = fields.String(allow_none=True)
    confirm_by = fields.String(
        allow_none=True,
        metadata={"description": "the offer's answer deadline, in its premises' local offset"},
    )
    series_id = fields.String(allow_none=True)
    version = fields.Integer()
    series_preview = fields.Dict(metadata={"description": "with ?preview=series"})
    skipped = fields.List(
        fields.Dict(),
        metadata={
            "description": "accept: dates not booked; publish: dates the offer does not "
            "hold, taken (booked, held or closed) since the proposal"
        },
    )
    held = fields.Integer(metadata={"description": "publish: dates the offer holds"})
    bookings = fields.Integer(metadata={"description": "accept: occurrences booked"})


class ProposalOut(ma.Schema):
    round_id = fields.String()
    version = fields.Integer()
    allocations = fields.List(fields.Nested(AllocationOut))
    unallocated = fields.List(
        fields.Dict(),
        metadata={
            "description": "{application_id, section, missing_slots, reason (English), "
            "reason_code: no_wishes | one_a_day | left_out | taken, blocked_by: [allocations "
            "holding its wished times]}; mails say the reason in the reader's language"
        },
    )
    metrics = fields.Dict()


class AllocationPage(ProposalOut):
    next = next_field()


class RemovedOut(ma.Schema):
    id = fields.String()
    removed = fields.Boolean()


class PublishedOut(RoundOut):
    offers = fields.List(fields.Nested(AllocationOut))
