"""/api/v1/allocation-rounds, /api/v1/applications, /api/v1/allocations: seasonal rounds.

Views translate HTTP to a use case of `booking.usecases.allocation` and back. A round's
`status` is worked out at read time from its instants and whether it was published.
"""

# flask-smorest and our `require` decorator are untyped; everything else here is strict.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking import memberships, reasons
from booking.accounts import User
from booking.allocation.state import status_at
from booking.api.allocation_schemas import (
    AllocationIn,
    AllocationOut,
    AllocationPage,
    AllocationsQuery,
    ApplicationIn,
    ApplicationList,
    ApplicationOut,
    ApplicationPatch,
    ProposalOut,
    PublishedOut,
    RemovedOut,
    RoundIn,
    RoundList,
    RoundOut,
)
from booking.api.blueprint import Blueprint
from booking.api.paging import LINK_HEADER, PageQuery, page_headers, page_request
from booking.api.schemas import ReasonIn
from booking.auth import current_user, require, signed_in, signed_in_strongly
from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, NotFound, RuleBroken
from booking.http import (
    check_if_match,
    expected_version,
    iso,
    json_response,
    new_id,
    now,
    runtime,
    unit_for,
    write,
)
from booking.i18n import reader_language
from booking.queries.paging import fetch_page
from booking.service import Outcome
from booking.usecases import allocation as usecase
from events.sql import read_transaction
from projections.allocation import allocations_table, applications_table, rounds_table

blp = Blueprint(
    "allocation", __name__, url_prefix="/api/v1", description="Seasonal allocation rounds"
)

# --- JSON of rows ----------------------------------------------------------------------------


def _utc(instant_: Any) -> str | None:
    return None if instant_ is None else iso(instant_).replace("+00:00", "Z")


def round_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "status": status_at(
            row.applications_open, row.applications_close, row.published_at, row.season_end, now()
        ),
        "season_start": row.season_start,
        "season_end": row.season_end,
        "applications_open": _utc(row.applications_open),
        "applications_close": _utc(row.applications_close),
        "premises": row.premises,
        "criteria": row.criteria,
        "confirm_days": row.confirm_days,
        "published_at": _utc(row.published_at),
        "confirm_by": _utc(row.confirm_by),
        "version": row.version,
    }


def application_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "round_id": row.round_id,
        "organisation_id": row.organisation_id,
        "status": row.status,
        "purpose": row.purpose,
        "age_group": row.age_group,
        "group_size": row.group_size,
        "sections": row.sections,
        "submitted_at": _utc(row.submitted_at),
        "updated_at": _utc(row.updated_at),
        "version": row.version,
    }


def allocation_json(row: Any, zone: ZoneInfo) -> dict[str, Any]:
    """An allocation (an offer once published): its `confirm_by` belongs to its premises and
    is written in that premises' offset (API.md), the round's own instants in UTC."""
    return {
        "id": row.id,
        "round_id": row.round_id,
        "application_id": row.application_id,
        "organisation_id": row.organisation_id,
        "section": row.section,
        "premises_id": row.premises_id,
        "weekday": row.weekday,
        "start_time": row.start_time,
        "end_time": row.end_time,
        "tier": row.tier,
        "priority": row.priority,
        "premises_rank": row.premises_rank,
        "status": row.status,
        "override_reason": row.override_reason or None,
        "confirm_by": None if row.confirm_by is None else iso(row.confirm_by, zone),
        "series_id": row.series_id,
        "version": row.version,
    }


def skipped_json(skipped: list[dict[str, Any]], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Dates a series or an offer leaves out, in the premises' local offset, with the reason
    in the reader's language as the series API gives it."""
    return [
        {
            **s,
            "start": iso(datetime.fromisoformat(s["start"]), zone),
            "end": iso(datetime.fromisoformat(s["end"]), zone),
            "reason_text": reasons.skipped_reason(s.get("reason", ""), reader_language()),
        }
        if "start" in s
        else s
        for s in skipped
    ]


def _zone(conn: Connection, premises_id: str, known: dict[str, ZoneInfo]) -> ZoneInfo:
    if premises_id not in known:
        known[premises_id] = usecase.zone_of(conn, premises_id)
    return known[premises_id]


def _allocation(conn: Connection, allocation_id: str) -> dict[str, Any]:
    row = _one(conn, allocations_table, allocation_id, "allocation")
    return allocation_json(row, usecase.zone_of(conn, row.premises_id))


def _one(conn: Connection, table: Any, key: str, what: str) -> Any:
    row = conn.execute(select(table).where(table.c.id == key)).first()
    if row is None:
        raise NotFound(f"No {what} {key!r}.")
    return row


def _is_staff(user: User | None) -> bool:
    return user is not None and user.role in ("staff", "admin")


def _member(conn: Connection, user: User, organisation_id: str | None) -> Actor:
    """The caller as a member of `organisation_id` where they belong to it (a person may
    belong to several: booking.memberships), else as they are."""
    mine = {o.id for o in memberships.organisations_of(conn, user.id)}
    return memberships.acting_for(user.actor, organisation_id if organisation_id in mine else None)


# --- rounds ----------------------------------------------------------------------------------


@blp.route("/allocation-rounds", methods=["POST"])
@require("staff", "admin")
@blp.arguments(RoundIn)
@blp.response(201, RoundOut)
def open_round(body: dict[str, Any]) -> Response:
    """Open a round for a season (staff). `criteria` are ordered priority tiers."""
    user = signed_in()
    round_id = new_id()
    at = now()

    def handle(conn: Connection) -> Outcome:
        usecase.open_round(unit_for(conn, user.id), user.actor, round_id, body, at)
        row = _one(conn, rounds_table, round_id, "allocation round")
        return Outcome(201, round_json(row), {"Location": f"/api/v1/allocation-rounds/{round_id}"})

    return write(user.id, handle)


@blp.route("/allocation-rounds", methods=["GET"])
@blp.arguments(PageQuery, location="query")
@blp.response(200, RoundList, headers=LINK_HEADER)
def list_rounds(query: dict[str, Any]) -> Response:
    """Every round, newest season first (public). Paged: `limit` rows (default 100) after
    the cursor `after`; `next` and the `Link` header lead on, null on the last page."""
    t = rounds_table
    with read_transaction(runtime().engine) as conn:
        found = fetch_page(
            conn, select(t), [t.c.season_start, t.c.id], page_request(query), descending=True
        )
        body = {"allocation_rounds": [round_json(r) for r in found.rows], "next": found.next}
        return json_response(body, headers=page_headers(found))


@blp.route("/allocation-rounds/<round_id>", methods=["GET"])
@blp.response(200, RoundOut)
def get_round(round_id: str) -> Response:
    """One round (public); with `unallocated` and `metrics` once a proposal is made."""
    with read_transaction(runtime().engine) as conn:
        row = _one(conn, rounds_table, round_id, "allocation round")
        body = round_json(row)
        if row.published_at is not None or _is_staff(current_user()):
            body["unallocated"] = row.unallocated
            body["metrics"] = row.metrics
        return json_response(body, headers={"ETag": f'"{row.version}"'})


# --- applications -----------------------------------------------------------------------------


@blp.route("/allocation-rounds/<round_id>/applications", methods=["POST"])
@require("booker", "staff", "admin")
@blp.arguments(ApplicationIn)
@blp.response(201, ApplicationOut)
def submit_application(body: dict[str, Any], round_id: str) -> Response:
    """Apply for weekly slots (a booker for its organisation — one in several names which,
    else 422; staff name `organisation_id`). Premises that require strong identification
    take applications only from a strong session (else 403
    `urn:tilavaraus:problem:strong-identity-required`)."""
    user = signed_in()
    application_id = new_id()
    at = now()
    asked = body.pop("organisation_id", None)
    strong = signed_in_strongly()

    def handle(conn: Connection) -> Outcome:
        organisation_id = None
        if user.role == "booker" or asked is not None:
            # A booker's: one of theirs (403), named when several (422); staff's: one that
            # exists (422). Staff naming none are told to below, not given their own.
            organisation_id = memberships.organisation_for_booking(conn, user.actor, asked)
        if organisation_id is None:
            raise RuleBroken({"organisation_id": ["Name the organisation that applies."]})
        usecase.submit_application(
            unit_for(conn, user.id),
            memberships.acting_for(user.actor, organisation_id),
            round_id,
            application_id,
            organisation_id,
            body,
            at,
            strong=strong,
        )
        row = _one(conn, applications_table, application_id, "application")
        return Outcome(
            201, application_json(row), {"Location": f"/api/v1/applications/{application_id}"}
        )

    return write(user.id, handle)


@blp.route("/allocation-rounds/<round_id>/applications", methods=["GET"])
@require()
@blp.arguments(PageQuery, location="query")
@blp.response(200, ApplicationList, headers=LINK_HEADER)
def list_applications(query: dict[str, Any], round_id: str) -> Response:
    """Staff see every application of the round; a booker its organisation's. Oldest first,
    paged: `limit` rows (default 100) after the cursor `after`; `next` and the `Link` header
    lead on, null on the last page."""
    user = signed_in()
    t = applications_table
    sql = select(t).where(t.c.round_id == round_id)
    with read_transaction(runtime().engine) as conn:
        if not _is_staff(user):
            mine = [o.id for o in memberships.organisations_of(conn, user.id)]
            sql = sql.where(t.c.organisation_id.in_(mine))
        _one(conn, rounds_table, round_id, "allocation round")
        found = fetch_page(conn, sql, [t.c.submitted_at, t.c.id], page_request(query))
        body = {"applications": [application_json(r) for r in found.rows], "next": found.next}
        return json_response(body, headers=page_headers(found))


def _visible_application(conn: Connection, user: User, application_id: str) -> Any:
    row = _one(conn, applications_table, application_id, "application")
    if not _is_staff(user) and _member(conn, user, row.organisation_id).organisation_id is None:
        raise NotAllowed("The application is another organisation's.")
    return row


def _application_organisation(conn: Connection, application_id: str) -> str | None:
    t = applications_table
    found = conn.execute(select(t.c.organisation_id).where(t.c.id == application_id)).first()
    return None if found is None else str(found.organisation_id)


@blp.route("/applications/<application_id>", methods=["GET"])
@require()
@blp.response(200, ApplicationOut)
def get_application(application_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        row = _visible_application(conn, user, application_id)
        return json_response(application_json(row), headers={"ETag": f'"{row.version}"'})


@blp.route("/applications/<application_id>", methods=["PATCH"])
@require("booker", "staff", "admin")
@blp.arguments(ApplicationPatch)
@blp.response(200, ApplicationOut)
def update_application(changes: dict[str, Any], application_id: str) -> Response:
    """Change an application while the round is open (`If-Match` with its version)."""
    user = signed_in()
    version = expected_version()
    at = now()
    strong = signed_in_strongly()

    def handle(conn: Connection) -> Outcome:
        actor = _member(conn, user, _application_organisation(conn, application_id))
        usecase.update_application(
            unit_for(conn, user.id), actor, application_id, changes, version, at, strong
        )
        return Outcome(200, application_json(_one(conn, applications_table, application_id, "")))

    return write(user.id, handle)


@blp.route("/applications/<application_id>/withdraw", methods=["POST"])
@require("booker", "staff", "admin")
@blp.response(200, ApplicationOut)
def withdraw_application(application_id: str) -> Response:
    user = signed_in()
    version = expected_version()
    at = now()

    def handle(conn: Connection) -> Outcome:
        actor = _member(conn, user, _application_organisation(conn, application_id))
        usecase.withdraw_application(unit_for(conn, user.id), actor, application_id, version, at)
        return Outcome(200, application_json(_one(conn, applications_table, application_id, "")))

    return write(user.id, handle)


# --- proposal, adjustments, publication -------------------------------------------------------


def _round_write(round_id: str, act: Any, status: int = 200) -> Response:
    """A staff write to the round: If-Match names the round's version."""
    user = signed_in()
    version = expected_version()
    at = now()

    def handle(conn: Connection) -> Outcome:
        row = _one(conn, rounds_table, round_id, "allocation round")
        check_if_match(version, row.version)
        body = act(conn, user, at)
        return Outcome(status, body)

    return write(user.id, handle)


def _allocation_order(a: Any) -> list[Any]:
    """How a round's allocations are listed: by premises, weekday key, start, id (unique)."""
    return [a.c.premises_id, a.c.weekday, a.c.start_time, a.c.id]


def _allocations_body(conn: Connection, row: Any, allocations: Any) -> dict[str, Any]:
    zones: dict[str, ZoneInfo] = {}
    return {
        "round_id": row.id,
        "version": row.version,
        "allocations": [allocation_json(r, _zone(conn, r.premises_id, zones)) for r in allocations],
        "unallocated": row.unallocated or [],
        "metrics": row.metrics or {},
    }


def proposal_json(conn: Connection, round_id: str) -> dict[str, Any]:
    """The round's proposal with all of its allocations (the answer of a proposal or a
    publication: the result of that one act, not a list to page)."""
    row = _one(conn, rounds_table, round_id, "allocation round")
    a = allocations_table
    found = conn.execute(select(a).where(a.c.round_id == round_id).order_by(*_allocation_order(a)))
    return _allocations_body(conn, row, found)


@blp.route("/allocation-rounds/<round_id>/proposal", methods=["POST"])
@require("staff", "admin")
@blp.response(200, ProposalOut)
def make_proposal(round_id: str) -> Response:
    """Propose an allocation by the round's criteria (staff, while `allocating`). The same
    applications give the same proposal; it replaces the current allocations."""

    def act(conn: Connection, user: User, at: Any) -> dict[str, Any]:
        usecase.make_proposal(unit_for(conn, user.id), user.actor, round_id, at)
        return proposal_json(conn, round_id)

    return _round_write(round_id, act)


@blp.route("/allocation-rounds/<round_id>/allocations", methods=["GET"])
@require("staff", "admin")
@blp.arguments(AllocationsQuery, location="query")
@blp.response(200, AllocationPage, headers=LINK_HEADER)
def list_allocations(query: dict[str, Any], round_id: str) -> Response:
    """The round's allocations by premises, weekday and start; `?preview=series` adds, per
    allocation, the season's dates that closures or existing bookings would skip and how many
    would be booked. Paged: `limit` allocations (default 100) after the cursor `after`;
    `next` and the `Link` header lead on, null on the last page. Every page carries the
    round's `version`, `unallocated` and `metrics` whole."""
    user = signed_in()
    rt = runtime()
    page = page_request(query)
    a = allocations_table
    with read_transaction(rt.engine) as conn:
        row = _one(conn, rounds_table, round_id, "allocation round")
        found = fetch_page(
            conn, select(a).where(a.c.round_id == round_id), _allocation_order(a), page
        )
        body = _allocations_body(conn, row, found.rows)
        body["next"] = found.next
        if query.get("preview") == "series" and body["allocations"]:
            state = usecase.load_round(conn, round_id)
            for allocation in body["allocations"]:
                plan = usecase.preview_series(
                    conn,
                    rt.premises,
                    state,
                    state.allocations[allocation["id"]],
                    user.actor,
                    new_id(),
                    now(),
                )
                zone = usecase.zone_of(conn, allocation["premises_id"])
                # In the premises' local offset, with the reason's text, as the offer's and
                # the accepted series' `skipped` are (API.md: allocations' instants are local).
                skipped = skipped_json(plan.skipped, zone)
                allocation["series_preview"] = {"skipped": skipped, "bookings": plan.booked}
        return json_response(body, headers=page_headers(found))


@blp.route("/allocation-rounds/<round_id>/allocations", methods=["POST"])
@require("staff", "admin")
@blp.arguments(AllocationIn)
@blp.response(201, AllocationOut)
def add_allocation(body: dict[str, Any], round_id: str) -> Response:
    """Add an allocation by hand. A shared space taken at that time or a closed premises is
    409; outside the section's wishes, more than `slots_per_week`, a second slot that day or
    another length needs `override_reason` (422 without)."""
    allocation_id = new_id()

    def act(conn: Connection, user: User, at: Any) -> dict[str, Any]:
        usecase.add_allocation(
            unit_for(conn, user.id), user.actor, round_id, allocation_id, body, at
        )
        return _allocation(conn, allocation_id)

    return _round_write(round_id, act, 201)


@blp.route("/allocation-rounds/<round_id>/allocations/<allocation_id>", methods=["DELETE"])
@require("staff", "admin")
@blp.response(200, RemovedOut)
def remove_allocation(round_id: str, allocation_id: str) -> Response:
    def act(conn: Connection, user: User, at: Any) -> dict[str, Any]:
        usecase.remove_allocation(unit_for(conn, user.id), user.actor, round_id, allocation_id, at)
        return {"id": allocation_id, "removed": True}

    return _round_write(round_id, act)


@blp.route("/allocation-rounds/<round_id>/publish", methods=["POST"])
@require("staff", "admin")
@blp.response(200, PublishedOut)
def publish(round_id: str) -> Response:
    """Publish (staff): every allocation becomes an offer to answer by `confirm_by`.

    Each offer holds its weekly time over the season (local wall time) against every
    booking and pop-up request of premises sharing a space with it, until it is accepted
    (the series takes the time over in the same transaction), declined or lapses; the
    availability shows the held time as busy with `kind: "hold"`. `held` counts the dates
    held; a date booked or closed since the proposal is not refused but `skipped` (as the
    series preview lists it), and the series leaves it out too."""

    def act(conn: Connection, user: User, at: Any) -> dict[str, Any]:
        state = usecase.publish(unit_for(conn, user.id), user.actor, round_id, at)
        body = round_json(_one(conn, rounds_table, round_id, "allocation round"))
        body["offers"] = proposal_json(conn, round_id)["allocations"]
        for offer in body["offers"]:
            hold = state.allocations.get(offer["id"], {})
            offer["held"] = hold.get("held", 0)
            zone = usecase.zone_of(conn, offer["premises_id"])
            offer["skipped"] = skipped_json(hold.get("skipped", []), zone)
        return body

    return _round_write(round_id, act)


# --- offers ------------------------------------------------------------------------------------


@blp.route("/allocations/<allocation_id>", methods=["GET"])
@require()
@blp.response(200, AllocationOut)
def get_allocation(allocation_id: str) -> Response:
    user = signed_in()
    with read_transaction(runtime().engine) as conn:
        row = _one(conn, allocations_table, allocation_id, "allocation")
        if not _is_staff(user) and _member(conn, user, row.organisation_id).organisation_id is None:
            raise NotAllowed("The offer is another organisation's.")
        body = allocation_json(row, usecase.zone_of(conn, row.premises_id))
        return json_response(body, headers={"ETag": f'"{row.version}"'})


def _answer(allocation_id: str, accept: bool, reason: str) -> Response:
    user = signed_in()
    version = expected_version()
    at = now()
    series_id = new_id()

    def handle(conn: Connection) -> Outcome:
        row = _one(conn, allocations_table, allocation_id, "allocation")
        actor = _member(conn, user, row.organisation_id)
        if _is_staff(user) or actor.organisation_id == row.organisation_id:
            check_if_match(version, row.version)
        _, placed = usecase.answer_offer(
            unit_for(conn, user.id), actor, allocation_id, accept, series_id, reason, at
        )
        body = _allocation(conn, allocation_id)
        if accept:
            header = next(r.to_event() for r in placed if r.type == "BookingSeriesPlaced")
            zone = usecase.zone_of(conn, body["premises_id"])
            body["skipped"] = skipped_json(getattr(header, "skipped", []), zone)
            body["bookings"] = sum(1 for r in placed if r.type == "BookingPlaced")
        return Outcome(200, body)

    return write(user.id, handle)


@blp.route("/allocations/<allocation_id>/accept", methods=["POST"])
@require("booker", "staff", "admin")
@blp.response(200, AllocationOut)
def accept_offer(allocation_id: str) -> Response:
    """Accept an offer: a weekly booking series over the season is placed (local wall time;
    `skipped` lists the dates that could not be booked)."""
    return _answer(allocation_id, True, "")


@blp.route("/allocations/<allocation_id>/decline", methods=["POST"])
@require("booker", "staff", "admin")
@blp.arguments(ReasonIn)
@blp.response(200, AllocationOut)
def decline_offer(body: dict[str, Any], allocation_id: str) -> Response:
    """Decline an offer: its time is free again for anyone."""
    return _answer(allocation_id, False, body["reason"])
