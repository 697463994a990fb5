"""Expiring 10,000 pending pop-up requests whose deadline passed, beside a plain UPDATE.

The path is the scheduler's job (`booking.jobs.Jobs.expire_popups`): per premises one
`ExpirePopups` command decides against the cached state; the `PopupExpired` events of every
premises in the chunk are appended with one INSERT, applied by the inline projections (the
pop-up row changes status, the hold leaves availability) and mailed to the requesters, all
in one transaction. The baseline is one UPDATE of the same 10,000 rows in a table of the
pop-up read model's shape, on the same database. Target: ≤ 5× the baseline's time. CPU time
(this process only: on PostgreSQL it leaves out the server's work) is shown beside it,
since a shared machine stretches wall-clock time.

Beside the job, the floor: the database work alone that the expiry must do, with no Python
per row — four set-based statements in one transaction on the same pending requests (the
pop-up rows and holds are put back as they were before the job; the events stay, so the
floor's `PopupExpired` follow at the streams' next versions): an INSERT … SELECT of one
event per request (its JSON built by the database, `json_object` or `jsonb_build_object`),
an INSERT … SELECT of one mail per request (a fixed subject and body: one of the job's own
mails, so each row weighs what a real one does), the DELETE of the holds and the UPDATE of
the pop-up rows, by the baseline's predicate (run last: it changes what the others select).
Each statement is timed (wall and this process's CPU) and checked to have written one row
per request; the run raises if one did not. On PostgreSQL the floor skips the job's locks
(premises advisory locks, the events table's append lock): uncontended, they cost little.

Rounds (`--rounds`, default 3): the pending requests are made once; each round runs the job,
the floor and the UPDATE on a copy of that database (SQLite's backup, PostgreSQL's CREATE
DATABASE … TEMPLATE), with the premises cache the job kept from the setup — what a running
scheduler has. The job/floor ratio is given per round and as the median. CPU on PostgreSQL
is this process's plus the server's: the CPU time of the bench database's backends, read
from /proc when the server runs on this machine ("—" otherwise), so that the ratio of CPU
says what the machine spent on each whatever else ran beside it.

    python -m bench.expiry [--quick] [--profile] [--rounds N] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql import ColumnElement, Executable

from bench import common
from booking.domain.popups import RequestPopup
from booking.jobs import SCHEDULER, Jobs
from booking.outbox import outbox
from booking.service import Outcome, execute, premises_stream, run_premises_command
from events.catalog import PopupExpired
from events.serialization import serializer
from events.slot import Slot
from events.sql import (
    UTCDateTime,
    make_engine,
    one_of,
    one_of_chunks,
    read_transaction,
    write_transaction,
)
from events.store import Metadata, events_table
from projections.availability import busy_table
from projections.popups import popups_table

TARGET = 5.0
ALWAYS_OPEN = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
PREMISES = 50
JOB = "job: Jobs.expire_popups"
FLOOR = "floor: the four writes as set-based SQL (no Python)"

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
            run_premises_command(
                conn, repository, pid, command, Metadata(), notify=False, now=datetime.now(UTC)
            )
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


def _due(after: datetime) -> ColumnElement[bool]:
    """The requests to expire: the job's and the baseline's predicate."""
    p = popups_table
    return and_(p.c.status == "pending", p.c.decision_deadline <= after)


@dataclass(frozen=True)
class Snapshot:
    """The due requests' pop-up rows and holds as they were before the job."""

    popups: list[dict[str, Any]]
    holds: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.popups]


def _snapshot(engine: Engine, after: datetime) -> Snapshot:
    p, b = popups_table, busy_table
    due_keys = select(p.c.premises_id, p.c.id).where(_due(after))
    with read_transaction(engine) as conn:
        popups = [dict(row) for row in conn.execute(select(p).where(_due(after))).mappings()]
        holds = [
            dict(row)
            for row in conn.execute(
                select(b).where(
                    b.c.kind == "hold", tuple_(b.c.premises_id, b.c.ref_id).in_(due_keys)
                )
            ).mappings()
        ]
    return Snapshot(popups, holds)


def _restore(engine: Engine, snapshot: Snapshot) -> None:
    """Put the pop-up rows and holds back as they were before the job (the events and mails
    it wrote stay: the log is append-only). On PostgreSQL the dead rows the job and this left
    are vacuumed, so the floor does not wade through them."""
    p = popups_table
    with write_transaction(engine) as conn:
        dialect = conn.dialect.name
        for chunk in one_of_chunks(snapshot.ids):
            conn.execute(delete(p).where(one_of(p.c.id, "ids", dialect)), {"ids": list(chunk)})
        conn.execute(insert(p), snapshot.popups)
        conn.execute(insert(busy_table), snapshot.holds)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE popup_requests, availability_busy, events, outbox")


def _count(conn: Connection, table: Table, *where: ColumnElement[bool]) -> int:
    found: int = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    return found


def _json_object(dialect: str, *pairs: tuple[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """A JSON object built by the database: `json_object` on SQLite, `jsonb_build_object`
    on PostgreSQL (the events' `data` and `metadata` are JSONB there)."""
    build = func.jsonb_build_object if dialect == "postgresql" else func.json_object
    arguments: list[ColumnElement[Any]] = []
    for key, value in pairs:
        arguments += [literal_column(f"'{key}'", String), value]
    return build(*arguments)


def _text(value: str) -> ColumnElement[str]:
    """A constant string, typed: PostgreSQL cannot infer an untyped parameter's type inside
    the JSON builders' variadic arguments."""
    return cast(literal(value, String), String)


@dataclass(frozen=True)
class FloorStep:
    name: str
    rows: int
    wall: float
    cpu: float


def _floor_statements(
    dialect: str, after: datetime, now: datetime, subject: str, body: str
) -> list[tuple[str, Executable]]:
    """The four writes of an expiry as set-based statements, in the order they run (the
    UPDATE last: it changes what the others select)."""
    p, e, b, o = popups_table, events_table, busy_table, outbox
    # The event's name, schema version and keys as the serializer writes them.
    name, schema_version, data = serializer.dump(PopupExpired("p", "r", after))
    if sorted(data) != ["expired_at", "premises_id", "request_id"]:
        raise RuntimeError(f"PopupExpired changed shape: {sorted(data)}; update the floor")
    stream = _text(premises_stream("")) + p.c.premises_id
    # The stream's next versions: its head (`max` of the UNIQUE (stream, version) index)
    # plus the request's number within its premises.
    number = func.row_number().over(partition_by=p.c.premises_id, order_by=p.c.id)
    heads = None
    if dialect == "postgresql":
        # The head once per premises, joined: a seek per row would walk, in the index, past
        # the entries this very statement has inserted (invisible to it, each a heap visit:
        # ~100 per row at 10,000 requests over 50 premises, +0.1 s). MATERIALIZED, or the
        # planner moves the seek up to the window, once per row again; the window's sort
        # drains the join before the first row is inserted.
        premises = select(p.c.premises_id).where(_due(after)).distinct().subquery("premises")
        heads = select(
            premises.c.premises_id,
            select(func.max(e.c.version))
            .where(e.c.stream == _text(premises_stream("")) + premises.c.premises_id)
            .scalar_subquery()
            .label("head"),
        ).cte("heads")
        heads = heads.prefix_with("MATERIALIZED")
        version = number + heads.c.head
    else:
        # A seek per row: SQLite runs the whole SELECT before inserting (it reads the
        # target table), and with the heads joined instead it looped over them per row.
        head = select(func.max(e.c.version)).where(e.c.stream == stream).scalar_subquery()
        version = number + head
    recorded = literal(now, UTCDateTime())
    source = select(
        stream,
        version,
        _text(name),
        literal(schema_version, Integer),
        _json_object(
            dialect,
            ("premises_id", p.c.premises_id),
            ("request_id", p.c.id),
            ("expired_at", _text(str(data["expired_at"]))),
        ),
        _json_object(dialect, ("actor", _text(SCHEDULER.actor or ""))),
        recorded,
    ).where(_due(after))
    if heads is not None:
        source = source.join_from(p, heads, heads.c.premises_id == p.c.premises_id)
    events = insert(e).from_select(
        ["stream", "version", "type", "schema_version", "data", "metadata", "recorded_at"],
        source,
    )
    # The job's dedupe key is stream:version:recipient; stream:request (one recipient per
    # request) is as unique and as long, and needs no second numbering of the versions.
    mails = insert(o).from_select(
        [
            "dedupe_key",
            "recipient_id",
            "language",
            "subject",
            "body",
            "created_at",
            "next_attempt_at",
            "attempts",
        ],
        select(
            stream + _text(":") + p.c.id,
            p.c.requested_by,
            _text("fi"),
            _text(subject),
            _text(body),
            recorded,
            recorded,
            literal(0, Integer),
        ).where(_due(after)),
    )
    holds = delete(b).where(
        b.c.kind == "hold",
        tuple_(b.c.premises_id, b.c.ref_id).in_(select(p.c.premises_id, p.c.id).where(_due(after))),
    )
    expire = (
        update(p)
        .where(_due(after))
        .values(status="expired", updated_at=after, version=p.c.version + 1)
    )
    return [
        ("INSERT … SELECT events (PopupExpired, JSON in SQL)", events),
        ("INSERT … SELECT outbox (one mail per request)", mails),
        ("DELETE availability_busy holds", holds),
        ("UPDATE popup_requests status = expired", expire),
    ]


def _floor(engine: Engine, snapshot: Snapshot, after: datetime) -> list[FloorStep]:
    """The expiry's writes as four set-based statements in one transaction, on the state the
    job started from; each statement's (wall, CPU) and the BEGIN/COMMIT around them. Raises
    unless every statement wrote one row per request and the log has no gaps."""
    count = len(snapshot.popups)
    with read_transaction(engine) as conn:
        # A real mail of the job: the floor's rows weigh what its rows weigh.
        subject, body = conn.execute(
            select(outbox.c.subject, outbox.c.body).order_by(outbox.c.id).limit(1)
        ).one()
        events_before = _count(conn, events_table)
        mails_before = _count(conn, outbox)
    statements = _floor_statements(engine.dialect.name, after, datetime.now(UTC), subject, body)
    steps = []
    began, cpu = time.perf_counter(), time.process_time()
    with write_transaction(engine) as conn:
        for name, statement in statements:
            step, step_cpu = time.perf_counter(), time.process_time()
            # SQLAlchemy keeps an INSERT's row count only when asked …
            changed = conn.execute(
                statement, execution_options={"preserve_rowcount": True}
            ).rowcount
            wall_step, cpu_step = time.perf_counter() - step, time.process_time() - step_cpu
            if changed < 0 and conn.dialect.name == "sqlite":
                # … and Python's sqlite3 counts none for a statement led by WITH.
                changed = conn.exec_driver_sql("SELECT changes()").scalar_one()
            steps.append(FloorStep(name, changed, wall_step, cpu_step))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    inside = sum(s.wall for s in steps), sum(s.cpu for s in steps)
    steps.append(FloorStep("BEGIN, COMMIT", 0, wall - inside[0], cpu - inside[1]))
    steps.append(FloorStep("total", count, wall, cpu))
    p, b, e = popups_table, busy_table, events_table
    ids = snapshot.ids
    with read_transaction(engine) as conn:
        # Each of these must be `count` …
        written = {
            "holds before the job": len(snapshot.holds),
            **{s.name: s.rows for s in steps[:4]},
            "events appended": _count(conn, e) - events_before,
            "mails queued": _count(conn, outbox) - mails_before,
            "requests expired": _count(conn, p, p.c.status == "expired", p.c.id.in_(ids)),
        }
        # … and each of these 0.
        left = {
            "requests still due": _count(conn, p, _due(after)),
            "holds left": _count(conn, b, b.c.ref_id.in_(ids)),
            # Every stream's versions run 1…n: the floor's follow the job's with no gap.
            "streams with a gap": conn.execute(
                select(func.count()).select_from(
                    select(e.c.stream)
                    .group_by(e.c.stream)
                    .having(func.max(e.c.version) != func.count())
                    .subquery()
                )
            ).scalar_one(),
        }
    wrong = {what: n for what, n in written.items() if n != count}
    wrong.update({what: n for what, n in left.items() if n})
    if wrong:
        raise RuntimeError(f"the floor did not write one row per request ({count}): {wrong}")
    return steps


def _server_cpu(engine: Engine) -> float | None:
    """CPU seconds the PostgreSQL server's backends of this database have used (user and
    system, from /proc: the server must run on this machine), None where that cannot be
    read; 0 on SQLite, which runs in this process."""
    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        pids: list[int] = list(found.scalars())
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def _copy_of(engine: Engine, server: str, round_: int) -> Iterator[Engine]:
    """An engine on a copy of `engine`'s database (whose connections are closed first),
    dropped afterwards."""
    engine.dispose()
    if engine.dialect.name == "sqlite":
        source = engine.url.database or ""
        target = f"{source}.round{round_}"
        with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
            original.backup(copy)
        copied = make_engine(f"sqlite:///{target}")
        try:
            yield copied
        finally:
            copied.dispose()
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(target + suffix):
                    os.remove(target + suffix)
        return
    name = f"{engine.url.database}_round{round_}"
    admin = common._admin(server)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{engine.url.database}"')
        url = make_url(engine.url.render_as_string(hide_password=False)).set(database=name)
        copied = make_engine(url.render_as_string(hide_password=False))
        try:
            yield copied
        finally:
            copied.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@dataclass(frozen=True)
class Round:
    count: int
    job: float  # wall seconds
    job_cpu: float  # this process
    job_server: float | None  # the server's backends (PostgreSQL)
    steps: list[FloorStep]  # the floor's statements, BEGIN/COMMIT, total
    floor_server: float | None
    baseline: float
    baseline_cpu: float
    per_row: float | None

    @property
    def floor(self) -> FloorStep:
        return self.steps[-1]

    def total_cpu(self, cpu: float, server: float | None) -> float | None:
        return None if server is None else cpu + server

    @property
    def ratio(self) -> float:
        return self.job / self.floor.wall

    @property
    def cpu_ratio(self) -> float | None:
        job = self.total_cpu(self.job_cpu, self.job_server)
        floor = self.total_cpu(self.floor.cpu, self.floor_server)
        return None if job is None or floor is None else job / floor


def _round(
    engine: Engine, jobs: Jobs, count: int, now: datetime, after: datetime, first: bool
) -> Round:
    """The job, then the floor on the state the job started from, then the UPDATE."""
    copy = Jobs(engine, jobs.premises, jobs.vault, None)
    snapshot = _snapshot(engine, after)
    with write_transaction(engine) as conn:
        before = _count(conn, events_table)
    server = _server_cpu(engine)
    began, cpu = time.perf_counter(), time.process_time()
    expired = copy.expire_popups(after)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    server_after = _server_cpu(engine)
    with write_transaction(engine) as conn:
        appended = _count(conn, events_table) - before
    assert expired == count == appended == len(snapshot.popups), (expired, count, appended)
    assert copy.expire_popups(after) == 0  # a second run finds nothing
    _restore(engine, snapshot)
    floor_server = _server_cpu(engine)
    steps = _floor(engine, snapshot, after)
    floor_server_after = _server_cpu(engine)
    baseline, baseline_cpu = _baseline(engine, count, now, after)
    per_row = _per_row_baseline(engine, after) if first else None
    return Round(
        count,
        elapsed,
        cpu,
        None if server is None or server_after is None else server_after - server,
        steps,
        None
        if floor_server is None or floor_server_after is None
        else floor_server_after - floor_server,
        baseline,
        baseline_cpu,
        per_row,
    )


@dataclass(frozen=True)
class Measured:
    rows: list[list[object]]  # the job's and the floor's rows of the main table
    steps: list[list[object]]  # the floor's statements (first round)
    rounds: list[list[object]]  # each round's job/floor
    above: str  # how much of the job's time is above the floor


def _cpu(seconds: float | None) -> str:
    return "—" if seconds is None else common.millis(seconds)


def measure(
    kind: str, engine: Engine, count: int, server: str, rounds: int = 3, profile: bool = False
) -> Measured:
    now = datetime.now(UTC)
    setup = time.perf_counter()
    jobs, after = _pending_requests(engine, count, now)
    setup = time.perf_counter() - setup
    if profile:  # where the job's time goes, instead of timing it
        common.profile_calls(
            f"{kind}: expire_popups", lambda _: jobs.expire_popups(after), range(1)
        )
        return Measured([[kind, JOB, count, "(profiled)"] + [""] * 10], [], [], "")
    done = []
    for r in range(rounds):
        with _copy_of(engine, server, r) as copy:
            done.append(_round(copy, jobs, count, now, after, first=r == 0))
    first = done[0]
    median = statistics.median
    job, floor = median(d.job for d in done), median(d.floor.wall for d in done)
    baseline = median(d.baseline for d in done)
    job_cpu, floor_cpu = median(d.job_cpu for d in done), median(d.floor.cpu for d in done)
    baseline_cpu = median(d.baseline_cpu for d in done)
    per_row = first.per_row or 0.0

    def row(what: str, rows: object, setup_s: str, wall: float, cpu: float) -> list[object]:
        return [
            kind,
            what,
            count,
            rows,
            setup_s,
            common.millis(wall),
            common.millis(baseline),
            common.ratio(wall / baseline),
            f"≤ {TARGET:g}",
            common.millis(cpu),
            common.millis(baseline_cpu),
            common.ratio(cpu / baseline_cpu),
            common.millis(per_row),
            common.ratio(wall / per_row),
        ]

    step_rows: list[list[object]] = [
        [
            kind,
            s.name,
            s.rows or "",
            common.millis(s.wall),
            common.millis(s.cpu),
            common.ratio(s.wall / first.baseline),
            f"{100 * s.wall / first.floor.wall:.0f} %",
        ]
        for s in first.steps
    ]
    round_rows: list[list[object]] = [
        [
            kind,
            i + 1,
            common.millis(d.job),
            common.millis(d.floor.wall),
            common.ratio(d.ratio),
            common.millis(d.job_cpu),
            _cpu(d.job_server),
            common.millis(d.floor.cpu),
            _cpu(d.floor_server),
            "—" if d.cpu_ratio is None else common.ratio(d.cpu_ratio),
        ]
        for i, d in enumerate(done)
    ]
    ratios = [d.ratio for d in done]
    cpu_ratios = [d.cpu_ratio for d in done if d.cpu_ratio is not None]
    cpu_said = (
        f"; CPU (with the server's) job/floor median {common.ratio(median(cpu_ratios))}"
        if cpu_ratios
        else ""
    )
    above = (
        f"{kind}: job/floor median {common.ratio(median(ratios))} over {rounds} round(s) "
        f"(from {common.ratio(min(ratios))} to {common.ratio(max(ratios))}){cpu_said}; "
        f"{common.millis(job - floor)} ms of the job's median {common.millis(job)} ms wall "
        f"({100 * (job - floor) / job:.0f} %) and {common.millis(job_cpu - floor_cpu)} ms of "
        f"its {common.millis(job_cpu)} ms CPU in this process are above the floor"
    )
    return Measured(
        [
            row(JOB, count, f"{setup:.1f}", job, job_cpu),
            row(FLOOR, first.floor.rows, "", floor, floor_cpu),
        ],
        step_rows,
        round_rows,
        above,
    )


def main(argv: list[str] | None = None) -> None:
    found = common.parser(__doc__)
    found.add_argument(
        "--profile", action="store_true", help="print a cProfile of the job instead of timing it"
    )
    found.add_argument(
        "--rounds", type=int, default=3, help="job, floor and UPDATE on this many copies"
    )
    args = found.parse_args(argv)
    count = 500 if args.quick else 10_000
    if args.rounds < 1:
        raise SystemExit("--rounds: at least 1")
    print(f"expiring {count} pending pop-up requests — {common.machine()}\n", flush=True)
    measured = []
    for kind in common.chosen_databases(args):
        with common.migrated_engine(kind, args.postgres) as engine:
            measured.append(measure(kind, engine, count, args.postgres, args.rounds, args.profile))
    common.print_table(
        "pop-up expiry job, and its floor, vs one plain UPDATE of the same rows",
        [
            "database",
            "what",
            "requests",
            "events appended",
            "setup s",
            "ms",
            "UPDATE ms",
            "× baseline",
            "target",
            "cpu ms",
            "UPDATE cpu ms",
            "cpu ×",
            "row-by-row ms",
            "× row-by-row",
        ],
        [row for m in measured for row in m.rows],
    )
    if args.profile:
        return
    common.print_table(
        "each round: the job and the floor on a copy of the same requests (CPU in ms)",
        [
            "database",
            "round",
            "job ms",
            "floor ms",
            "job/floor",
            "job cpu",
            "job server cpu",
            "floor cpu",
            "floor server cpu",
            "cpu job/floor",
        ],
        [row for m in measured for row in m.rounds],
    )
    common.print_table(
        "the floor's statements, first round (one transaction, run in this order)",
        ["database", "statement", "rows", "ms", "cpu ms", "× baseline", "of floor"],
        [row for m in measured for row in m.steps],
    )
    for m in measured:
        print(m.above)
    print(f"\n(done — {common.machine()})", flush=True)


if __name__ == "__main__":
    main()
