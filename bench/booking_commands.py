"""Booking commands per second through the command layer, beside raw single-row INSERTs.

The command path is what POST /api/v1/bookings does minus HTTP: `booking.service.execute`
runs a write transaction in which `run_premises_command` decides a `PlaceBooking` against the
cached premises state, appends the event, projects it inline and queues the mail, and the
answer is built from the event (as the POST handler does). The baseline inserts one row per
transaction, with SQLAlchemy Core and nothing else, into a table of the events table's shape
on the same database and engine.
Extra rows: the same command with an Idempotency-Key, the whole POST through the Flask
test client, and a floor: every statement the command path sent to the driver, recorded
during the run and replayed in the same order on a second database, straight on the driver
(no Python but the driver's): what the database work of a booking costs by itself. The
floors replay in the same alternating rounds as the paths and the baseline (each round's
bookings right after the command path made them), so a busy spell of the machine weighs on
their ratios as on the others'. Every booking is on a distinct one-hour slot of one of a
few premises.

    python -m bench.booking_commands [--quick] [--databases sqlite,postgresql] [--profile N]
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    event,
    insert,
)
from sqlalchemy.engine import Connection

from bench import common
from booking.api.bookings import booking_json
from booking.clock import system_clock
from booking.http import outcome_of_error
from booking.privacy import Vault
from booking.service import IdempotencyKey, Outcome, PremisesRepository, execute
from booking.usecases.bookings import BookingInput, place_booking
from booking.usecases.unit import Unit
from events import pipeline
from events.catalog import BookingPlaced
from events.serialization import serializer
from events.slot import Slot
from events.sql import JSONDocument, UTCDateTime
from events.store import Metadata

# The command layer's rate against the raw insert's (issue 18).
TARGETS = {"sqlite": 0.30, "postgresql": 0.35}
PREMISES_PER_PATH = 4
WARMUP = 10  # untimed calls per path before the timed ones
HOURS = range(8, 22)  # one-hour slots inside the premises' 08-22 opening hours
ZONE = ZoneInfo("Europe/Helsinki")

raw_metadata = MetaData()
raw_events = Table(
    "bench_raw_events",
    raw_metadata,
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("stream", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("data", JSONDocument, nullable=False),
    Column("metadata", JSONDocument, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("stream", "version", name="uq_bench_raw_events_stream_version"),
)


class Slots:
    """Distinct one-hour slots for booking number i of one path, spread over its premises."""

    def __init__(self, prefix: str, first_day: datetime) -> None:
        self.premises = [f"{prefix}-{n}" for n in range(PREMISES_PER_PATH)]
        self.first_day = first_day

    def __call__(self, i: int) -> tuple[str, Slot]:
        premises_id = self.premises[i % PREMISES_PER_PATH]
        nth = i // PREMISES_PER_PATH
        day = self.first_day.date() + timedelta(days=nth // len(HOURS))
        start = datetime(day.year, day.month, day.day, HOURS[nth % len(HOURS)], tzinfo=ZONE)
        return premises_id, Slot(start, start + timedelta(hours=1))


def _sample_row_values() -> tuple[dict[str, Any], dict[str, Any]]:
    """`data` and `metadata` as a BookingPlaced stores them, so raw rows weigh the same."""
    now = datetime.now(UTC)
    event = BookingPlaced(
        premises_id="bench-raw-0",
        booking_id=str(uuid.uuid4()),
        organisation_id=str(uuid.uuid4()),
        booked_by=str(uuid.uuid4()),
        start=now,
        end=now + timedelta(hours=1),
        title="Kerhoilta",
        attendees=5,
        public=False,
        notes="",
        status="confirmed",
        placed_at=now,
        series_id=None,
    )
    _, _, data = serializer.dump(event)
    meta = Metadata(actor=str(uuid.uuid4()), correlation_id=uuid.uuid4().hex).as_json()
    return data, meta


def raw_insert(engine: Engine) -> Callable[[int], object]:
    data, meta = _sample_row_values()

    def insert_one(i: int) -> None:
        with engine.begin() as conn:
            conn.execute(
                insert(raw_events).values(
                    stream=f"raw-{i % PREMISES_PER_PATH}",
                    version=i // PREMISES_PER_PATH + 1,
                    type="BookingPlaced",
                    schema_version=1,
                    data=data,
                    metadata=meta,
                    recorded_at=datetime.now(UTC),
                )
            )

    return insert_one


def command(
    engine: Engine,
    repository: PremisesRepository,
    vault: Vault,
    booker: common.Person,
    slots: Slots,
    keyed: bool,
) -> Callable[[int], object]:
    """One booking through `execute` and the use-case handler, as the POST view runs it
    (minus HTTP)."""
    actor = booker.actor

    def place(i: int) -> None:
        premises_id, slot = slots(i)
        booking_id = str(uuid.uuid4())
        given = BookingInput(premises_id, slot.start, slot.end, "Kerhoilta", 5)

        def handle(conn: Connection) -> Outcome:
            meta = Metadata(actor.user_id, correlation_id=uuid.uuid4().hex)
            unit = Unit(conn, repository, vault, meta, system_clock)
            placed = place_booking(unit, actor, given, booking_id, datetime.now(UTC))
            return Outcome(
                201,
                booking_json(placed.booking),
                {"ETag": '"1"', "Location": f"/api/v1/bookings/{booking_id}"},
            )

        key = None
        if keyed:
            body = {"premises_id": premises_id, "start": slot.start.isoformat()}
            key = IdempotencyKey.of(
                actor.user_id, uuid.uuid4().hex, "POST", "/bookings", body, datetime.now(UTC)
            )
        outcome = execute(engine, handle, key, outcome_of_error if keyed else None)
        if outcome.status != 201:
            raise RuntimeError(f"booking {i} refused: {outcome.body}")

    return place


def http_post(client: Any, booker: common.Person, slots: Slots) -> Callable[[int], object]:
    def post(i: int) -> None:
        premises_id, slot = slots(i)
        body = {
            "premises_id": premises_id,
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "title": "Kerhoilta",
            "attendees": 5,
        }
        response = client.post("/api/v1/bookings", json=body, headers=booker.headers)
        if response.status_code != 201:
            raise RuntimeError(f"booking {i} refused: {response.get_json()}")

    return post


class Recorder:
    """Every statement `engine` sends to its driver, in order, and every commit and rollback.

    Entries made while `tagging` is on are tagged: `replay` times the transactions they make.
    """

    def __init__(self, engine: Engine) -> None:
        self.entries: list[tuple[str, str, Any, bool]] = []  # (kind, statement, params, tagged)
        self.tagging = False
        event.listen(engine, "before_cursor_execute", self._statement)
        # Statements sent straight on the driver (held writes, reads ahead: events.pipeline).
        pipeline.observer = self._sent
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def _statement(
        self, _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        self.entries.append(("many" if many else "one", statement, params, self.tagging))

    def _sent(self, statement: str, params: Any) -> None:
        self.entries.append(("one", statement, params, self.tagging))

    def _commit(self, _conn: Any) -> None:
        self.entries.append(("commit", "", None, self.tagging))

    def _rollback(self, _conn: Any) -> None:
        self.entries.append(("rollback", "", None, self.tagging))

    def tagged(self, operation: Callable[[int], object]) -> Callable[[int], object]:
        def run(i: int) -> object:
            self.tagging = True
            try:
                return operation(i)
            finally:
                self.tagging = False

        return run


class Replay:
    """The recorded statements run on `engine`'s driver connection, in order, one tagged
    transaction per call: an operation for `common.interleave`, which times the tagged
    transaction alone (`common.Timed`; what the other paths sent before it is replayed
    first, untimed, so that both databases hold the same rows). `pipelined` (psycopg only)
    sends each tagged transaction in pipeline mode without reading its results: one round
    trip a transaction, the least the server can be asked to do."""

    def __init__(self, recorder: Recorder, engine: Engine, pipelined: bool = False) -> None:
        self.recorder = recorder
        self.raw = engine.raw_connection()
        driver = self.raw.driver_connection
        assert driver is not None
        self.driver: Any = driver
        self.cursor = driver.cursor()
        self.postgres = engine.dialect.name == "postgresql"
        self.backend = driver.info.backend_pid if self.postgres else None
        self.pipelined = pipelined
        self.done = 0  # entries of the recorder replayed so far
        self.transactions = 0  # tagged transactions replayed so far

    def __call__(self, _i: int) -> common.Timed:
        driver, cursor, entries = self.driver, self.cursor, self.recorder.entries
        began: tuple[float, float] | None = None
        with contextlib.ExitStack() as pipeline:
            while self.done < len(entries):
                kind, statement, params, tagged = entries[self.done]
                self.done += 1
                if tagged and began is None:
                    if self.postgres and driver.info.transaction_status:  # an untagged read's
                        driver.commit()
                    server = common.backend_cpu(self.backend) if self.backend else None
                    began = (time.perf_counter(), time.process_time())
                    if self.pipelined:
                        pipeline.enter_context(driver.pipeline())
                if kind == "one":
                    if params is None:  # (SQLite's driver takes no None)
                        cursor.execute(statement)
                    else:
                        cursor.execute(statement, params)
                    if cursor.description is not None and not (self.pipelined and began):
                        cursor.fetchall()
                elif kind == "many":
                    cursor.executemany(statement, params)
                elif kind == "commit":
                    driver.commit()
                else:
                    driver.rollback()
                if began is not None and kind in ("commit", "rollback"):
                    pipeline.close()
                    self.transactions += 1
                    seconds, cpu = time.perf_counter() - began[0], time.process_time() - began[1]
                    after = common.backend_cpu(self.backend) if self.backend else None
                    used = after - server if after is not None and server is not None else None
                    return common.Timed(seconds, cpu, used)
        raise RuntimeError(f"no recorded transaction left after {self.transactions}")

    def close(self) -> None:
        self.raw.close()


PATHS = {
    "raw": "raw INSERT, 1 row/transaction (baseline)",
    "command": "command layer: execute + PlaceBooking",
    "keyed": "command layer + Idempotency-Key",
    "http": "POST /api/v1/bookings (test client)",
    "floor": "floor: the command's SQL replayed on the driver",
    "pipelined": "floor: the same, one round trip (pipeline mode)",
}


def measure(
    kind: str, engine: Engine, twins: list[Engine], count: int, profiled: int = 0
) -> list[list[object]]:
    """The paths on `engine`; the floors replay the command path's statements on `twins`,
    migrated alike (a second twin on PostgreSQL for the pipelined floor)."""
    for each in (engine, *twins):
        raw_metadata.create_all(each)
    recorder = Recorder(engine)
    app = common.bench_app(engine)
    repository = common.repository_of(app)
    vault = app.extensions["tilavaraus"].vault
    staff = common.new_person(engine, "staff")
    booker = common.new_person(engine, "booker")
    first_day = datetime.now(ZONE) + timedelta(days=2)
    slots = {name: Slots(f"bench-{name}", first_day) for name in ("command", "keyed", "http")}
    for path_slots in slots.values():
        for premises_id in path_slots.premises:
            profile = common.premises_profile(premises_id)
            common.register_premises(engine, repository, staff.actor, premises_id, profile)
    operations: dict[str, Callable[[int], object]] = {
        "raw": raw_insert(engine),
        "command": recorder.tagged(
            command(engine, repository, vault, booker, slots["command"], keyed=False)
        ),
        "keyed": command(engine, repository, vault, booker, slots["keyed"], keyed=True),
        "http": http_post(app.test_client(), booker, slots["http"]),
    }
    # After "command" in every round: a floor replays the bookings that round just made.
    floors = {
        name: Replay(recorder, twin, pipelined=name == "pipelined")
        for name, twin in zip(("floor", "pipelined"), twins, strict=False)
    }
    # What the set-up made (the app, its catalogues, SQLAlchemy's metadata) is left out of
    # Python's full collections, which walk every object the process tracks. One of them,
    # 60-80 ms, fell on one path of a run by allocation timing, a charge mostly for objects no
    # path made: on SQLite at 3,000 on the keyed path (both runs traced: 0.027 ms a booking,
    # 3 %), on PostgreSQL with --quick on the command path (0.30 ms a booking of 1.4-1.7).
    # With the freeze none ran in the rounds.
    gc.collect()
    gc.freeze()
    try:
        servers = {name: common.ServerCPU(engine) for name in operations}
        samples = common.interleave({**operations, **floors}, count, warmup=WARMUP, servers=servers)
    finally:
        gc.unfreeze()
        for floor in floors.values():
            floor.close()
    for floor in floors.values():
        if floor.transactions != WARMUP + count:
            raise RuntimeError(f"replayed {floor.transactions} transactions, not {WARMUP + count}")
    if profiled:
        for n, name in enumerate(("command", "keyed")):  # slots not booked yet
            more = range(WARMUP + count + n * profiled, WARMUP + count + (n + 1) * profiled)
            common.profile_calls(f"{kind}, {PATHS[name]}", operations[name], more)
    raw_rate = samples["raw"].rate
    rows: list[list[object]] = []
    for name, label in PATHS.items():
        if name not in samples:
            continue
        found = samples[name]
        relative = found.rate / raw_rate
        if name == "raw":
            verdict = "baseline"
        elif name == "command":
            target = TARGETS[kind]
            verdict = f"≥ {target:.2f} {'met' if relative >= target else 'MISSED'}"
        elif name in ("floor", "pipelined"):
            verdict = "(floor)"
        else:
            verdict = "(extra)"
        rows.append(
            [
                kind,
                label,
                found.count,
                common.per_second(found.rate),
                common.millis(found.p50),
                common.millis(found.p95),
                common.ratio(relative),
                common.millis(1 / found.cpu_rate),
                "—" if found.server_per_call is None else common.millis(found.server_per_call),
                verdict,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N commands")
    args = parser.parse_args(argv)
    count = 200 if args.quick else 3000
    print(f"(a) booking commands vs raw INSERT — {count} each, {common.machine()}\n", flush=True)
    rows: list[list[object]] = []
    for kind in common.chosen_databases(args):
        with contextlib.ExitStack() as stack:
            engine, *twins = (
                stack.enter_context(common.migrated_engine(kind, args.postgres))
                for _ in range(3 if kind == "postgresql" else 2)
            )
            rows.extend(measure(kind, engine, twins, count, args.profile))
    common.print_table(
        "(a) bookings per second, sequential, one transaction each",
        [
            "database",
            "path",
            "n",
            "ops/s",
            "p50 ms",
            "p95 ms",
            "vs raw",
            "cpu ms/op",
            "server cpu ms/op",
            "target",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
