"""The set-based part of a rebuild (`projections.set_replay`) writes what the projections'
own replay writes, on logs made to meet every case it must leave to the projections: old
event versions, instants at other offsets, booking ids that are no UUIDs, buffers, shared
and changed spaces, renames, a booking met in two streams or naming another premises, a
change before its placement, pop-ups and closures. The log is written straight into the
events table; the event-by-event replay (`set_based=False`) is the reference, which the
other rebuild tests prove equal to the live tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from events import catalog as c
from events.serialization import serializer
from events.sql import read_transaction, write_transaction
from events.store import events_table
from projections import rebuilding, runner, set_replay, shadowing

EAST = timezone(timedelta(hours=3))
DAY = datetime(2026, 3, 28, 6, tzinfo=UTC)  # the spring DST change is the next night
RECORDED = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


class Log:
    """Events appended straight to the table, each stream's versions in order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.versions: dict[str, int] = {}

    def add(self, stream: str, event: c.Event, **old: Any) -> None:
        name, version, data = serializer.dump(event)
        if old:  # an older shape of the event: `schema_version` and the data's changes
            version = old.pop("schema_version", version)
            for key in old.pop("drop", ()):
                data.pop(key)
            data.update(old)
        self.versions[stream] = self.versions.get(stream, 0) + 1
        at = RECORDED + timedelta(minutes=len(self.rows))
        self.rows.append(
            {
                "stream": stream,
                "version": self.versions[stream],
                "type": name,
                "schema_version": version,
                "data": data,
                "metadata": {},
                "recorded_at": at,
            }
        )

    def premises(self, pid: str, spaces: list[str] | None = None, buffer: int = 0) -> None:
        event = c.PremisesRegistered(
            premises_id=pid,
            name={"fi": pid},
            description={},
            address=f"Katu {pid}",
            district="keskusta",
            capacity=10,
            free_of_charge=True,
            hourly_price_cents=None,
            free_use_conditions={},
            accessibility=[],
            equipment=[],
            timezone="Europe/Helsinki",
            opening_hours={},
            rules={"buffer_minutes": buffer} if buffer else {},
            spaces=spaces or [],
        )
        self.add(f"premises-{pid}", event)

    def book(
        self,
        pid: str,
        hour: int,
        *,
        booking_id: str | None = None,
        status: str = "confirmed",
        org: str | None = "org-1",
        public: bool = False,
        stream: str | None = None,
        zone: timezone = UTC,
        **old: Any,
    ) -> str:
        booking_id = booking_id or str(uuid.uuid4())
        start = (DAY + timedelta(hours=hour)).astimezone(zone)
        event = c.BookingPlaced(
            premises_id=pid,
            booking_id=booking_id,
            organisation_id=org,
            booked_by="user-1",
            start=start,
            end=start + timedelta(minutes=45, microseconds=hour),
            title=f"Kerho {hour}",
            attendees=hour % 7 + 1,
            public=public,
            notes="",
            status=status,
            placed_at=(start - timedelta(days=2)).astimezone(EAST),
            series_id=None,
        )
        self.add(stream or f"premises-{pid}", event, **old)
        return booking_id

    def approve(self, pid: str, booking_id: str, stream: str | None = None) -> None:
        event = c.BookingApproved(pid, booking_id, "staff", DAY.astimezone(EAST))
        self.add(stream or f"premises-{pid}", event)

    def reject(self, pid: str, booking_id: str) -> None:
        self.add(f"premises-{pid}", c.BookingRejected(pid, booking_id, "staff", "ei", DAY))

    def cancel(
        self,
        pid: str,
        booking_id: str,
        stream: str | None = None,
        cause: str = "premises_closed",
        **old: Any,
    ) -> None:
        event = c.BookingCancelled(pid, booking_id, "user-1", "este", cause == "", DAY, cause)
        self.add(stream or f"premises-{pid}", event, **old)

    def write(self, engine: Engine) -> None:
        with write_transaction(engine) as conn:
            conn.execute(insert(events_table), self.rows)


def a_log_of_every_case() -> tuple[Log, set[str]]:
    """The log, and the premises the set-based step must cover."""
    log = Log()
    for pid in ("plain", "old", "hall", "half", "buffered", "renamed", "hours", "two", "alien"):
        log.premises(pid, spaces={"hall": ["hall"], "half": ["hall", "half-b"]}.get(pid))
    log.premises("buffered2", buffer=30)
    # Version 1 of a registration: no spaces (one, named after the premises).
    log.add("premises-v1", _registered("v1"), schema_version=1, drop=["spaces"])
    log.premises("respaced")
    log.premises("popups")
    for pid in ("plain", "hall", "half", "buffered", "buffered2", "renamed", "hours", "v1"):
        at = 24 if pid == "half" else 0  # the hall's floor: never at the hall's hours
        confirmed = log.book(pid, at + 1, zone=EAST, public=True)
        pending = log.book(pid, at + 3, status="pending_approval", org=None)
        rejected = log.book(pid, at + 5, status="pending_approval")
        cancelled = log.book(pid, at + 7, booking_id=f"B-{pid}")  # no UUID: a UID of its own
        upper = log.book(pid, at + 9, booking_id=str(uuid.uuid4()).upper())
        log.approve(pid, pending)
        log.reject(pid, rejected)
        log.cancel(pid, cancelled, cause="")  # a person's: no reason code
        log.cancel(pid, confirmed)
        log.approve(pid, confirmed)  # after the cancellation: nothing left to approve
        log.cancel(pid, upper, reason="The premises is closed: Putki")
        early = str(uuid.uuid4())
        log.cancel(pid, early)  # before its placement: the replay meets no row
        log.book(pid, at + 11, booking_id=early, status="pending_approval")
    # Old versions: a v1 placement and a v1 cancellation (legacy reason) on their premises.
    old = log.book("old", 1, attendee_count=4, schema_version=1, drop=["attendees"])
    log.book("old", 3)
    log.cancel("old", old, reason="The premises is closed: Putki", schema_version=1, drop=["cause"])
    log.add("premises-renamed", c.PremisesUpdated("renamed", {"name": {"fi": "Uusi"}}))
    log.add("premises-hours", c.PremisesUpdated("hours", {"opening_hours": {"mon": []}}))
    log.book("hours", 13)
    log.book("respaced", 1)
    log.add("premises-respaced", c.PremisesUpdated("respaced", {"spaces": ["respaced", "r2"]}))
    log.add("premises-buffered", c.PremisesUpdated("buffered", {"rules": {"buffer_minutes": 20}}))
    # A booking whose change is in another premises' stream: neither stream is covered.
    wandering = log.book("two", 1)
    log.cancel("two", wandering, stream="premises-alien")
    log.book("alien", 5)
    # A booking naming another premises than its stream's.
    log.book("plain", 15, stream="premises-v1")
    # Pop-ups and a closure beside covered bookings.
    start = DAY + timedelta(hours=20)
    request = c.PopupRequested(
        "popups", "req-1", "resident", start, start + timedelta(hours=1), "Kirppis", "x", 5,
        DAY, DAY + timedelta(hours=2),
    )  # fmt: skip
    log.add("premises-popups", request)
    log.add("premises-popups", c.PopupApproved("popups", "req-1", "b-req-1", "staff", DAY))
    log.book("popups", 20, booking_id="b-req-1")
    log.add("premises-popups", c.ClosureAdded("popups", "closure-1", DAY, DAY, "Remontti"))
    log.book("popups", 22)
    return log, {"plain", "hours", "popups"}


def _registered(pid: str) -> c.PremisesRegistered:
    log = Log()
    log.premises(pid)
    return serializer.load("PremisesRegistered", 2, log.rows[0]["data"])  # type: ignore[return-value]


def inline_contents(engine: Engine) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return {p.name: rebuilding.contents(conn, p) for p in runner.INLINE}


@pytest.mark.parametrize("batch_size", [3, 20_000])
def test_the_set_based_step_writes_what_the_replay_writes(
    engine: Engine, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, expected = a_log_of_every_case()
    log.write(engine)
    shadowing.rebuild_inline(engine, runner.INLINE, batch_size, set_based=False)
    replayed = inline_contents(engine)
    plans: list[set_replay.Plan | None] = []
    planned = set_replay.plan

    def spied(*args: Any) -> set_replay.Plan | None:
        plans.append(planned(*args))
        return plans[-1]

    monkeypatch.setattr(set_replay, "plan", spied)
    count = shadowing.rebuild_inline(engine, runner.INLINE, batch_size)
    assert count == sum(1 for row in log.rows if row["type"] in _handled())
    (plan,) = plans
    assert plan is not None
    assert set(plan.streams) == {f"premises-{p}" for p in expected}
    rebuilt = inline_contents(engine)
    for name, tables in replayed.items():
        for table, rows in tables.items():
            got = rebuilt[name][table]
            assert got == rows, (table, set(got) - set(rows), set(rows) - set(got))
    assert len(replayed["bookings"]["booking_list"]) > 50
    with read_transaction(engine) as conn:
        left = conn.exec_driver_sql(
            "SELECT count(*) FROM booking_list WHERE status = 'cancelled'"
        ).scalar_one()
    assert left >= 16


def _handled() -> frozenset[str]:
    return frozenset().union(*(p.handled_types() for p in runner.INLINE))
