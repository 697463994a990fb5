"""After any history, the live asynchronous projections equal a rebuild from the log.

Hypothesis draws histories of bookings (confirmed and pending), approvals, rejections,
cancellations (early and late), closures, changes of opening hours and retirements, with
the runner catching up in batches of random size in between. Then every projection's tables
are compared with a rebuild in batches of random size (the asynchronous ones into fresh
tables, the inline ones replayed in place), with the usage projection holding what it
builds for the whole rebuild or writing it whenever it holds a few rows (`HELD_ROWS`). Runs
on SQLite and PostgreSQL; each example adds premises of its own to the same database.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.clock import system_clock
from booking.domain.commands import (
    Actor,
    AddClosure,
    BookingRequest,
    CancelBooking,
    DecideBooking,
    PlaceBooking,
    RetirePremises,
    UpdatePremises,
)
from booking.domain.errors import DomainError
from booking.service import Outcome, execute, run_premises_command
from events.slot import Slot
from events.sql import read_transaction
from events.store import Metadata
from projections import rebuilding, runner
from projections.usage import projection as usage
from tests.conftest import Api

STAFF = Actor("staff-p", "staff")
FIRST_DAY = datetime(2025, 10, 20, tzinfo=UTC)  # the autumn DST change is in range
EVENING = {d: [["16:00", "01:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
examples = itertools.count()

booking = st.tuples(
    st.just("book"),
    st.integers(0, 1),  # premises
    st.integers(0, 13),  # day
    st.integers(0, 23),  # hour (UTC)
    st.sampled_from([30, 60, 90, 180]),  # minutes
    st.integers(0, 400),  # lead hours
    st.integers(0, 3),  # organisation
    st.integers(1, 12),  # attendees
)
operation = st.one_of(
    booking,
    booking,
    st.tuples(st.just("cancel"), st.integers(0, 50), st.integers(0, 72)),
    st.tuples(st.just("decide"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("close"), st.integers(0, 1), st.integers(0, 13), st.integers(1, 30)),
    st.tuples(st.just("hours"), st.integers(0, 1)),
    st.tuples(st.just("retire"), st.integers(0, 1)),
    st.tuples(st.just("catch_up"), st.integers(1, 7)),
)


def _run(api: Api, premises_id: str, command: Any) -> bool:
    repository = api.app.extensions["tilavaraus"].premises

    def handle(conn: Any) -> Outcome:
        run_premises_command(
            conn, repository, premises_id, command, Metadata("p"), now=datetime.now(UTC)
        )
        return Outcome(200, {})

    try:
        execute(api.engine, handle)
    except DomainError:
        return False
    return True


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(operation, min_size=1, max_size=30),
    batch=st.integers(1, 12),
    held=st.one_of(st.just(usage.HELD_ROWS), st.integers(1, 40)),
)
def test_live_projections_equal_a_rebuild(
    api: Api, history: list[tuple[Any, ...]], batch: int, held: int
) -> None:
    n = next(examples)
    premises = [f"p{n}-open", f"p{n}-approve"]
    if not hasattr(api, "orgs"):
        api.orgs = [
            api.organisation(f"Yhdistys {i}", t)
            for i, t in enumerate(  # type: ignore[attr-defined]
                ("association", "association", "company", "other")
            )
        ]
    api.premises(premises[0], rules={"max_advance_days": 1095, "min_notice_minutes": 0})
    api.premises(
        premises[1],
        opening_hours=EVENING,
        rules={"max_advance_days": 1095, "min_notice_minutes": 0, "requires_approval": True},
    )
    placed: list[tuple[str, str, str, datetime]] = []
    for op in history:
        match op:
            case ("book", p, day, hour, minutes, lead, org, attendees):
                start = FIRST_DAY + timedelta(days=day, hours=hour)
                slot = Slot(start, start + timedelta(minutes=minutes))
                organisation = api.orgs[org]  # type: ignore[attr-defined]
                actor = Actor(f"u-{org}", "booker", organisation)
                booking_id = str(uuid.uuid4())
                request = BookingRequest(premises[p], slot, "t", attendees, False, "", organisation)
                now = start - timedelta(hours=lead)
                if _run(api, premises[p], PlaceBooking(actor, booking_id, request, now)):
                    placed.append((premises[p], booking_id, organisation, start))
            case ("cancel", k, before) if placed:
                p, booking_id, organisation, start = placed[k % len(placed)]
                actor = Actor("u", "booker", organisation)
                now = start - timedelta(hours=before)
                _run(api, p, CancelBooking(actor, booking_id, "r", now))
            case ("decide", k, approve) if placed:
                p, booking_id, _, start = placed[k % len(placed)]
                now = start - timedelta(hours=1)
                _run(api, p, DecideBooking(STAFF, booking_id, approve, "r", now))
            case ("close", p, day, hours):
                start = FIRST_DAY + timedelta(days=day, hours=10)
                slot = Slot(start, start + timedelta(hours=hours))
                command = AddClosure(STAFF, premises[p], str(uuid.uuid4()), slot, "r", True, start)
                _run(api, premises[p], command)
            case ("hours", p):
                changes = {"opening_hours": {"mon": [["10:00", "14:00"]], "sat": []}}
                _run(api, premises[p], UpdatePremises(STAFF, premises[p], changes))
            case ("retire", p):
                _run(api, premises[p], RetirePremises(STAFF, premises[p], "r"))
            case ("catch_up", size):
                runner.catch_up(api.engine, batch_size=size, clock=system_clock)
    runner.catch_up(api.engine, batch_size=4, clock=system_clock)
    # Every projection: the asynchronous ones into fresh tables, the inline ones replayed
    # in batches of `batch` events (a change often meets its booking in an earlier batch).
    names = [p.name for p in runner.ALL]
    with read_transaction(api.engine) as conn:
        live = {name: rebuilding.contents(conn, runner.by_name([name])[0]) for name in names}
    with mock.patch.object(usage, "HELD_ROWS", held):
        rebuilding.rebuild(api.engine, runner.by_name(names), batch_size=batch, clock=system_clock)
    with read_transaction(api.engine) as conn:
        rebuilt = {name: rebuilding.contents(conn, runner.by_name([name])[0]) for name in names}
    for name in names:
        assert rebuilt[name] == live[name], name
