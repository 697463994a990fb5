"""How long a writer waits for SQLite's lock while the asynchronous projections rebuild.

`python -m bench.rebuild_waits [--events N] [--rounds R] [--pauses 0,0.1] [--batch-size B]`

A generated log (`bench.rebuild`'s, 100,000 events; `--quick` 20,000) is written once into a
SQLite file; each run rebuilds the asynchronous projections (`rebuilding.rebuild_asynchronous`)
on a copy of it while a thread writes one row every 20 ms, as a booking would (`BEGIN
IMMEDIATE`, INSERT, COMMIT), and times each write from its start to its commit. The runs
alternate the pause each batch leaves after its write transaction
(`batching.BATCH_PAUSE_SECONDS`; 0 is none, the baseline), so both meet the same
neighbours. Printed per run: the rebuild's wall time and the writes' p50, p99 and longest
wait, and when the longest waits began against the final flush of the held rows.
SQLite only: on PostgreSQL the rebuild takes no lock a booking waits for.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common
from bench.rebuild import load_log
from booking.clock import system_clock
from booking.migrate import upgrade
from events.sql import make_engine, write_transaction
from projections import batching, rebuilding, runner
from projections.batching import BatchProjection

WRITE_EVERY_SECONDS = 0.02


@contextmanager
def _flushes_timed(started: float, marks: list[str]) -> Iterator[None]:
    """Notes when each projection's final flush (`BatchProjection.flush`) runs."""
    flushes = {type(p): type(p).flush for p in runner.ALL if isinstance(p, BatchProjection)}

    def timed(kind: Any, original: Any) -> Any:
        def flush(self: Any, conn: Any) -> None:
            begun = time.perf_counter() - started
            original(self, conn)
            marks.append(f"{kind.__name__}.flush {begun:.2f}-{time.perf_counter() - started:.2f} s")

        return flush

    for kind, original in flushes.items():
        kind.flush = timed(kind, original)
    try:
        yield
    finally:
        for kind, original in flushes.items():
            kind.flush = original


def one_run(template: Path, folder: Path, pause: float, batch_size: int) -> list[object]:
    path = folder / "run.sqlite"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    waits: list[tuple[float, float]] = []  # (began, waited), seconds
    marks: list[str] = []
    stop = threading.Event()
    started = time.perf_counter()

    def writer() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            with write_transaction(engine) as conn:
                conn.exec_driver_sql("INSERT INTO bench_probe VALUES (1)")
            waits.append((began - started, time.perf_counter() - began))
            time.sleep(WRITE_EVERY_SECONDS)

    before = batching.BATCH_PAUSE_SECONDS
    batching.BATCH_PAUSE_SECONDS = pause
    thread = threading.Thread(target=writer)
    try:
        with _flushes_timed(started, marks):
            thread.start()
            asynchronous = [p for p in runner.ALL if not p.inline]
            rebuilding.rebuild_asynchronous(
                engine, asynchronous, batch_size=batch_size, clock=system_clock
            )
            took = time.perf_counter() - started
    finally:
        batching.BATCH_PAUSE_SECONDS = before
        stop.set()
        thread.join()
        engine.dispose()
        path.unlink()
    waited = [w for _, w in waits]
    longest = sorted(waits, key=lambda pair: -pair[1])[:3]
    return [
        f"{pause:g} s",
        f"{took:.1f}",
        len(waits),
        common.millis(common.percentile(waited, 50)),
        common.millis(common.percentile(waited, 99)),
        common.millis(max(waited)),
        "; ".join(f"{w * 1000:.0f} ms from {b:.2f} s" for b, w in longest),
        "; ".join(marks),
    ]


def main(argv: list[str] | None = None) -> None:
    options = common.parser(__doc__)
    options.add_argument("--events", type=int, default=100_000)
    options.add_argument("--rounds", type=int, default=2)
    options.add_argument("--pauses", default=f"0,{batching.BATCH_PAUSE_SECONDS:g}")
    options.add_argument("--batch-size", type=int, default=20_000)
    args = options.parse_args(argv)
    if "sqlite" not in common.chosen_databases(args):
        print("bench.rebuild_waits: SQLite only; skipped")
        return
    events = 20_000 if args.quick else args.events
    pauses = [float(p) for p in args.pauses.split(",")]
    with tempfile.TemporaryDirectory(prefix="tilavaraus-bench-") as name:
        folder = Path(name)
        template = folder / "template.sqlite"
        engine = make_engine(f"sqlite:///{template}")
        try:
            upgrade(engine)
            load_log(engine, events)
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE bench_probe (n INTEGER)")
        finally:
            engine.dispose()
        rows = []
        for round_ in range(args.rounds):
            for pause in pauses if round_ % 2 == 0 else pauses[::-1]:
                rows.append(one_run(template, folder, pause, args.batch_size))
    common.print_table(
        f"A writer's wait during an asynchronous rebuild of {events:,} events (SQLite, "
        f"batches of {args.batch_size:,})",
        ["pause", "rebuild s", "writes", "p50 ms", "p99 ms", "max ms", "longest", "flushes"],
        rows,
    )
    print(common.machine())


if __name__ == "__main__":
    main()
