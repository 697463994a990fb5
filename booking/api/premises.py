"""/api/v1/premises: the catalogue (staff write, everyone reads), closures, retirement and
availability."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.engine import Connection

from booking.api import schemas
from booking.auth import require, signed_in
from booking.cache import caches
from booking.domain.commands import (
    AddClosure,
    RegisterPremises,
    RetirePremises,
    UpdatePremises,
)
from booking.domain.errors import NotFound, RuleBroken
from booking.http import (
    check_changed_once,
    check_if_match,
    expected_version,
    iso,
    json_response,
    now,
    request_metadata,
    runtime,
    statement_reads,
    write,
)
from booking.service import Outcome, run_premises_command
from events.opening import OpeningHours
from events.slot import Slot
from events.sql import read_transaction
from events.store import events_table
from projections.availability import busy_between, days_of, free_for_whole, spaces_table
from projections.catalogue import PROFILE_FIELDS, premises_table

blp = Blueprint("premises", __name__, url_prefix="/api/v1", description="The premises catalogue")
MAX_AVAILABILITY_DAYS = 92
MAX_SEARCH_WINDOW = timedelta(days=14)


def premises_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        **{field: getattr(row, field) for field in PROFILE_FIELDS},
        "retired": row.retired,
        "version": row.version,
    }


def premises_row(conn: Connection, premises_id: str) -> Any:
    row = conn.execute(select(premises_table).where(premises_table.c.id == premises_id)).first()
    if row is None:
        raise NotFound(f"No premises {premises_id!r}.")
    return row


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "premises"


def _free_slug(conn: Connection, name: dict[str, Any]) -> str:
    base = slugify(name.get("fi") or name.get("en") or name.get("sv") or "premises")
    taken = set(
        conn.execute(
            select(premises_table.c.id).where(premises_table.c.id.like(f"{base}%"))
        ).scalars()
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@blp.route("/premises")
class PremisesCollection(MethodView):
    @blp.arguments(schemas.PremisesQuery, location="query")
    @blp.response(200, schemas.PremisesList)
    def get(self, query: dict[str, Any]) -> Response:
        """List premises, filtered by district, size, features, free use and text."""
        with read_transaction(runtime().engine) as conn:
            rows = matching_premises(conn, query)
        return json_response({"premises": [premises_json(r) for r in rows]})

    @require("staff", "admin")
    @blp.arguments(schemas.PremisesCreate)
    @blp.response(201, schemas.PremisesOut)
    @blp.alt_response(409, description="The id is taken")
    def post(self, body: dict[str, Any]) -> Response:
        """Register premises (staff). The id is a slug made from the name when omitted."""
        user = signed_in()
        profile = _with_defaults(body)

        def handle(conn: Connection) -> Outcome:
            premises_id = body.get("id") or _free_slug(conn, profile["name"])
            command = RegisterPremises(user.actor, premises_id, profile)
            run_premises_command(
                conn, runtime().premises, premises_id, command, request_metadata(user.id)
            )
            row = premises_row(conn, premises_id)
            return Outcome(
                201,
                premises_json(row),
                {**_etag(row.version), "Location": f"/api/v1/premises/{premises_id}"},
            )

        return write(user.id, handle)


def _with_defaults(body: dict[str, Any]) -> dict[str, Any]:
    profile = {k: v for k, v in body.items() if k != "id"}
    profile.setdefault("description", {})
    profile.setdefault("free_of_charge", False)
    profile.setdefault("hourly_price_cents", None)
    profile.setdefault("free_use_conditions", {})
    profile.setdefault("accessibility", [])
    profile.setdefault("equipment", [])
    profile.setdefault("timezone", current_app.config["BOOKING_TIMEZONE"])
    profile.setdefault("rules", {})
    return profile


def matching_premises(conn: Connection, query: dict[str, Any]) -> list[Any]:
    t = premises_table
    sql = select(t).order_by(t.c.id)
    if not query.get("include_retired"):
        sql = sql.where(t.c.retired.is_(False))
    if "district" in query:
        sql = sql.where(t.c.district == query["district"])
    if "min_capacity" in query:
        sql = sql.where(t.c.capacity >= query["min_capacity"])
    if "free_of_charge" in query:
        sql = sql.where(t.c.free_of_charge.is_(query["free_of_charge"]))
    if query.get("q"):
        for word in query["q"].casefold().split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql = sql.where(t.c.search_text.like(f"%{escaped}%", escape="\\"))
    rows = conn.execute(sql).all()
    wanted = set(query.get("feature") or ())
    if wanted:
        rows = [r for r in rows if wanted <= set(r.accessibility) | set(r.equipment)]
    return rows


@blp.route("/premises/<premises_id>")
class PremisesItem(MethodView):
    @blp.response(200, schemas.PremisesOut)
    def get(self, premises_id: str) -> Response:
        with read_transaction(runtime().engine) as conn:
            row = premises_row(conn, premises_id)
        return json_response(premises_json(row), headers=_etag(row.version))

    @require("staff", "admin")
    @blp.arguments(schemas.PremisesPatch)
    @blp.response(200, schemas.PremisesOut)
    @blp.alt_response(412, description="If-Match names an old version")
    @blp.alt_response(
        409,
        description="New `spaces` would make the premises' bookings or holds from now on meet "
        "those of premises already on them (`conflicts`, each with `via`)",
    )
    def patch(self, changes: dict[str, Any], premises_id: str) -> Response:
        """Change catalogue data (staff). Send If-Match: "<version>" to avoid lost updates."""
        user = signed_in()
        if not changes:
            raise RuleBroken({"_schema": ["Nothing to change."]})
        command = UpdatePremises(user.actor, premises_id, changes, expected_version(), now())

        def handle(conn: Connection) -> Outcome:
            run_premises_command(
                conn, runtime().premises, premises_id, command, request_metadata(user.id)
            )
            row = premises_row(conn, premises_id)
            return Outcome(200, premises_json(row), _etag(row.version))

        return write(user.id, handle)


@blp.route("/premises/<premises_id>/closures", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.ClosureIn)
@blp.response(201, schemas.ClosureOut)
@blp.alt_response(409, description="Bookings exist in the period (see `conflicts`)")
def add_closure(body: dict[str, Any], premises_id: str) -> Response:
    """Close the premises for a period (staff); `cancel_conflicting` cancels bookings in it."""
    user = signed_in()
    slot = _slot(body["start"], body["end"])
    closure_id = str(uuid.uuid4())
    command = AddClosure(
        user.actor,
        premises_id,
        closure_id,
        slot,
        body["reason"],
        body["cancel_conflicting"],
        datetime.now(UTC),
    )

    def handle(conn: Connection) -> Outcome:
        recorded = run_premises_command(
            conn, runtime().premises, premises_id, command, request_metadata(user.id)
        )
        zone = ZoneInfo(premises_row(conn, premises_id).timezone)
        cancelled = [r.data["booking_id"] for r in recorded if r.type == "BookingCancelled"]
        return Outcome(
            201,
            {
                "id": closure_id,
                "premises_id": premises_id,
                "start": iso(slot.start, zone),
                "end": iso(slot.end, zone),
                "reason": body["reason"],
                "cancelled_bookings": cancelled,
            },
        )

    return write(user.id, handle)


@blp.route("/premises/<premises_id>/retire", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.RetireIn)
@blp.response(200, schemas.PremisesOut)
@blp.alt_response(412, description="If-Match names an old version")
def retire(body: dict[str, Any], premises_id: str) -> Response:
    """Take the premises out of use: no new bookings; its history stays in the statistics."""
    user = signed_in()
    command = RetirePremises(user.actor, premises_id, body["reason"])
    version = expected_version()

    def handle(conn: Connection) -> Outcome:
        check_if_match(version, premises_row(conn, premises_id).version)
        run_premises_command(
            conn, runtime().premises, premises_id, command, request_metadata(user.id)
        )
        row = premises_row(conn, premises_id)
        check_changed_once(version, row.version)
        return Outcome(200, premises_json(row), _etag(row.version))

    return write(user.id, handle)


def _slot(start: datetime, end: datetime) -> Slot:
    if end <= start:
        raise RuleBroken({"end": ["The end must be after the start."]})
    return Slot(start, end)


def _dates(first: date, last: date) -> None:
    if last < first:
        raise RuleBroken({"to": ["`to` must not be before `from`."]})
    if (last - first).days >= MAX_AVAILABILITY_DAYS:
        raise RuleBroken({"to": [f"Ask for at most {MAX_AVAILABILITY_DAYS} days at a time."]})


@blp.route("/premises/<premises_id>/availability")
@blp.arguments(schemas.DateRange, location="query")
@blp.response(200, schemas.AvailabilityOut)
def availability(query: dict[str, Any], premises_id: str) -> Response:
    """Per local day: opening hours, what is busy and what is free. Public."""
    first, last = query["from_"], query["to"]
    _dates(first, last)
    made = caches().availability
    with statement_reads(runtime().engine) as conn:
        row = conn.execute(_AVAILABILITY_HEAD, {"id": premises_id}).first()
        if row is None:
            raise NotFound(f"No premises {premises_id!r}.")
        # Everything the answer shows changes only with an event of the premises' stream
        # (bookings, holds, closures, hours, buffer, zone) or of a premises sharing a space
        # with it (their bookings, holds, closures, buffers and spaces), and the catalogue
        # and availability projections are inline (they commit with the event): the answer
        # made at the last position of those streams is the answer at that position.
        name = (premises_id, first, last)
        body = made.get(name, row.head)
        if body is None:
            body = _availability_body(conn, premises_id, row, first, last)
            made.put(name, row.head, body, len(body))
    return Response(body, mimetype="application/json")


def _availability_head() -> Any:
    """The premises' zone and hours, and the last position of its own stream and of every
    stream of a premises sharing a space with it: one round trip (each stream's last event
    by the (stream, version) key)."""
    mine, theirs, e = spaces_table.alias("mine"), spaces_table.alias("theirs"), events_table
    last = (
        select(e.c.position)
        .where(e.c.stream == literal("premises-") + theirs.c.premises_id)
        .order_by(e.c.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    heads = (
        select(last.label("position"))
        .select_from(mine.join(theirs, theirs.c.space_id == mine.c.space_id))
        .where(mine.c.premises_id == bindparam("id"))
        .subquery()
    )
    return select(
        premises_table.c.timezone,
        premises_table.c.opening_hours,
        select(func.max(heads.c.position)).scalar_subquery().label("head"),
    ).where(premises_table.c.id == bindparam("id"))


_AVAILABILITY_HEAD = _availability_head()


def _availability_body(
    conn: Connection, premises_id: str, row: Any, first: date, last: date
) -> bytes:
    zone = ZoneInfo(row.timezone)
    window = Slot(
        datetime.combine(first, datetime.min.time(), zone),
        datetime.combine(last + timedelta(days=2), datetime.min.time(), zone),
    )
    busy = busy_between(conn, [premises_id], window)[premises_id]
    days = days_of(OpeningHours.parse(row.opening_hours), zone, first, last, busy)

    # A week names a few hundred instants, most of them twice (a busy end is a free start)
    # and converting to the zone is most of the cost of writing one: each is written once.
    written: dict[datetime, str] = {}

    def local(instant: datetime) -> str:
        found = written.get(instant)
        if found is None:
            found = written[instant] = iso(instant, zone)
        return found

    def pair(slot: Slot) -> list[str]:
        return [local(slot.start), local(slot.end)]

    def busy_json(item: Any) -> dict[str, Any]:
        found = {"start": local(item.slot.start), "end": local(item.slot.end)}
        found["kind"] = item.kind
        if item.title is not None:
            found["title"] = item.title
        if item.via is not None:
            found["via"] = item.via
        return found

    return json_bytes(
        {
            "premises_id": premises_id,
            "timezone": row.timezone,
            "days": [
                {
                    "date": day.date.isoformat(),
                    "open": [pair(s) for s in day.open],
                    "busy": [busy_json(b) for b in day.busy],
                    "free": [pair(s) for s in day.free],
                }
                for day in days
            ],
        }
    )


def json_bytes(body: Any) -> bytes:
    """What `json_response` sends, as bytes to keep."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@blp.route("/availability")
@blp.arguments(schemas.SearchQuery, location="query")
@blp.response(200, schemas.SearchOut)
def search(query: dict[str, Any]) -> Response:
    """The premises open and free for the whole window, with the usual filters. Public."""
    window = _slot(query["start"], query["end"])
    if window.duration > MAX_SEARCH_WINDOW:
        raise RuleBroken({"end": ["Search a window of at most 14 days."]})
    with statement_reads(runtime().engine) as conn:
        candidates = matching_premises(conn, query)
        busy = busy_between(conn, [r.id for r in candidates], window) if candidates else {}
    found = [
        row
        for row in candidates
        if free_for_whole(
            OpeningHours.parse(row.opening_hours), ZoneInfo(row.timezone), window, busy[row.id]
        )
    ]
    return json_response(
        {
            "start": iso(window.start),
            "end": iso(window.end),
            "premises": [premises_json(r) for r in found],
        }
    )
