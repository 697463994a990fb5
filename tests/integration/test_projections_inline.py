"""Inline projections on both databases: written in the append's transaction (read your own
writes, a rollback leaves nothing), equal to a rebuild from the log after a varied history,
and consistent with the decider when a premises' buffer changes under existing bookings."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from booking.clock import system_clock
from booking.domain.commands import Actor, BookingRequest, PlaceBooking
from booking.domain.premises import PremisesState, evolve
from booking.service import PremisesRepository, premises_stream, run_premises_command
from events.slot import Slot
from events.sql import read_transaction, write_transaction
from events.store import Metadata, events_table, read_all, read_stream, stream_version
from projections import rebuilding, runner
from projections.availability import busy_table
from projections.bookings import bookings_table
from tests.conftest import Api, future_weekday, local


def inline_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every inline projection's tables, in a stable order."""
    with read_transaction(engine) as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for projection in runner.INLINE
            for table in projection.tables
        }


def assert_rebuild_equals_live(engine: Engine) -> None:
    live = inline_rows(engine)
    assert any(live.values())  # a rebuild of nothing proves nothing
    rebuilding.rebuild(engine, runner.INLINE, clock=system_clock)
    rebuilt = inline_rows(engine)
    for name in live:
        assert rebuilt[name] == live[name], name


def count(engine: Engine, table: Any) -> int:
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def place_command(api: Api, premises_id: str, start: datetime, end: datetime) -> PlaceBooking:
    request = BookingRequest(
        premises_id, Slot(start, end), "Kerhoilta", 3, False, "", api.organisation_id
    )
    actor = Actor("staff-user", "staff", None)
    return PlaceBooking(actor, str(uuid.uuid4()), request, datetime.now(UTC))


# --- same transaction as the append ----------------------------------------------------------


def test_projection_rows_commit_and_roll_back_with_the_events(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    repository: PremisesRepository = api.app.extensions["tilavaraus"].premises
    before_events = count(api.engine, events_table)

    with pytest.raises(RuntimeError), write_transaction(api.engine) as conn:
        command = place_command(api, "room", local(day, 10), local(day, 11))
        run_premises_command(conn, repository, "room", command, Metadata(), now=datetime.now(UTC))
        # Read your own writes: the rows are there inside the transaction …
        mine = conn.execute(select(bookings_table.c.id)).scalars().all()
        assert mine == [command.booking_id]
        # … and nobody else sees them before the commit.
        assert count(api.engine, bookings_table) == 0
        raise RuntimeError("the request failed after the append")

    assert count(api.engine, events_table) == before_events
    assert count(api.engine, bookings_table) == 0
    assert count(api.engine, busy_table) == 0
    placed = api.book("room", local(day, 10), local(day, 11))
    assert placed.status_code == 201, placed.get_json()
    assert count(api.engine, busy_table) == 1


def test_a_rolled_back_transaction_leaves_no_trace_in_the_premises_cache(api: Api) -> None:
    """Two commands on one premises in one transaction: the second loads the first's
    uncommitted events into the cached state. After a rollback they must be gone from it, or
    the slot stays taken (and the cached version runs ahead of the log) until a restart."""
    api.premises("room")
    day = future_weekday(2)
    repository: PremisesRepository = api.app.extensions["tilavaraus"].premises
    with pytest.raises(RuntimeError), write_transaction(api.engine) as conn:
        for hour in (10, 13):
            command = place_command(api, "room", local(day, hour), local(day, hour + 1))
            run_premises_command(
                conn, repository, "room", command, Metadata(), now=datetime.now(UTC)
            )
        raise RuntimeError("rolled back")
    with read_transaction(api.engine) as conn:
        assert stream_version(conn, "premises-room") == 1  # only the registration
    for hour in (10, 13):
        placed = api.book("room", local(day, hour), local(day, hour + 1))
        assert placed.status_code == 201, placed.get_json()

    # The same through a savepoint that rolls back while its transaction commits.
    with write_transaction(api.engine) as conn:
        savepoint = conn.begin_nested()
        for hour in (15, 17):
            command = place_command(api, "room", local(day, hour), local(day, hour + 1))
            run_premises_command(
                conn, repository, "room", command, Metadata(), now=datetime.now(UTC)
            )
        savepoint.rollback()
    placed = api.book("room", local(day, 17), local(day, 18))
    assert placed.status_code == 201, placed.get_json()


def test_a_commit_that_fails_leaves_no_trace_in_the_premises_cache(api: Api) -> None:
    """The kept state takes in what a command appended before the commit; when the commit
    itself fails (here a deferred constraint of the same transaction), no rollback event
    tells anyone, and the next load must still see the log as it is."""
    api.premises("room")
    day = future_weekday(2)
    repository: PremisesRepository = api.app.extensions["tilavaraus"].premises
    with api.engine.connect() as setup:
        setup.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        setup.exec_driver_sql(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )
        setup.commit()
    with pytest.raises(IntegrityError), write_transaction(api.engine) as conn:
        command = place_command(api, "room", local(day, 10), local(day, 11))
        run_premises_command(conn, repository, "room", command, Metadata(), now=datetime.now(UTC))
        conn.exec_driver_sql("INSERT INTO child VALUES (42)")  # refused at COMMIT
    with read_transaction(api.engine) as conn:
        assert stream_version(conn, "premises-room") == 1  # only the registration
    placed = api.book("room", local(day, 10), local(day, 11))
    assert placed.status_code == 201, placed.get_json()
    with read_transaction(api.engine) as conn:
        versions = [r.version for r in read_stream(conn, "premises-room")]
    assert versions == [1, 2]
    assert_kept_states_equal_the_log(api)


# --- a rebuild from the log equals the live projections -------------------------------------


def test_rebuild_equals_live_after_a_varied_history(api: Api) -> None:
    api.premises("hall", rules={"buffer_minutes": 15})
    api.premises("studio", rules={"requires_approval": True})
    day = future_weekday(2)

    kept = api.book("hall", local(day, 9), local(day, 10), public=True, title="Avoin kerho")
    cancelled = api.book("hall", local(day, 12), local(day, 13))
    for response in (kept, cancelled):
        assert response.status_code == 201, response.get_json()
    cancel = api.post(
        f"/api/v1/bookings/{cancelled.get_json()['id']}/cancel",
        {"reason": "sairastuminen"},
        "booker",
    )
    assert cancel.status_code == 200, cancel.get_json()

    doomed = api.book(
        "hall", local(day + timedelta(days=1), 14), local(day + timedelta(days=1), 15)
    )
    assert doomed.status_code == 201, doomed.get_json()
    closure = api.post(
        "/api/v1/premises/hall/closures",
        {
            "start": local(day + timedelta(days=1), 12).isoformat(),
            "end": local(day + timedelta(days=1), 18).isoformat(),
            "reason": "Putkiremontti",
            "cancel_conflicting": True,
        },
        role="staff",
    )
    assert closure.status_code == 201, closure.get_json()
    assert closure.get_json()["cancelled_bookings"] == [doomed.get_json()["id"]]

    series = api.post(
        "/api/v1/booking-series",
        {
            "premises_id": "hall",
            "start": local(day, 18).isoformat(),
            "end": local(day, 20).isoformat(),
            "title": "Viikkotreenit",
            "attendees": 8,
            "rrule": "FREQ=WEEKLY;COUNT=3",
        },
        role="booker",
    )
    assert series.status_code == 201, series.get_json()
    assert len(series.get_json()["bookings"]) == 3

    pending = [api.book("studio", local(day, h), local(day, h + 1)) for h in (10, 12, 14)]
    assert [p.get_json()["status"] for p in pending] == ["pending_approval"] * 3
    approve = api.post(f"/api/v1/bookings/{pending[0].get_json()['id']}/approve", role="staff")
    reject = api.post(
        f"/api/v1/bookings/{pending[1].get_json()['id']}/reject", {"reason": "varattu"}, "staff"
    )
    assert (approve.status_code, reject.status_code) == (200, 200)

    patched = api.patch(
        "/api/v1/premises/hall", {"rules": {"buffer_minutes": 30}, "capacity": 40}, role="staff"
    )
    assert patched.status_code == 200, patched.get_json()

    assert_rebuild_equals_live(api.engine)
    assert_kept_states_equal_the_log(api)


def state_facts(state: PremisesState) -> dict[str, Any]:
    """What a premises state holds, comparable (its indexes by what they give back)."""
    everything = Slot(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    facts = {f.name: getattr(state, f.name) for f in fields(state) if "by_start" not in f.name}
    facts["bookings_by_start"] = [b.booking_id for b in state.bookings_by_start.meeting(everything)]
    facts["popups_by_start"] = [p.request_id for p in state.popups_by_start.meeting(everything)]
    return facts


def assert_kept_states_equal_the_log(api: Api) -> None:
    """The service evolves its kept states by the events it has just appended instead of
    reading them back (`PremisesRepository.advance`): they must equal states built afresh
    from the log."""
    repository: PremisesRepository = api.app.extensions["tilavaraus"].premises
    kept = dict(repository._states)
    assert kept
    with read_transaction(api.engine) as conn:
        for premises_id, state in kept.items():
            fresh = PremisesState(premises_id)
            for recorded in read_stream(conn, premises_stream(premises_id)):
                evolve(fresh, recorded.to_event())
            assert fresh.version == stream_version(conn, premises_stream(premises_id))
            assert state_facts(state) == state_facts(fresh), premises_id


def test_rebuild_reads_old_event_versions_through_the_upcaster(api: Api) -> None:
    api.premises("room")
    start = local(future_weekday(3), 10).astimezone(UTC)
    v1 = {
        "premises_id": "room",
        "booking_id": "old-booking",
        "organisation_id": api.organisation_id,
        "booked_by": "u-1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "title": "Vanha varaus",
        "attendee_count": 11,
        "public": False,
        "notes": "",
        "status": "confirmed",
        "placed_at": (start - timedelta(days=30)).isoformat(),
        "series_id": None,
    }
    with write_transaction(api.engine) as conn:
        conn.execute(
            insert(events_table).values(
                stream="premises-room",
                version=stream_version(conn, "premises-room") + 1,
                type="BookingPlaced",
                schema_version=1,
                data=v1,
                metadata={},
                recorded_at=datetime.now(UTC),
            )
        )
    rebuilding.rebuild(api.engine, runner.INLINE, clock=system_clock)
    got = api.get("/api/v1/bookings/old-booking", role="staff")
    assert got.status_code == 200, got.get_json()
    assert got.get_json()["attendees"] == 11
    # The decider reads it the same way: the slot is taken.
    again = api.book("room", start, start + timedelta(hours=1))
    assert again.status_code == 409, again.get_json()


# --- buffers changing under existing bookings -----------------------------------------------


def test_a_larger_buffer_keeps_adjacent_bookings_and_applies_to_new_ones(api: Api) -> None:
    """Back-to-back bookings placed without a buffer stay valid when one is introduced; on
    PostgreSQL the exclusion constraint used to refuse the projection's update (a 500)."""
    api.premises("room")
    nothing_booked = api.patch("/api/v1/premises/room", {"rules": {"buffer_minutes": 0}}, "staff")
    assert nothing_booked.status_code == 200, nothing_booked.get_json()
    day = future_weekday(2)
    for hour in (10, 11):
        assert api.book("room", local(day, hour), local(day, hour + 1)).status_code == 201
    patched = api.patch("/api/v1/premises/room", {"rules": {"buffer_minutes": 30}}, role="staff")
    assert patched.status_code == 200, patched.get_json()

    # New bookings keep 30 minutes from the old ones; 30 minutes exactly is fine.
    too_close = api.book("room", local(day, 12, 15), local(day, 13))
    assert too_close.status_code == 409, too_close.get_json()
    just_right = api.book("room", local(day, 12, 30), local(day, 13, 30))
    assert just_right.status_code == 201, just_right.get_json()

    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    (today,) = seen["days"]
    assert [b["start"] for b in today["busy"]] == [
        local(day, 10).isoformat(),
        local(day, 11).isoformat(),
        local(day, 12, 30).isoformat(),
    ]
    # Free time shown is what the decider would accept: buffers on both sides.
    assert today["free"] == [
        [local(day, 8).isoformat(), local(day, 9, 30).isoformat()],
        [local(day, 14).isoformat(), local(day, 22).isoformat()],
    ]
    assert_rebuild_equals_live(api.engine)


def test_free_time_follows_a_smaller_buffer(api: Api) -> None:
    api.premises("room", rules={"buffer_minutes": 60})
    day = future_weekday(2)
    assert api.book("room", local(day, 12), local(day, 13)).status_code == 201
    patched = api.patch("/api/v1/premises/room", {"rules": {"buffer_minutes": 15}}, role="staff")
    assert patched.status_code == 200
    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    assert seen["days"][0]["free"] == [
        [local(day, 8).isoformat(), local(day, 11, 45).isoformat()],
        [local(day, 13, 15).isoformat(), local(day, 22).isoformat()],
    ]
    placed = api.book("room", local(day, 13, 15), local(day, 14))
    assert placed.status_code == 201, placed.get_json()
    with read_transaction(api.engine) as conn:
        assert len(read_all(conn, types=["BookingPlaced"])) == 2
    assert_rebuild_equals_live(api.engine)


def test_a_pop_up_approved_after_the_buffer_grew_keeps_its_neighbour(api: Api) -> None:
    """The pending request held 10–11 and a booking took 11:15 under a 15-minute buffer;
    approving the request after the buffer grew to 30 used to hit the exclusion constraint
    on PostgreSQL (a 500)."""
    api.premises("room", rules={"popup_allowed": True, "buffer_minutes": 15})
    day = future_weekday(1, weeks_ahead=1)
    asked = api.post(
        "/api/v1/popup-requests",
        {
            "premises_id": "room",
            "start": local(day, 10).isoformat(),
            "end": local(day, 11).isoformat(),
            "title": "Kirpputori",
            "expected_attendees": 3,
        },
        role="resident",
    )
    assert asked.status_code == 201, asked.get_json()
    assert api.book("room", local(day, 11, 15), local(day, 12)).status_code == 201
    grown = api.patch("/api/v1/premises/room", {"rules": {"buffer_minutes": 30}}, role="staff")
    assert grown.status_code == 200, grown.get_json()
    approved = api.post(f"/api/v1/popup-requests/{asked.get_json()['id']}/approve", role="staff")
    assert approved.status_code == 200, approved.get_json()
    seen = api.get(f"/api/v1/premises/room/availability?from={day}&to={day}").get_json()
    assert [(b["start"], b["kind"]) for b in seen["days"][0]["busy"]] == [
        (local(day, 10).isoformat(), "booking"),
        (local(day, 11, 15).isoformat(), "booking"),
    ]
    assert_rebuild_equals_live(api.engine)
