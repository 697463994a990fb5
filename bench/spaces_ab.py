"""(b) of bench.spaces across two commits: a booking of a one-space premises before spaces
(the parent of the merge that brought them) and in a newer commit, alternating.

Two ways, both with the same harness on both sides (this copies the new tree's
bench/spaces.py into the old tree, which had none), each side in its own work tree and venv,
one process booking at any moment (the same process count on both sides):

- ping-pong (the default): one worker process per commit (`bench.spaces --serve`), each on a
  fresh migrated database of the same kind; the driver asks them in turn for a batch of
  bookings (`--batch`, 25), the order flipping every round (`--rounds`, 40), so both sides
  meet the same neighbours within seconds of each other.
- `--whole-runs`: whole `bench.spaces --one-space-only` runs, old and new in turn, the order
  flipping every round; each run on its own fresh database. Coarser: a run lasts long
  enough for the machine's load to change under it.

The figure is new ÷ old of the CPU p50 (this process's CPU per booking; on PostgreSQL the
server's own work is not in it), pooled over all rounds, with the median of the rounds'
ratios, its interquartile range and the medians of the first and the second half of the
rounds (when those halves disagree, run more rounds); the wall-clock ratio beside it.

First, a cross-check that no load disturbs (`--calls`, 400 bookings; 0 skips it): per
booking, Python function calls (cProfile) and SQL statements, old and new, and our functions
whose calls per booking moved most (`bench.spaces --count-calls` in each tree).

    git worktree add --detach /tmp/spaces-old <parent of the spaces merge>
    (cd /tmp/spaces-old && python3 -m venv .venv && .venv/bin/pip install -e '.[test]')
    python -m bench.spaces_ab --old /tmp/spaces-old [--new TREE] [--rounds 40] [--batch 25]

The new tree needs `.venv/bin/python` too: for this tree, a `.venv` link to a venv with the
project installed will do (the worker runs from the tree, which comes first on its path).

Without `--old` (or BENCH_OLD_TREE) it says so and does nothing: `python -m bench` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import common

HERE = Path(__file__).resolve().parent.parent
PATH = "one-space premises"


def one_run(tree: Path, kind: str, count: int, server: str) -> dict[str, Any]:
    """One `bench.spaces --one-space-only` in `tree` with its own venv: its figures."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        python = tree / ".venv" / "bin" / "python"
        argv = [str(python), "-m", "bench.spaces", "--one-space-only", "--databases", kind]
        argv += ["--count", str(count), "--postgres", server, "--json", str(out)]
        began = os.getloadavg()[0]
        subprocess.run(argv, cwd=tree, check=True, stdout=subprocess.DEVNULL)
        figures: dict[str, Any] = json.loads(out.read_text())["paths"][PATH]
        figures["load"] = (began + os.getloadavg()[0]) / 2
        return figures


class Worker:
    """A `bench.spaces --serve` process in a work tree, booking in batches on request."""

    def __init__(self, tree: Path, kind: str, server: str) -> None:
        python = tree / ".venv" / "bin" / "python"
        argv = [str(python), "-m", "bench.spaces", "--serve", "--databases", kind]
        self.process = subprocess.Popen(
            [*argv, "--postgres", server],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._answer()  # ready: the database made and the premises registered

    def _answer(self) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@ "):
                return line[3:]
        raise RuntimeError(f"the worker ended with {self.process.wait()}")

    def batch(self, count: int) -> dict[str, list[float]]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        found: dict[str, list[float]] = json.loads(self._answer())
        return found

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("0\n")
        self.process.stdin.close()
        self.process.wait(timeout=300)


def ping_pong(old: Path, new: Path, kind: str, rounds: int, batch: int, server: str) -> None:
    workers = {"old": Worker(old, kind, server), "new": Worker(new, kind, server)}
    try:
        for worker in workers.values():
            worker.batch(10)  # warm-up, untimed
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        wall: dict[str, list[float]] = {"old": [], "new": []}
        ratios, wall_ratios, loads = [], [], []
        for r in range(rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            found = {name: workers[name].batch(batch) for name in order}
            for name in order:
                cpu[name] += found[name]["cpu"]
                wall[name] += found[name]["wall"]
            median = {n: statistics.median(found[n]["cpu"]) for n in order}
            wall_median = {n: statistics.median(found[n]["wall"]) for n in order}
            ratios.append(median["new"] / median["old"])
            wall_ratios.append(wall_median["new"] / wall_median["old"])
            loads.append(os.getloadavg()[0])
            print(f"{kind} {r + 1} {' → '.join(order)} cpu ratio {ratios[-1]:.3f} "
                  f"load {loads[-1]:.1f}", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for worker in workers.values():
            worker.close()
    half = len(ratios) // 2 or 1
    rows: list[list[object]] = []
    for name, values, per_round in (("cpu", cpu, ratios), ("wall", wall, wall_ratios)):
        old_p50, new_p50 = statistics.median(values["old"]), statistics.median(values["new"])
        q1, q2, q3 = quartiles(per_round)
        first, second = statistics.median(per_round[:half]), statistics.median(per_round[half:])
        rows.append([
            kind, name, len(values["old"]), common.millis(old_p50), common.millis(new_p50),
            common.ratio(new_p50 / old_p50), common.ratio(q2), f"{q1:.3f}–{q3:.3f}",
            f"{first:.3f} · {second:.3f}",
            f"{min(loads):.1f}–{max(loads):.1f} (mean {statistics.mean(loads):.1f})",
        ])  # fmt: skip
    common.print_table(
        f"(b) one-space booking, new ÷ old, ping-pong: {rounds} rounds of {batch} a side · "
        f"{common.machine()}",
        ["database", "time", "n a side", "old p50 ms", "new p50 ms", "pooled new÷old",
         "median of rounds", "IQR of rounds", "halves", "load (1 min)"],
        rows,
    )  # fmt: skip


def count_calls(tree: Path, kind: str, count: int, server: str) -> dict[str, Any]:
    """`bench.spaces --count-calls` in `tree`: calls and statements per booking."""
    python = tree / ".venv" / "bin" / "python"
    argv = [str(python), "-m", "bench.spaces", "--count-calls", "--databases", kind]
    argv += ["--count", str(count), "--postgres", server]
    found = subprocess.run(argv, cwd=tree, check=True, capture_output=True, text=True).stdout
    line = next(line for line in found.splitlines() if line.startswith("@@ "))
    figures: dict[str, Any] = json.loads(line[3:])
    return figures


def calls_table(old: Path, new: Path, kinds: list[str], count: int, server: str) -> None:
    """The cross-check no load disturbs: Python function calls and SQL statements per
    booking, old and new, and our functions whose calls per booking changed most."""
    rows: list[list[object]] = []
    for kind in kinds:
        found = {
            side: count_calls(tree, kind, count, server)
            for side, tree in (("old", old), ("new", new))
        }
        o, n = found["old"], found["new"]
        functions = set(o["functions"]) | set(n["functions"])
        delta = {f: n["functions"].get(f, 0) - o["functions"].get(f, 0) for f in functions}
        moved = sorted((f for f in delta if abs(delta[f]) >= 1), key=lambda f: -abs(delta[f]))
        rows.append([
            kind, f"{o['calls']:,.0f}", f"{n['calls']:,.0f}", common.ratio(n["calls"] / o["calls"]),
            f"{o['statements']:.1f}", f"{n['statements']:.1f}",
            ", ".join(f"{f} {delta[f]:+.0f}" for f in moved[:6]),
        ])  # fmt: skip
    common.print_table(
        f"(b) per booking, {count} bookings after 20: Python function calls (cProfile) and SQL "
        "statements (SQLAlchemy's before_cursor_execute and events.pipeline's driver ones)",
        ["database", "calls old", "calls new", "new÷old", "statements old", "statements new",
         "our functions' calls per booking, new minus old (largest)"],
        rows,
    )  # fmt: skip


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--old", default=os.environ.get("BENCH_OLD_TREE"), help="old work tree")
    parser.add_argument("--new", default=str(HERE), help="new work tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=None, help="old/new pairs per database")
    parser.add_argument("--batch", type=int, default=25, help="ping-pong: bookings a turn")
    parser.add_argument("--count", type=int, default=300, help="--whole-runs: bookings a run")
    parser.add_argument("--whole-runs", action="store_true", help="alternate whole runs")
    parser.add_argument("--calls", type=int, default=400, help="bookings counted (0: none)")
    args = parser.parse_args(argv)
    if not args.old:
        print("bench.spaces_ab: no --old work tree (or BENCH_OLD_TREE) given; nothing to run")
        return
    old, new = Path(args.old).resolve(), Path(args.new).resolve()
    shutil.copyfile(new / "bench" / "spaces.py", old / "bench" / "spaces.py")
    kinds = common.chosen_databases(args)
    if args.calls:
        calls_table(old, new, kinds, 100 if args.quick else args.calls, args.postgres)
    if not args.whole_runs:
        rounds = 4 if args.quick else args.rounds or 40
        for kind in kinds:
            ping_pong(old, new, kind, rounds, 10 if args.quick else args.batch, args.postgres)
        return
    rounds = 2 if args.quick else args.rounds or 10
    count = 60 if args.quick else args.count
    for kind in kinds:
        rows: list[list[object]] = []
        cpu_ratios: list[float] = []
        wall_ratios: list[float] = []
        loads: list[float] = []
        for r in range(rounds):
            order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
            found = {name: one_run(tree, kind, count, args.postgres) for name, tree in order}
            cpu = found["new"]["cpu_p50"] / found["old"]["cpu_p50"]
            wall = found["new"]["wall_p50"] / found["old"]["wall_p50"]
            cpu_ratios.append(cpu)
            wall_ratios.append(wall)
            loads += [found["old"]["load"], found["new"]["load"]]
            rows.append([
                f"{kind} {r + 1}", " → ".join(name for name, _ in order),
                common.millis(found["old"]["cpu_p50"]), common.millis(found["new"]["cpu_p50"]),
                common.ratio(cpu), common.millis(found["old"]["wall_p50"]),
                common.millis(found["new"]["wall_p50"]), common.ratio(wall),
                f"{found['old']['load']:.1f} / {found['new']['load']:.1f}",
            ])  # fmt: skip
            print(*rows[-1], sep="  ", file=sys.stderr, flush=True)
        half = len(cpu_ratios) // 2 or 1
        for name, ratios in (("cpu p50", cpu_ratios), ("wall p50", wall_ratios)):
            q1, q2, q3 = quartiles(ratios)
            first, second = statistics.median(ratios[:half]), statistics.median(ratios[half:])
            rows.append([
                f"{kind} all", f"median {name} ratio", "", "", common.ratio(q2), "", "",
                f"IQR {q1:.3f}–{q3:.3f}; halves {first:.3f}, {second:.3f}",
                f"mean {statistics.mean(loads):.1f}",
            ])  # fmt: skip
        common.print_table(
            f"(b) one-space booking, new ÷ old, {rounds} alternating rounds of {count} · "
            f"{common.machine()}",
            ["round", "order", "old cpu p50", "new cpu p50", "cpu new÷old", "old wall p50",
             "new wall p50", "wall new÷old", "load (1 min)"],
            rows,
        )  # fmt: skip


if __name__ == "__main__":
    main()
