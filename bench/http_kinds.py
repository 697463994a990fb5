"""CPU per request of each kind of bench.load's mix, in process, for one or two work trees.

`bench.load` measures the served app, where gunicorn, the client and the machine's other
load blur what the app itself costs. This runs the real app in process (the Flask test
client, the app's engine and pool, caches warm) on a fresh PostgreSQL database with
bench.load's premises, people and request shapes (`bench.load.Target`), and takes the
process's CPU time (`time.process_time`) per request of each kind: availability, feed,
booking, cancellation, and the mix in bench.load's weights. The test client's own work is
in every figure alike.

Given two trees (`--trees A,B`), each runs in a process of its own (`PYTHONPATH=tree`, its own
database) and the rounds alternate between them, so a busy spell of a shared machine falls on
both; the table gives each tree's median per round and B ÷ A.

    python -m bench.http_kinds [--trees A[,B]] [--rounds R] [--requests N] [--quick]
                               [--profile KIND] [--postgres URL]

`--profile KIND` (one tree) prints a cProfile (timer: process time) of N requests of KIND.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KINDS = ("availability", "feed", "booking", "cancel")
HERE = Path(__file__).resolve()


def _serve_rounds(args: argparse.Namespace) -> None:
    """The child: set up, warm up, then answer one line of stdin (a command) at a time."""
    from bench.load import MIX, in_process

    with in_process(args.postgres) as found:
        client, booker, target = found.client, found.booker, found.target
        headers = booker.headers
        mine: list[str] = []
        rng = random.Random(args.seed)

        def send(kind: str) -> None:
            if kind == "cancel" and not mine:
                kind = "booking"
            method, path, body = target.request(kind, rng, mine)
            answer = client.open(path, method=method, json=body, headers=headers)
            if answer.status_code >= 300 and answer.status_code != 304:
                raise SystemExit(f"{method} {path}: {answer.status_code} {answer.data[:300]!r}")
            if method == "POST" and kind == "booking":
                mine.append(json.loads(answer.data)["id"])

        # One function per kind, so that a sampling profiler (py-spy) tells them apart.
        def availability() -> None:
            send("availability")

        def feed() -> None:
            send("feed")

        def booking() -> None:
            send("booking")

        def cancel() -> None:
            send("cancel")

        senders = {"availability": availability, "feed": feed, "booking": booking}
        senders["cancel"] = cancel
        kinds, weights = [k for k, _ in MIX], [w for _, w in MIX]
        for kind in [k for k in KINDS for _ in range(10)]:  # pools, caches, premises states
            send(kind)
        print("ready", flush=True)
        for line in sys.stdin:
            command, n = line.split()[0], int(line.split()[1])
            if command == "round":
                cpu: dict[str, float] = {}
                for kind in KINDS:  # a cancellation cancels one of the round's bookings
                    sender, start = senders[kind], time.process_time()
                    for _ in range(n):
                        sender()
                    cpu[kind] = (time.process_time() - start) / n
                plan = [rng.choices(kinds, weights)[0] for _ in range(n * 2)]
                start = time.process_time()
                for kind in plan:
                    senders[kind]()
                cpu["mix"] = (time.process_time() - start) / len(plan)
                print(json.dumps(cpu), flush=True)
            elif command == "calls":  # Python calls per request: deterministic, unlike time
                calls: dict[str, float] = {}
                for kind in KINDS:
                    profiler = cProfile.Profile(time.process_time)
                    profiler.enable()
                    for _ in range(n):
                        send(kind)
                    profiler.disable()
                    calls[kind] = pstats.Stats(profiler).total_calls / n  # type: ignore[attr-defined]
                print(json.dumps(calls), flush=True)
            elif command == "profile":
                kind = line.split()[2]
                if kind == "cancel":  # bookings to cancel, made outside the profile
                    for _ in range(n):
                        send("booking")
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                for _ in range(n):
                    send(kind)
                profiler.disable()
                if args.profile_out:
                    profiler.dump_stats(args.profile_out)
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(60)
                stats.sort_stats("tottime").print_stats(40)
                print(json.dumps({"profile": out.getvalue()}), flush=True)


class Child:
    """One tree's app in a process of its own, run by lines on its stdin."""

    def __init__(self, tree: Path, args: argparse.Namespace) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, str(HERE), "--child", "--postgres", args.postgres]
        command += ["--seed", str(args.seed)]
        if args.profile_out:
            command += ["--profile-out", str(Path(args.profile_out).resolve())]
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            raise SystemExit(f"{tree}: the child did not start ({ready!r})")

    def ask(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit("a child ended early")
        found: dict[str, Any] = json.loads(answer)
        return found

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=120)


def main(argv: list[str] | None = None) -> None:
    from bench.common import POSTGRES_SERVER, machine, postgres_problem, print_table

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--trees", default=str(HERE.parent.parent), help="A[,B]: work trees")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=200, help="per kind and round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 50")
    parser.add_argument("--profile", choices=KINDS, help="a cProfile of one kind (one tree)")
    parser.add_argument("--profile-out", help="--profile: also dump the stats to this file")
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--databases", default="postgresql", help="PostgreSQL only")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _serve_rounds(args)
        return
    if problem := postgres_problem(args.postgres):
        print(f"bench.http_kinds: skipped, {problem}")
        return
    if args.quick:
        args.rounds, args.requests = 2, 50
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    print(machine(), flush=True)
    children = [Child(tree, args) for tree in trees]
    try:
        if args.profile:
            print(children[0].ask(f"profile {args.requests} {args.profile}")["profile"])
            return
        calls = [child.ask(f"calls {min(args.requests, 100)}") for child in children]
        cpu: list[dict[str, list[float]]] = [{k: [] for k in (*KINDS, "mix")} for _ in trees]
        for round_number in range(args.rounds):
            order = list(range(len(trees)))
            if round_number % 2:
                order.reverse()
            for i in order:
                for kind, seconds in children[i].ask(f"round {args.requests}").items():
                    cpu[i][kind].append(seconds)
    finally:
        for child in children:
            child.close()
    print_table(
        "Python function calls per request (cProfile's count)",
        ["kind", *(t.name for t in trees)],
        [[kind, *(f"{c[kind]:.0f}" for c in calls)] for kind in KINDS],
    )
    names = [f"{t.name} cpu ms" for t in trees]
    header = ["kind", *names, *(["B ÷ A", "B ÷ A range"] if len(trees) == 2 else [])]
    rows = []
    for kind in (*KINDS, "mix"):
        medians = [statistics.median(c[kind]) for c in cpu]
        row: list[object] = [kind, *(f"{m * 1000:.2f}" for m in medians)]
        if len(trees) == 2:
            ratios = [b / a for a, b in zip(cpu[0][kind], cpu[1][kind], strict=True)]
            row += [f"{medians[1] / medians[0]:.2f}", f"{min(ratios):.2f}–{max(ratios):.2f}"]
        rows.append(row)
    title = (
        f"CPU per request in process (PostgreSQL, test client), median of {args.rounds} rounds "
        f"of {args.requests} per kind (mix: {args.requests * 2}); load after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print_table(title, header, rows)


if __name__ == "__main__":
    main()
