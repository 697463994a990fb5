"""/api/v1/premises: the catalogue (staff write, everyone reads), closures, retirement and
availability."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from flask import Response, current_app
from flask.views import MethodView
from sqlalchemy import Text, bindparam, cast, select, true
from sqlalchemy.engine import Connection

from booking.api import schemas
from booking.api.blueprint import Blueprint
from booking.api.paging import (
    LINK_HEADER,
    PageQuery,
    limit_field,
    next_field,
    page_headers,
    page_request,
)
from booking.auth import require, signed_in
from booking.cache import caches
from booking.domain.errors import NotFound, RuleBroken
from booking.http import (
    expected_version,
    iso,
    json_response,
    new_id,
    now,
    request_metadata,
    runtime,
    statement_reads,
    write,
)
from booking.queries.paging import MAX_LIMIT
from booking.queries.premises import free_premises_page, premises_json, premises_page

# Re-exported until booking/pages/member.py (house-bookings') reads it from booking.queries.
from booking.queries.premises import premises_row as premises_row
from booking.service import Outcome
from booking.usecases import catalogue
from events import pipeline
from events.opening import OpeningHours
from events.slot import Slot
from events.sql import read_transaction
from projections.availability import busy_between, days_of
from projections.availability_read import BUSY_OF_ONE, busy_of_rows, busy_params
from projections.catalogue import premises_table

blp = Blueprint("premises", __name__, url_prefix="/api/v1", description="The premises catalogue")
MAX_AVAILABILITY_DAYS = 92
MAX_SEARCH_WINDOW = timedelta(days=14)


class PremisesPageQuery(schemas.PremisesQuery, PageQuery):
    # A city's whole catalogue fits one page by default: clients that never page get all.
    limit = limit_field(MAX_LIMIT)


class PremisesPage(schemas.PremisesList):
    next = next_field()


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _acting() -> catalogue.Acting:
    user = signed_in()
    return catalogue.Acting(user.actor, now(), request_metadata(user.id))


@blp.route("/premises")
class PremisesCollection(MethodView):
    @blp.arguments(PremisesPageQuery, location="query")
    @blp.response(200, PremisesPage, headers=LINK_HEADER)
    def get(self, query: dict[str, Any]) -> Response:
        """List premises by id, filtered by district, size, features, free use and text.
        Paged: `limit` rows (default and most 1000) after the cursor `after`; `next` and
        the `Link` header lead to the next page, `next` is null on the last."""
        with read_transaction(runtime().engine) as conn:
            found = premises_page(conn, query, page_request(query))
        return json_response(
            {"premises": [premises_json(r) for r in found.rows], "next": found.next},
            headers=page_headers(found),
        )

    @require("staff", "admin")
    @blp.arguments(schemas.PremisesCreate)
    @blp.response(201, schemas.PremisesOut)
    @blp.alt_response(409, description="The id is taken")
    def post(self, body: dict[str, Any]) -> Response:
        """Register premises (staff). The id is a slug made from the name when omitted."""
        acting = _acting()
        profile = catalogue.with_defaults(body, current_app.config["BOOKING_TIMEZONE"])

        def handle(conn: Connection) -> Outcome:
            done = catalogue.register_premises(
                conn, runtime().premises, acting, profile, body.get("id")
            )
            location = f"/api/v1/premises/{done.premises.id}"
            return Outcome(
                201, premises_json(done.premises), {**_etag(done.version), "Location": location}
            )

        return write(acting.actor.user_id, handle)


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
        acting = _acting()
        if not changes:
            raise RuleBroken({"_schema": ["Nothing to change."]})
        version = expected_version()

        def handle(conn: Connection) -> Outcome:
            done = catalogue.update_premises(
                conn, runtime().premises, acting, premises_id, changes, version
            )
            return Outcome(200, premises_json(done.premises), _etag(done.version))

        return write(acting.actor.user_id, handle)


@blp.route("/premises/<premises_id>/closures", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.ClosureIn)
@blp.response(201, schemas.ClosureOut)
@blp.alt_response(409, description="Bookings exist in the period (see `conflicts`)")
@blp.alt_response(412, description="If-Match names an old version of the premises")
def add_closure(body: dict[str, Any], premises_id: str) -> Response:
    """Close the premises for a period (staff); `cancel_conflicting` cancels bookings in it.
    `If-Match` names the premises' version (a closure does not change it)."""
    acting = _acting()
    slot = _slot(body["start"], body["end"])
    closure_id = new_id()
    version = expected_version()

    def handle(conn: Connection) -> Outcome:
        made = catalogue.add_closure(
            conn,
            runtime().premises,
            acting,
            premises_id,
            closure_id,
            slot,
            body["reason"],
            body["cancel_conflicting"],
            version,
        )
        return Outcome(
            201,
            {
                "id": made.id,
                "premises_id": made.premises_id,
                "start": iso(made.slot.start, made.zone),
                "end": iso(made.slot.end, made.zone),
                "reason": made.reason,
                "cancelled_bookings": made.cancelled_bookings,
            },
        )

    return write(acting.actor.user_id, handle)


@blp.route("/premises/<premises_id>/retire", methods=["POST"])
@require("staff", "admin")
@blp.arguments(schemas.RetireIn, required=False)
@blp.response(200, schemas.RetiredOut)
@blp.alt_response(
    409,
    description="Bookings still to come or pending pop-up requests (listed in `conflicts`); "
    "send `cancel_conflicting: true` to cancel them",
)
@blp.alt_response(412, description="If-Match names an old version")
def retire(body: dict[str, Any], premises_id: str) -> Response:
    """Take the premises out of use (staff): no new bookings, it leaves the registry and the
    search; its history stays in the statistics. The body is optional.

    Bookings that have not ended yet and pending pop-up requests stand in the way: the
    answer is 409 listing them in `conflicts` (`{start, end, kind}`, kind `booking` or
    `hold`), and nothing changes. With `"cancel_conflicting": true` they are cancelled (the
    requests rejected) in the same step, and each booker gets a mail in their own language
    saying that the premises is taken out of use, with `reason`; the answer lists them in
    `cancelled_bookings` and `rejected_popup_requests`."""
    acting = _acting()
    body = body or {}
    version = expected_version()

    def handle(conn: Connection) -> Outcome:
        done = catalogue.retire_premises(
            conn,
            runtime().premises,
            acting,
            premises_id,
            body.get("reason", ""),
            body.get("cancel_conflicting", False),
            version,
        )
        return Outcome(
            200,
            {
                **premises_json(done.premises),
                "cancelled_bookings": done.cancelled_bookings,
                "rejected_popup_requests": done.rejected_popups,
            },
            _etag(done.version),
        )

    return write(acting.actor.user_id, handle)


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
    with statement_reads(runtime().engine) as conn:
        row, busy_rows = _premises_and_busy(conn, premises_id, first, last)
    if row is None:
        raise NotFound(f"No premises {premises_id!r}.")
    # The answer is made of the premises' zone and hours and the busy rows read for the
    # days asked, nothing else (no clock, no person): kept under all of them as the key,
    # it is never stale, and an answer made before a booking on another day of the
    # premises (or on another week) is still found (under bench.load's mix a premises'
    # head moved between two requests for one of its weeks in the same process).
    key = (premises_id, first, last, row, busy_rows)
    made = caches().availability
    body = made.get(key)
    if body is None:
        busy = busy_of_rows(busy_rows, [premises_id])[premises_id]
        body = _availability_body(None, premises_id, row, first, last, busy)
        made.put(key, body, 2 * len(body) + 160 * len(busy_rows))
    return Response(body, mimetype="application/json")


class _Premises(NamedTuple):
    timezone: str
    opening_hours: str  # JSON text: part of the cache's key as it is


# The zone each premises had when last read: what the busy rows read with the premises are
# read for (a premises' zone hardly ever changes; when it has, they are read again).
_ZONES: dict[str, str] = {}


def _premises_and_busy(
    conn: Connection, premises_id: str, first: date, last: date
) -> tuple[_Premises | None, tuple[tuple[Any, ...], ...]]:
    """The premises' zone and hours (None: no such premises) and its busy rows for the
    days asked (`BUSY_OF_ONE`'s columns). On PostgreSQL, once the premises' zone is known
    from an earlier request, one statement reads both (no pipeline: one send, one wait)."""
    zone = _ZONES.get(premises_id) if conn.dialect.name == "postgresql" else None
    if zone is not None:
        params = {"id": premises_id, **busy_params(_window(ZoneInfo(zone), first, last))}
        rows = pipeline.read_one(conn, _PREMISES_WITH_BUSY, params)
        if not rows:
            return None, ()
        row = _Premises(rows[0][0], rows[0][1])
        if row.timezone == zone:
            return row, tuple(r[2:] for r in rows if r[4] is not None)
    else:
        found = conn.execute(_AVAILABILITY_HEAD, {"id": premises_id}).first()
        if found is None:
            return None, ()
        row = _Premises(*found)
    _ZONES[premises_id] = row.timezone  # (moved to another zone since: read for that one)
    params = {"id": premises_id, **busy_params(_window(ZoneInfo(row.timezone), first, last))}
    return row, tuple(tuple(r) for r in conn.execute(BUSY_OF_ONE, params))


def _window(zone: ZoneInfo, first: date, last: date) -> Slot:
    return Slot(
        datetime.combine(first, datetime.min.time(), zone),
        datetime.combine(last + timedelta(days=2), datetime.min.time(), zone),
    )


# The premises' zone and hours (the hours as the JSON text stored: a key, parsed on a miss).
_AVAILABILITY_HEAD = select(
    premises_table.c.timezone, cast(premises_table.c.opening_hours, Text).label("opening_hours")
).where(premises_table.c.id == bindparam("id"))


def _premises_with_busy() -> Any:
    """`_AVAILABILITY_HEAD` and `BUSY_OF_ONE` in one statement: the premises' row joined to
    its busy rows (one row with NULLs when there are none, no row for no premises)."""
    busy = BUSY_OF_ONE.order_by(None).subquery("busy")
    return (
        select(*_AVAILABILITY_HEAD.selected_columns, *busy.c)
        .select_from(premises_table.outerjoin(busy, true()))
        .where(premises_table.c.id == bindparam("id"))
        .order_by(busy.c.start, busy.c.premises_id, busy.c.ref_id)
    )


_PREMISES_WITH_BUSY = _premises_with_busy()


def _availability_body(
    conn: Connection | None,
    premises_id: str,
    row: Any,
    first: date,
    last: date,
    busy: list[Any] | None = None,
) -> bytes:
    zone = ZoneInfo(row.timezone)
    if busy is None:
        assert conn is not None
        busy = busy_between(conn, [premises_id], _window(zone, first, last))[premises_id]
    hours = row.opening_hours
    hours = json.loads(hours) if isinstance(hours, str) else hours
    days = days_of(OpeningHours.parse(hours), zone, first, last, busy)

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


class SearchPageQuery(schemas.SearchQuery, PageQuery):
    # Like the catalogue's list: a city's whole catalogue fits the default page.
    limit = limit_field(MAX_LIMIT)


class SearchPage(schemas.SearchOut):
    next = next_field()


@blp.route("/availability")
@blp.arguments(SearchPageQuery, location="query")
@blp.response(200, SearchPage, headers=LINK_HEADER)
def search(query: dict[str, Any]) -> Response:
    """The premises open and free for the whole window, with the usual filters, by id.
    Public. `start` and `end` may be written into the URL as they are
    (`…T18:00:00+02:00`): the `+` that arrives as a space before the offset is read as the
    `+` it was. Paged: `limit` premises (default and most 1000) after the cursor `after`;
    `next` and the `Link` header lead to the next page, `next` is null on the last."""
    page = page_request(query)
    window = _slot(query["start"], query["end"])
    if window.duration > MAX_SEARCH_WINDOW:
        raise RuleBroken({"end": ["Search a window of at most 14 days."]})
    with statement_reads(runtime().engine) as conn:
        found = free_premises_page(conn, query, window, page)
    # The window is echoed in the service's zone, like the premises' own instants (API.md:
    # instants tied to premises carry their local offset).
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    return json_response(
        {
            "start": iso(window.start, zone),
            "end": iso(window.end, zone),
            "premises": [premises_json(r) for r in found.rows],
            "next": found.next,
        },
        headers=page_headers(found),
    )
