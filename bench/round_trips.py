"""Round trips to PostgreSQL per request of bench.load's mix: load-independent evidence.

`bench.load`'s figures move with the machine's load; how many times a request waits for the
database does not. This runs the real app in process (the Flask test client, the app's own
engine and pool, caches warm) on a fresh PostgreSQL database with bench.load's premises,
people and requests (`bench.load.Target`: the same paths, bodies and mix, one client's
random sequence), under `strace`, and counts for every request the round trips on the
database's sockets: a send after a receive (or the request's first send) begins one. The
statements each round trip carries are not counted; pipeline mode sends many in one.

    python -m bench.round_trips [--requests N] [--seed S] [--postgres URL] [--trace FILE]

Needs `strace` (Linux); without it, or without a PostgreSQL server, it says so and skips.
A count can come out one higher than the protocol's when the server answers the first
statements of a pipeline before the client has sent its last (a receive between sends).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

MARK = "/tilavaraus-round-trips"  # markers: access() on paths that do not exist
EXTRA_KINDS = ("keyed booking", "keyed cancel")


def _inner(args: argparse.Namespace) -> None:
    """Runs under strace: set up, warm up, then the mix with a marker around each request."""
    from bench.load import MIX, in_process

    with in_process(args.postgres) as found:
        client, booker, target = found.client, found.booker, found.target
        headers = {"Authorization": f"Bearer {booker.token}"}
        mine: list[str] = []
        keys = itertools.count()

        def send(kind: str, rng: random.Random) -> int:
            base = kind.removeprefix("keyed ")
            method, path, body = target.request(base, rng, mine)
            sent = dict(headers)
            if kind != base:
                sent["Idempotency-Key"] = f"k-{next(keys)}"
            answer = client.open(path, method=method, json=body, headers=sent)
            if method == "POST" and answer.status_code == 201:
                mine.append(json.loads(answer.data)["id"])
            return answer.status_code

        warm = random.Random(99)  # every kind a few times: pools, caches, premises states
        for kind in [k for k, _ in MIX for _ in range(5)]:
            send(kind, warm)
        rng = random.Random(args.seed)
        kinds, weights = [k for k, _ in MIX], [w for _, w in MIX]
        plan = [rng.choices(kinds, weights)[0] for _ in range(args.requests)]
        plan += [k for k in EXTRA_KINDS for _ in range(10)]
        statuses: dict[str, list[int]] = defaultdict(list)
        for kind in plan:
            if kind.endswith("cancel") and not mine:
                send("booking", rng)
            os.access(f"{MARK}/start/{kind.replace(' ', '-')}", os.F_OK)
            status = send(kind, rng)
            os.access(f"{MARK}/end", os.F_OK)
            statuses[kind].append(status)
        print(json.dumps(statuses), file=sys.stderr)


_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)(?: resumed>)?\(?(.*?)\s*=\s*(-?\d+)")


def _count(trace: Path) -> dict[str, list[int]]:
    """Round trips per request, by kind, from strace's output."""
    found: dict[str, list[int]] = defaultdict(list)
    kind: str | None = None
    trips = 0
    last = "recv"
    for line in trace.read_text(errors="replace").splitlines():
        if MARK in line:
            if f"{MARK}/start/" in line:
                kind = line.split(f"{MARK}/start/", 1)[1].split('"', 1)[0].replace("-", " ")
                trips, last = 0, "recv"
            elif kind is not None:
                found[kind].append(trips)
                kind = None
            continue
        if kind is None or "unfinished" in line:
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        call, result = match.group(2), int(match.group(4))
        if call in ("sendto", "sendmsg", "write") and result > 0:
            if last == "recv":
                trips += 1
            last = "send"
        elif call in ("recvfrom", "recvmsg", "read") and result > 0:
            last = "recv"
    return found


def main(argv: list[str] | None = None) -> None:
    from bench.common import POSTGRES_SERVER, postgres_problem

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--databases", default="postgresql", help="PostgreSQL only")
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--requests", type=int, default=400, help="of the mix")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace", help="keep strace's output here (the messages' first bytes)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        _inner(args)
        return
    if args.quick:
        args.requests = 100
    if "postgresql" not in args.databases.split(","):
        print("bench.round_trips counts PostgreSQL round trips only; skipped")
        return
    if shutil.which("strace") is None:
        print("bench.round_trips needs strace; skipped")
        return
    if problem := postgres_problem(args.postgres):
        print(f"PostgreSQL skipped: {problem}", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace"
        command = [
            "strace", "-f", "-qq", "-s", "200" if args.trace else "0", "-o", str(trace),
            "-e", "trace=sendto,recvfrom,sendmsg,recvmsg,access,faccessat,faccessat2",
            sys.executable, str(Path(__file__).resolve()), "--inner",
            "--requests", str(args.requests), "--seed", str(args.seed),
            "--postgres", args.postgres,
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise SystemExit(f"the traced run failed:\n{run.stderr[-3000:]}")
        statuses = json.loads(run.stderr.strip().splitlines()[-1])
        found = _count(trace)
        if args.trace:
            shutil.copy(trace, args.trace)
    rows = []
    for kind in [*(k for k in ("availability", "feed", "booking", "cancel")), *EXTRA_KINDS]:
        trips = found.get(kind, [])
        if not trips:
            continue
        spread: dict[int, int] = defaultdict(int)
        for t in trips:
            spread[t] += 1
        codes = sorted(set(statuses.get(kind, [])))
        rows.append(
            [
                kind,
                len(trips),
                f"{sum(trips) / len(trips):.2f}",
                min(trips),
                max(trips),
                " ".join(f"{t}×{n}" for t, n in sorted(spread.items())),
                ",".join(map(str, codes)),
            ]
        )
    from bench.common import print_table

    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"{when}, {args.requests} requests of the mix, seed {args.seed}")
    print_table(
        "Round trips to PostgreSQL per request (strace; in process, caches warm)",
        ["kind", "requests", "mean", "min", "max", "how many", "statuses"],
        rows,
    )


if __name__ == "__main__":
    main()
