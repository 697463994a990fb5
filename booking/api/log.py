"""/api/v1/events (admins and integrators) and /healthz."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint as FlaskBlueprint
from flask import Response, request
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.api import schemas
from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER
from booking.auth import require
from booking.domain.errors import RuleBroken
from booking.http import iso, json_response, runtime
from booking.queries.paging import link_header
from events.sql import read_transaction
from events.store import RecordedEvent, head_position, read_all
from projections.catalogue import premises_table
from projections.runner import status

blp = Blueprint("log", __name__, url_prefix="/api/v1", description="The event log")
health = FlaskBlueprint("health", __name__)

# Fields that may hold personal data in some event type: never leave the service by this API.
PERSONAL_FIELDS = frozenset({"notes", "name", "email", "phone", "contact"})


def public_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    if event_type == "PremisesRegistered" or event_type == "PremisesUpdated":
        return data  # a premises' name is catalogue data, not a person's
    if event_type == "OrganisationRegistered":
        return data
    return {k: v for k, v in data.items() if k not in PERSONAL_FIELDS}


# An instant as the log records it (`2026-12-02T08:00:00+00:00`); dates and texts are not.
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}:\d{2}$")


def _premises_of(event: RecordedEvent) -> str | None:
    """The premises an event is about: its stream's, else the one its data names."""
    if event.stream.startswith("premises-"):
        return event.stream.removeprefix("premises-")
    named = event.data.get("premises_id")
    return named if isinstance(named, str) else None


def _zones(conn: Connection, batch: Iterable[RecordedEvent]) -> dict[str, ZoneInfo]:
    wanted = {p for p in map(_premises_of, batch) if p is not None}
    if not wanted:
        return {}
    t = premises_table
    rows = conn.execute(select(t.c.id, t.c.timezone).where(t.c.id.in_(sorted(wanted))))
    return {row.id: ZoneInfo(row.timezone) for row in rows}


def written(value: Any, zone: ZoneInfo | None) -> Any:
    """`value` with every instant in it written as API.md's convention writes instants: in
    the local offset of the premises the event is about, else in UTC with `Z`."""
    if isinstance(value, str):
        return iso(datetime.fromisoformat(value), zone) if _INSTANT.match(value) else value
    if isinstance(value, dict):
        return {k: written(v, zone) for k, v in value.items()}
    if isinstance(value, list):
        return [written(v, zone) for v in value]
    return value


@blp.route("/events", methods=["GET"])
@require("admin")
@blp.arguments(schemas.EventsQuery, location="query")
@blp.response(200, schemas.EventsOut, headers=LINK_HEADER)
def events(query: dict[str, Any]) -> Response:
    """The log after `after`, oldest first; `next` is the position to ask from next. While
    events follow this page, the `Link: <…>; rel="next"` header leads to them (API.md: a
    list that grows without bound is paged with `next` and `Link`). The instants in `data`
    are written like every other instant of the API: in the local offset of the premises
    the event is about (its stream's, or the `premises_id` it names), else in UTC (`Z`);
    `booking events export` keeps them as recorded. An `after` beyond the log's head is 422
    on `after`."""
    with read_transaction(runtime().engine) as conn:
        # One event more than asked tells whether a next page exists now.
        batch = read_all(conn, query["after"], query["limit"] + 1)
        more, batch = len(batch) > query["limit"], batch[: query["limit"]]
        if not batch and query["after"] > (head := head_position(conn)):
            # No `next` ever points past the head: such a cursor would skip the events
            # appended up to it, silently (API.md: a position beyond the head is 422).
            raise RuleBroken(
                {"after": [f"The log has reached position {head}; ask from at most that."]}
            )
        zones = _zones(conn, batch)
    after = batch[-1].position if batch else query["after"]
    return json_response(
        {
            "events": [
                {
                    "position": e.position,
                    "stream": e.stream,
                    "version": e.version,
                    "type": e.type,
                    "schema_version": e.schema_version,
                    "recorded_at": iso(e.recorded_at),
                    "data": written(public_data(e.type, e.data), zones.get(_premises_of(e) or "")),
                }
                for e in batch
            ],
            "next": after,
        },
        headers=link_header(request.url, str(after)) if more else None,
    )


@health.route("/healthz")
def healthz() -> Response:
    try:
        with read_transaction(runtime().engine) as conn:
            head = head_position(conn)
            projections = {s.name: {"position": s.position, "lag": s.lag} for s in status(conn)}
    except Exception:  # the database is what health reports on; any failure is "down"
        return json_response({"status": "unavailable", "database": "down"}, 503)
    return json_response(
        {"status": "ok", "database": "ok", "log_position": head, "projections": projections}
    )
