"""(b) of bench.spaces across two commits: a booking of a one-space premises before spaces
(the parent of the merge that brought them) and now, in alternating rounds.

Each round runs `bench.spaces --one-space-only` once in the old work tree and once in the
new one, one process at a time (the same process count on both sides), each on a fresh
migrated database of the same kind; the order flips every round (old-new, new-old, …) so a
busy spell or a slow drift of the shared machine hits both sides alike. The harness is the
same file on both sides: this copies the new tree's bench/spaces.py into the old tree (which
had none). The figure is the ratio new ÷ old of each round's CPU p50 (this process's CPU per
booking; on PostgreSQL the server's work is not in it) and wall p50; the answer is the median
of the rounds' ratios, with their spread (quartiles, and the medians of the first and second
half of the rounds: if those two differ, more rounds are needed).

    git worktree add --detach /tmp/spaces-old <parent of the spaces merge>
    (cd /tmp/spaces-old && python3 -m venv .venv && .venv/bin/pip install -e '.[test]')
    python -m bench.spaces_ab --old /tmp/spaces-old [--new TREE] [--rounds 10] [--count 300]

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


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--old", default=os.environ.get("BENCH_OLD_TREE"), help="old work tree")
    parser.add_argument("--new", default=str(HERE), help="new work tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=10, help="old/new pairs per database")
    parser.add_argument("--count", type=int, default=300, help="timed bookings per run")
    args = parser.parse_args(argv)
    if not args.old:
        print("bench.spaces_ab: no --old work tree (or BENCH_OLD_TREE) given; nothing to run")
        return
    old, new = Path(args.old).resolve(), Path(args.new).resolve()
    shutil.copyfile(new / "bench" / "spaces.py", old / "bench" / "spaces.py")
    rounds = 2 if args.quick else args.rounds
    count = 60 if args.quick else args.count
    for kind in common.chosen_databases(args):
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
