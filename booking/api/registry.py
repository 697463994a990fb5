"""/api/v1/registry/free-premises: the public register of free-of-charge premises (open data).

The list comes from the asynchronous registry projection (hence `X-Log-Position` and
`?min_position=N`); the next free hour of each premises is worked out at the moment of
asking from the inline availability table, which is always current.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from marshmallow import fields, validate

from booking.api.consistency import handle_not_caught_up, reflected_position
from booking.http import iso, json_response, runtime
from events.opening import WEEKDAYS, OpeningHours, days
from events.slot import Slot, subtract
from events.sql import read_transaction
from projections.availability import busy_between
from projections.registry import listed

blp = Blueprint(
    "api_registry",
    __name__,
    url_prefix="/api/v1",
    description="The free-premises registry (public)",
)
handle_not_caught_up(blp)
HORIZON = timedelta(days=14)
LANGUAGES = ("fi", "en", "sv")


class RegistryQuery(ma.Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    min_position = fields.Integer(validate=validate.Range(0))


class RegistryEntry(ma.Schema):
    id = fields.String()
    name = fields.Dict()
    address = fields.String()
    district = fields.String()
    capacity = fields.Integer()
    accessibility = fields.List(fields.String())
    equipment = fields.List(fields.String())
    opening_hours = fields.Dict()
    free_use_conditions = fields.Dict()
    timezone = fields.String()
    next_free_hour = fields.String(
        allow_none=True,
        metadata={"description": "start of the next whole free hour within 14 days, or null"},
    )


class RegistryOut(ma.Schema):
    premises = fields.List(fields.Nested(RegistryEntry))
    log_position = fields.Integer()


def next_free_hour(
    opening: OpeningHours, zone: ZoneInfo, now: datetime, busy: list[Slot]
) -> datetime | None:
    """The start of the first whole local clock hour from `now` on that is open and free."""
    today = now.astimezone(zone).date()
    intervals = [
        s
        for day in days(today - timedelta(days=1), (now + HORIZON).astimezone(zone).date())
        for s in opening.intervals_on(day, zone)
    ]
    for piece in subtract(intervals, busy):
        at = max(piece.start, now).astimezone(zone)
        if at.minute or at.second or at.microsecond:
            at = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = at.astimezone(UTC)
        if start + timedelta(hours=1) <= piece.end:
            return start
    return None


@blp.route("/registry/free-premises", methods=["GET"])
@blp.arguments(RegistryQuery, location="query")
@blp.response(200, RegistryOut)
@blp.doc(
    responses={
        "200": {
            "content": {
                "application/json": {"schema": RegistryOut},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    }
)  # ?format=csv
def free_premises(query: dict[str, Any]) -> Response:
    """Every free-of-charge premises in use, with where it is, what it has, when it is open,
    on what terms, and its next free hour. `format=csv` gives the same as CSV (UTF-8)."""
    position = reflected_position("registry", query.get("min_position"))
    now = datetime.now(UTC)
    with read_transaction(runtime().engine) as conn:
        rows = listed(conn)
        window = Slot(now - timedelta(days=1), now + HORIZON + timedelta(days=1))
        busy = busy_between(conn, [r.premises_id for r in rows], window) if rows else {}
    entries = []
    for row in rows:
        zone = ZoneInfo(row.timezone)
        spans = [span for _, span in busy.get(row.premises_id, [])]
        free = next_free_hour(OpeningHours.parse(row.opening_hours), zone, now, spans)
        entries.append(
            {
                "id": row.premises_id,
                "name": row.name,
                "address": row.address,
                "district": row.district,
                "capacity": row.capacity,
                "accessibility": row.accessibility,
                "equipment": row.equipment,
                "opening_hours": row.opening_hours,
                "free_use_conditions": row.free_use_conditions,
                "timezone": row.timezone,
                "next_free_hour": iso(free, zone) if free else None,
            }
        )
    headers = {"X-Log-Position": str(position)}
    if query["format"] == "csv":
        return Response(
            _csv(entries),
            mimetype="text/csv",
            headers={**headers, "Content-Disposition": 'attachment; filename="free-premises.csv"'},
        )
    return json_response({"premises": entries, "log_position": position}, headers=headers)


def _hours_text(opening_hours: dict[str, Any]) -> str:
    return "; ".join(
        f"{day} " + ", ".join(f"{a}-{b}" for a, b in opening_hours.get(day, []))
        for day in WEEKDAYS
        if opening_hours.get(day)
    )


def _csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "id",
            *(f"name_{lang}" for lang in LANGUAGES),
            "address",
            "district",
            "capacity",
            "accessibility",
            "equipment",
            "opening_hours",
            *(f"free_use_conditions_{lang}" for lang in LANGUAGES),
            "timezone",
            "next_free_hour",
        ]
    )
    for e in entries:
        writer.writerow(
            [
                e["id"],
                *((e["name"] or {}).get(lang) or "" for lang in LANGUAGES),
                e["address"],
                e["district"],
                e["capacity"],
                ";".join(e["accessibility"]),
                ";".join(e["equipment"]),
                _hours_text(e["opening_hours"]),
                *((e["free_use_conditions"] or {}).get(lang) or "" for lang in LANGUAGES),
                e["timezone"],
                e["next_free_hour"] or "",
            ]
        )
    return out.getvalue()
