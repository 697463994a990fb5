"""Expiring 10,000 pending pop-up requests whose deadline passed, beside a plain UPDATE.

The path is the scheduler's job (`booking.jobs.Jobs.expire_popups`): per premises one
`ExpirePopups` command decides against the cached state; the `PopupExpired` events of every
premises in the chunk are appended with one INSERT, applied by the inline projections (the
pop-up row changes status, the hold leaves availability) and mailed to the requesters, all
in one transaction. The baseline is one UPDATE of the same 10,000 rows in a table of the
pop-up read model's shape, on the same database. Target: ≤ 5× the baseline's time. CPU time
(this process only: on PostgreSQL it leaves out the server's work) is shown beside it,
since a shared machine stretches wall-clock time.

    python -m bench.expiry [--quick] [--profile] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Index, MetaData, Table, func, insert, select, update

from bench import common
from booking.domain.popups import RequestPopup
from booking.jobs import Jobs
from booking.service import Outcome, execute, run_premises_command
from events.slot import Slot
from events.sql import write_transaction
from events.store import Metadata, events_table
from projections.popups import popups_table

TARGET = 5.0
ALWAYS_OPEN = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
PREMISES = 50

baseline_metadata = MetaData()
baseline_table = Table(
    "bench_popup_requests",
    baseline_metadata,
    *(column._copy() for column in popups_table.columns),
    Index("ix_bench_popup_requests_status_deadline", "status", "decision_deadline"),
)


def _pending_requests(engine: Engine, count: int, now: datetime) -> tuple[Jobs, datetime]:
    """`count` pending requests over `PREMISES` premises, made through the commands."""
    app = common.bench_app(engine)
    repository = common.repository_of(app)
    staff = common.new_person(engine, "staff")
    resident = common.new_person(engine, "resident")
    rules = {"popup_allowed": True, "min_notice_minutes": 0, "popup_max_duration_minutes": 60}
    for n in range(PREMISES):
        profile = common.premises_profile(f"Pop-up {n}", opening_hours=ALWAYS_OPEN, rules=rules)
        common.register_premises(engine, repository, staff.actor, f"popup-{n}", profile)
    first = (now + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    for i in range(count):
        premises_id = f"popup-{i % PREMISES}"
        start = first + timedelta(hours=i // PREMISES)
        command = RequestPopup(
            resident.actor,
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            premises_id,
            Slot(start, start + timedelta(hours=1)),
            "Kirpputori",
            "",
            10,
            now,
        )

        def handle(conn: Any, command: RequestPopup = command, pid: str = premises_id) -> Outcome:
            run_premises_command(conn, repository, pid, command, Metadata(), notify=False)
            return Outcome(201, {})

        execute(engine, handle)
    vault = app.extensions["tilavaraus"].vault
    # Past every deadline: 48 h after the requests, and before the first start minus 1 h.
    return Jobs(engine, repository, vault, None), now + timedelta(hours=48)


def _baseline(engine: Engine, count: int, now: datetime, after: datetime) -> tuple[float, float]:
    """(wall, CPU) seconds of one UPDATE of `count` rows in a table of the pop-ups' shape."""
    baseline_metadata.create_all(engine)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "premises_id": f"popup-{i % PREMISES}",
            "requested_by": "x",
            "status": "pending",
            "start": now,
            "end": now,
            "title": "Kirpputori",
            "description": "",
            "expected_attendees": 10,
            "decision_deadline": now,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i in range(count)
    ]
    with write_transaction(engine) as conn:
        conn.execute(insert(baseline_table), rows)
    t = baseline_table
    began, cpu = time.perf_counter(), time.process_time()
    with write_transaction(engine) as conn:
        changed = conn.execute(
            update(t)
            .where(t.c.status == "pending", t.c.decision_deadline <= after)
            .values(status="expired", updated_at=after, version=t.c.version + 1)
        ).rowcount
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert changed == count, changed
    return elapsed, cpu


def _per_row_baseline(engine: Engine, after: datetime) -> float:
    """The same change one row per transaction: what a job that expires each request on its
    own (as a CRUD service would) pays."""
    t = baseline_table
    with write_transaction(engine) as conn:
        ids = list(conn.execute(select(t.c.id)).scalars())
    began = time.perf_counter()
    for request_id in ids:
        with write_transaction(engine) as conn:
            conn.execute(
                update(t).where(t.c.id == request_id).values(status="pending", updated_at=after)
            )
    return time.perf_counter() - began


def measure(kind: str, engine: Engine, count: int, profile: bool = False) -> list[object]:
    now = datetime.now(UTC)
    setup = time.perf_counter()
    jobs, after = _pending_requests(engine, count, now)
    setup = time.perf_counter() - setup
    if profile:  # where the job's time goes, instead of timing it
        common.profile_calls(
            f"{kind}: expire_popups", lambda _: jobs.expire_popups(after), range(1)
        )
        return [kind, count, "(profiled)"] + [""] * 10
    with write_transaction(engine) as conn:
        before = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
    began, cpu = time.perf_counter(), time.process_time()
    expired = jobs.expire_popups(after)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    with write_transaction(engine) as conn:
        appended = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
    appended -= before
    assert expired == count == appended, (expired, count, appended)
    assert jobs.expire_popups(after) == 0  # a second run finds nothing
    baseline, baseline_cpu = _baseline(engine, count, now, after)
    per_row = _per_row_baseline(engine, after)
    return [
        kind,
        count,
        appended,
        f"{setup:.1f}",
        common.millis(elapsed),
        common.millis(baseline),
        common.ratio(elapsed / baseline),
        f"≤ {TARGET:g}",
        common.millis(cpu),
        common.millis(baseline_cpu),
        common.ratio(cpu / baseline_cpu),
        common.millis(per_row),
        common.ratio(elapsed / per_row),
    ]


def main(argv: list[str] | None = None) -> None:
    found = common.parser(__doc__)
    found.add_argument(
        "--profile", action="store_true", help="print a cProfile of the job instead of timing it"
    )
    args = found.parse_args(argv)
    count = 500 if args.quick else 10_000
    print(f"expiring {count} pending pop-up requests — {common.machine()}\n", flush=True)
    rows = []
    for kind in common.chosen_databases(args):
        with common.migrated_engine(kind, args.postgres) as engine:
            rows.append(measure(kind, engine, count, args.profile))
    common.print_table(
        "pop-up expiry job vs one plain UPDATE of the same rows",
        [
            "database",
            "requests",
            "events appended",
            "setup s",
            "job ms",
            "UPDATE ms",
            "× baseline",
            "target",
            "job cpu ms",
            "UPDATE cpu ms",
            "cpu ×",
            "row-by-row ms",
            "× row-by-row",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
