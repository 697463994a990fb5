"""A rebuild of the usage projection equals the live one, cell for cell, on a log written
straight into the events table with what its held rebuild treats specially: bookings across
both DST changes of Europe/Helsinki and across midnight, confirmed and pending ones approved,
rejected and cancelled (early, late, after approval), two bookings of one party in one
cell, a booking placed twice, pop-up requests with every outcome; and, in a second log,
what the database may not spread (a party counted under two organisation types, a booking
of no length).

The live projection is fed in batches of 3; the rebuild holds everything, or writes
whenever it holds one row (`HELD_ROWS`), and must take (or not take) the database's
spreading of the cells (`spreading.spread_by_sql`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from booking.clock import system_clock
from events import catalog as c
from events.sql import read_transaction, write_transaction
from events.store import append
from projections import rebuilding, runner
from projections.usage import projection as usage
from projections.usage import spreading

HELSINKI = ZoneInfo("Europe/Helsinki")
RECORDED = datetime(2026, 1, 5, 12, tzinfo=UTC)
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def at(day: str, hh: int, mm: int = 0, fold: int = 0) -> datetime:
    """A Helsinki wall-clock time (fold=1: the second 03:xx of the autumn change)."""
    naive = datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}")
    return naive.replace(tzinfo=HELSINKI, fold=fold).astimezone(UTC)


class Log:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.versions: dict[str, int] = {}

    def add(self, stream: str, *events: c.Event) -> None:
        with write_transaction(self.engine) as conn:
            version = self.versions.get(stream, 0)
            append(conn, stream, list(events), version, now=RECORDED)
            self.versions[stream] = version + len(events)

    def organisation(self, org: str, kind: str) -> None:
        self.add(f"organisation-{org}", c.OrganisationRegistered(org, org, kind, None))

    def premises(self, pid: str, capacity: int = 10) -> None:
        hours = {d: [["08:00", "22:00"]] for d in WEEK}
        self.add(
            f"premises-{pid}",
            c.PremisesRegistered(
                premises_id=pid,
                name={"fi": pid},
                description={"fi": ""},
                address="Katu 1",
                district="keskusta",
                capacity=capacity,
                free_of_charge=True,
                hourly_price_cents=None,
                free_use_conditions={},
                accessibility=[],
                equipment=[],
                timezone="Europe/Helsinki",
                opening_hours=hours,
                rules={"requires_approval": False, "min_notice_minutes": 0},
            ),
        )

    def book(
        self,
        pid: str,
        start: datetime,
        end: datetime,
        org: str | None,
        status: str = "confirmed",
        lead_hours: float = 30,
        booking_id: str | None = None,
    ) -> str:
        booking_id = booking_id or str(uuid.uuid4())
        self.add(
            f"premises-{pid}",
            c.BookingPlaced(
                premises_id=pid,
                booking_id=booking_id,
                organisation_id=org,
                booked_by=f"user-{org or 'person'}",
                start=start,
                end=end,
                title="t",
                attendees=4,
                public=False,
                notes="",
                status=status,
                placed_at=start - timedelta(hours=lead_hours),
                series_id=None,
            ),
        )
        return booking_id

    def approve(self, pid: str, booking_id: str) -> None:
        self.add(f"premises-{pid}", c.BookingApproved(pid, booking_id, "staff", RECORDED))

    def reject(self, pid: str, booking_id: str) -> None:
        self.add(f"premises-{pid}", c.BookingRejected(pid, booking_id, "staff", "r", RECORDED))

    def cancel(self, pid: str, booking_id: str, late: bool) -> None:
        event = c.BookingCancelled(pid, booking_id, "user", "r", late, RECORDED)
        self.add(f"premises-{pid}", event)

    def popup(self, pid: str, start: datetime, outcome: str) -> None:
        request_id = str(uuid.uuid4())
        events: list[c.Event] = [
            c.PopupRequested(
                premises_id=pid,
                request_id=request_id,
                requested_by="person-1",
                start=start,
                end=start + timedelta(hours=1),
                title="t",
                description="",
                expected_attendees=3,
                requested_at=start - timedelta(days=2),
                decision_deadline=start - timedelta(days=1),
            )
        ]
        if outcome == "approved":
            events.append(c.PopupApproved(pid, request_id, str(uuid.uuid4()), "auto", RECORDED))
        elif outcome == "rejected":
            events.append(c.PopupRejected(pid, request_id, "staff", "r", RECORDED))
        elif outcome == "expired":
            events.append(c.PopupExpired(pid, request_id, RECORDED))
        self.add(f"premises-{pid}", *events)


def common_history(log: Log) -> None:
    log.organisation("org-a", "association")
    log.organisation("org-c", "company")
    log.premises("sali")
    log.premises("kerho", capacity=20)
    # Spring change, 2025-03-30: 03:00 does not exist; 02:00-05:00 is two real hours.
    log.book("sali", at("2025-03-30", 2), at("2025-03-30", 5), "org-a")
    # Autumn change, 2025-10-26: 03:00 comes twice; 02:30-05:00 is three and a half.
    autumn = log.book("sali", at("2025-10-26", 2, 30), at("2025-10-26", 5), "org-c", "confirmed")
    # The second 03:00 only, then cancelled late.
    second = log.book("kerho", at("2025-10-26", 3, 0, 1), at("2025-10-26", 4), "org-a")
    log.cancel("kerho", second, late=True)
    # Across midnight; pending, approved, then cancelled early.
    night = log.book(
        "kerho", at("2025-06-06", 22), at("2025-06-07", 1, 30), "org-c", "pending_approval"
    )
    log.approve("kerho", night)
    log.cancel("kerho", night, late=False)
    # Pending and rejected; pending and cancelled; pending and approved.
    log.reject(
        "sali",
        log.book("sali", at("2025-06-10", 10), at("2025-06-10", 12), "org-a", "pending_approval"),
    )
    log.cancel(
        "sali",
        log.book("sali", at("2025-06-11", 10), at("2025-06-11", 11), "org-a", "pending_approval"),
        late=True,
    )
    log.approve(
        "sali",
        log.book(
            "sali", at("2025-06-12", 10), at("2025-06-12", 13), None, "pending_approval", 2000
        ),
    )
    # One party twice in one cell (10:00-10:20 and 10:40-11:10), and a person's booking.
    log.book("sali", at("2025-06-13", 10), at("2025-06-13", 10, 20), "org-a", lead_hours=0.5)
    log.book("sali", at("2025-06-13", 10, 40), at("2025-06-13", 11, 10), "org-a", lead_hours=5)
    log.book("kerho", at("2025-06-13", 10), at("2025-06-13", 12), None, lead_hours=100)
    # The same booking placed twice (its first counts stay: the projection's own rule).
    log.book("sali", at("2025-06-14", 9), at("2025-06-14", 10), "org-a", booking_id="twice")
    log.book("sali", at("2025-06-14", 12), at("2025-06-14", 14), "org-a", booking_id="twice")
    log.cancel("sali", "twice", late=False)
    # Pop-up requests: their cells meet a booking's (the person's, at 10:00 in kerho).
    for outcome in ("approved", "rejected", "expired", "open"):
        log.popup("kerho", at("2025-06-13", 10, 30), outcome)
    log.popup("sali", at("2025-10-26", 3, 15, 1), "approved")
    assert autumn


def complicated_history(log: Log) -> None:
    # org-late's first booking counts as "unknown", its later ones as "company": one party
    # under two organisation types, which only the cells' first touch decides.
    log.premises("sali")
    log.book("sali", at("2025-05-05", 10), at("2025-05-05", 12), "org-late")
    log.organisation("org-late", "company")
    log.book("sali", at("2025-05-05", 11), at("2025-05-05", 13), "org-late")
    log.book("sali", at("2025-05-04", 11), at("2025-05-04", 13), "org-late")
    # A booking of no length: only what lands in its start cell outside its use counts.
    empty = log.book("sali", at("2025-05-06", 10), at("2025-05-06", 10), "org-late")
    log.cancel("sali", empty, late=True)


def usage_rows(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with read_transaction(engine) as conn:
        return rebuilding.contents(conn, usage.Usage())


def rebuilt(engine: Engine, held: int, spread: list[bool]) -> dict[str, list[tuple[object, ...]]]:
    real = spreading.spread_by_sql

    def spy(*args: Any, **kwargs: Any) -> bool:
        took = real(*args, **kwargs)
        spread.append(took)
        return took

    with (
        mock.patch.object(usage, "HELD_ROWS", held),
        mock.patch.object(usage, "spread_by_sql", spy),
    ):
        rebuilding.rebuild_asynchronous(engine, [usage.Usage()], batch_size=4, clock=system_clock)
    return usage_rows(engine)


@pytest.mark.parametrize("held", [usage.HELD_ROWS, 1])
def test_a_rebuild_spread_by_the_database_equals_the_live_cells(engine: Engine, held: int) -> None:
    common_history(Log(engine))
    runner.catch_up(engine, batch_size=3, clock=system_clock)
    live = usage_rows(engine)
    spread: list[bool] = []
    assert rebuilt(engine, held, spread) == live
    assert spread and all(spread)
    t = usage.Usage().t
    with read_transaction(engine) as conn:
        cells = conn.execute(
            select(t["cells"].c.day, t["cells"].c.hour, t["cells"].c.booked_s).where(
                t["cells"].c.premises_id == "sali", t["cells"].c.party == "org-c"
            )
        ).all()
    # 02:30-05:00 on the autumn day: 1,800 s at 02, two real hours at 03, 3,600 s at 04.
    assert sorted((str(d), h, s) for d, h, s in cells) == [
        ("2025-10-26", 2, 1800),
        ("2025-10-26", 3, 7200),
        ("2025-10-26", 4, 3600),
    ]
    assert live["usage_cells"] and live["usage_days"] and live["usage_hours"]
    # A cancelled booking keeps its cells, at zero: 22:00-01:30 over two dates.
    night = [
        r
        for r in live["usage_cells"]
        if r[0] == "kerho" and str(r[1]) in ("2025-06-06", "2025-06-07")
    ]
    assert len(night) == 4


@pytest.mark.parametrize("held", [usage.HELD_ROWS, 1])
def test_what_the_database_may_not_spread_is_spread_in_python(engine: Engine, held: int) -> None:
    complicated_history(Log(engine))
    runner.catch_up(engine, batch_size=3, clock=system_clock)
    live = usage_rows(engine)
    spread: list[bool] = []
    assert rebuilt(engine, held, spread) == live
    assert False in spread
    kinds = {(str(r[1]), r[2]): r[4] for r in live["usage_cells"]}
    assert kinds[("2025-05-05", 11)] == "unknown"  # touched first by the unknown one
    assert kinds[("2025-05-05", 12)] == "company"  # touched by the company one only


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("history", [common_history, complicated_history])
def test_a_final_flush_in_parts_equals_the_live_projection(engine: Engine, history: Any) -> None:
    """SQLite writes a held rebuild's last rows a premises at a time (`FLUSH_PART_ROWS`) and
    its days' and hours' sums a row at a time (`SUM_ROWS`): the same rows as the live
    projection's."""
    history(Log(engine))
    runner.catch_up(engine, batch_size=3, clock=system_clock)
    live = usage_rows(engine)
    with mock.patch.object(usage, "FLUSH_PART_ROWS", 1), mock.patch.object(usage, "SUM_ROWS", 1):
        assert rebuilt(engine, usage.HELD_ROWS, []) == live
    assert live["usage_days"] and live["usage_hours"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("held", [usage.HELD_ROWS, 1])
def test_a_writer_gets_in_while_a_held_rebuild_writes(
    engine: Engine, database_url: str, held: int
) -> None:
    """A writer that comes while a held rebuild writes what it held — at the final flush,
    or (`HELD_ROWS` 1) when it spills between batches — waits for one part of it, not for
    all: each part is a short write transaction followed by a pause. Here spreading a
    part's cells takes 0.4 s per premises in it, six premises: in one transaction the
    writer would wait 2.4 s and give up after its 1.2 s busy timeout."""
    log = Log(engine)
    log.organisation("org-a", "association")
    for n in range(6):
        log.premises(f"sali-{n}")
        log.book(f"sali-{n}", at("2025-05-05", 10), at("2025-05-05", 12), "org-a")
    real = spreading.spread_by_sql
    flushing = threading.Event()
    waited: list[float] = []
    failed: list[Exception] = []

    def slow(conn: Any, cells: Any, shapes: Any, *args: Any) -> bool:
        flushing.set()
        time.sleep(0.4 * len({shape[0] for shape in shapes}))
        return real(conn, cells, shapes, *args)

    def writer() -> None:
        flushing.wait(10)
        time.sleep(0.05)  # well inside the first part's transaction
        probe = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=1.2)
        began = time.monotonic()
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            waited.append(time.monotonic() - began)
        except sqlite3.OperationalError as error:  # database is locked
            failed.append(error)
        finally:
            probe.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with (
            mock.patch.object(usage, "HELD_ROWS", held),
            mock.patch.object(usage, "FLUSH_PART_ROWS", 1),
            mock.patch.object(usage, "spread_by_sql", slow),
        ):
            rebuilding.rebuild_asynchronous(engine, [usage.Usage()], clock=system_clock)
    finally:
        thread.join()
    assert flushing.is_set()
    assert not failed and waited and waited[0] < 1.0
