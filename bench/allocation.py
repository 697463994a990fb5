"""The allocator on a Mikkeli-size round, beside a first-come baseline.

40 premises (ten gyms with their halves, ten rooms), 400 sections from 150 organisations
with about 1,500 weekday time wishes in four tiers (booking/allocation/sample.py). The
proposal is made in process (no database: the allocator is pure) several times; the table
gives its p50 wall and CPU time, the largest gap any lexicographic stage left to its proven
bound, and, for the proposal and for first come, the shares of allocated slots in primary
times and at first-choice premises, the lowest organisation's share of its requested
hours, and the hours allocated per tier. Target: p50 ≤ 10 s, gap ≤ 1 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

from booking.allocation import explain, sample
from booking.allocation.greedy import first_come
from booking.allocation.solver import proposal_of, solve


def main(argv: list[str] | None = None) -> None:
    found = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    found.add_argument("--quick", action="store_true", help="one run of a quarter-size round")
    found.add_argument("--runs", type=int, default=3)
    found.add_argument("--step", type=int, default=15, help="start-time grid in minutes")
    found.add_argument("--seed", type=int, default=2027)
    found.add_argument(
        "--buffer", type=int, default=0, help="every premises' rules.buffer_minutes (default 0)"
    )
    found.add_argument("--databases", default="", help="ignored: the allocator is pure")
    found.add_argument("--postgres", default="", help="ignored")
    args = found.parse_args(argv)
    places = sample.premises(args.buffer)
    if args.quick:
        apps = sample.sections(args.seed, organisations=40, count=100, wishes=375)
        runs = 1
    else:
        apps = sample.sections(args.seed)
        runs = args.runs
    print(
        f"round: {len(places)} premises, {len(apps)} sections, "
        f"{len({s.organisation_id for s in apps})} organisations, "
        f"{sum(len(s.times) for s in apps)} time wishes, step {args.step} min, "
        f"buffer {args.buffer} min"
    )
    walls, cpus = [], []
    solved = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        solved = solve(apps, places, step=args.step, time_limit=600)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert solved is not None
    proposal = proposal_of(solved)
    ids = [tuple(a.as_json().items()) for a in proposal.allocations]
    again = proposal_of(solve(apps, places, step=args.step, time_limit=600)) if runs == 1 else None
    deterministic = again is None or [tuple(a.as_json().items()) for a in again.allocations] == ids
    ordered_sections, greedy = first_come(apps, places, step=args.step)
    ours, theirs = proposal.metrics, explain.metrics(ordered_sections, greedy)
    print(f"candidates (binary variables): {len(solved.candidates)}")
    print(
        f"proposal p50 wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s "
        f"over {runs} run(s); deterministic: {deterministic}"
    )
    print(
        f"largest gap to proven bound over {len(solved.stages)} stages: "
        f"{max(s.gap for s in solved.stages):.4%}; all optimal: "
        f"{all(s.status == 'Optimal' for s in solved.stages)}"
    )
    rows = [
        (
            "allocated slots / requested",
            f"{ours['allocated_slots']} / {ours['requested_slots']}",
            f"{theirs['allocated_slots']} / {theirs['requested_slots']}",
        ),
        ("primary-time share", f"{ours['primary_share']:.1%}", f"{theirs['primary_share']:.1%}"),
        (
            "first-choice premises share",
            f"{ours['first_choice_share']:.1%}",
            f"{theirs['first_choice_share']:.1%}",
        ),
        (
            "lowest organisation share of its hours",
            f"{ours['lowest_organisation_share']:.1%}",
            f"{theirs['lowest_organisation_share']:.1%}",
        ),
        ("organisations with nothing", str(_nothing(ours)), str(_nothing(theirs))),
    ]
    for tier, (a, b) in enumerate(
        zip(
            explain.tier_values(solved.sections, solved.chosen),
            explain.tier_values(ordered_sections, greedy),
            strict=True,
        )
    ):
        rows.append(
            (
                f"tier {tier + 1} hours (lowest share)",
                f"{a[0] / 60:.1f} ({a[2]:.1%})",
                f"{b[0] / 60:.1f} ({b[2]:.1%})",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'proposal':>14}  {'first come':>14}")
    for name, ours_text, theirs_text in rows:
        print(f"{name:{width}}  {ours_text:>14}  {theirs_text:>14}")
    print("stages:")
    for s in solved.stages:
        print(
            f"  tier {s.tier + 1} {s.objective:18} value {s.value:12.4f} bound {s.bound:12.4f} "
            f"gap {s.gap:.4%} {s.status} CPU {s.seconds:.2f} s"
        )


def _nothing(figures: dict[str, object]) -> int:
    organisations = figures["organisations"]
    assert isinstance(organisations, list)
    return sum(1 for o in organisations if o["allocated_hours"] == 0)


if __name__ == "__main__":
    main()
