"""A year of usage statistics for all premises, through HTTP, from the generated log.

`python -m bench.stats [--quick] [--events N] [--databases sqlite,postgresql]`

The log of `bench.rebuild` (default 1,000,000 events, five years of 80 premises) is loaded,
the usage projection built, and GET /api/v1/stats/usage asked for 2024 grouped by month and
by weekday×hour (each answer also holds 2023, the previous period). Target: p95 ≤ 100 ms.
Baseline: an analyst's ad-hoc SQL over the log itself (bookings placed in 2024 counted and
their hours summed by month, JSON fields extracted by the database), which answers far less.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from bench import common
from bench.rebuild import load_log
from booking.clock import system_clock
from events.sql import read_transaction
from projections import rebuilding, runner

YEAR = "from=2024-01-01&to=2024-12-31"
ADHOC = {
    "sqlite": """
        SELECT substr(json_extract(data, '$.start'), 1, 7) AS month, count(*),
               sum((julianday(json_extract(data, '$.end'))
                    - julianday(json_extract(data, '$.start'))) * 24)
        FROM events WHERE type = 'BookingPlaced'
          AND json_extract(data, '$.start') >= '2024-01-01'
          AND json_extract(data, '$.start') < '2025-01-01'
        GROUP BY 1 ORDER BY 1""",
    "postgresql": """
        SELECT substr(data->>'start', 1, 7) AS month, count(*),
               sum(extract(epoch FROM (data->>'end')::timestamptz
                                    - (data->>'start')::timestamptz) / 3600)
        FROM events WHERE type = 'BookingPlaced'
          AND data->>'start' >= '2024-01-01' AND data->>'start' < '2025-01-01'
        GROUP BY 1 ORDER BY 1""",
}


def run(kind: str, total: int, server: str, count: int) -> None:
    with common.migrated_engine(kind, server) as engine:
        written = load_log(engine, total)
        rebuilding.rebuild(engine, runner.by_name(["usage"]), clock=system_clock)
        app = common.bench_app(engine)
        client = app.test_client()
        analyst = common.new_person(engine, "analyst")

        def ask(group_by: str) -> Any:
            def operation(_: int) -> None:
                response = client.get(
                    f"/api/v1/stats/usage?{YEAR}&group_by={group_by}", headers=analyst.headers
                )
                assert response.status_code == 200, response.get_json()

            return operation

        def adhoc(_: int) -> None:
            with read_transaction(engine) as conn:
                conn.execute(text(ADHOC[kind])).all()

        samples = common.interleave(
            {"month": ask("month"), "weekday,hour": ask("weekday,hour"), "adhoc": adhoc},
            count,
            rounds=5,
            warmup=3,
        )
        rows = sample_rows(samples, engine)
        common.print_table(
            f"A year of statistics, all premises, over {written:,} events — {kind} — "
            f"{common.machine()}",
            ["query", "p50 ms", "p95 ms", "target p95", "× baseline p50"],
            rows,
        )


def sample_rows(samples: dict[str, common.Samples], engine: Engine) -> list[list[object]]:
    base = samples["adhoc"].p50
    return [
        [
            "baseline: ad-hoc SQL over the log (month; bookings and hours only)",
            common.millis(samples["adhoc"].p50),
            common.millis(samples["adhoc"].p95),
            "",
            "1.00",
        ],
        *(
            [
                f"GET /stats/usage group_by={name} (2024 and 2023)",
                common.millis(samples[name].p50),
                common.millis(samples[name].p95),
                "≤ 100",
                common.ratio(samples[name].p50 / base),
            ]
            for name in ("month", "weekday,hour")
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="log size (default 1,000,000)")
    args = parser.parse_args(argv)
    total = args.events or (20_000 if args.quick else 1_000_000)
    for kind in common.chosen_databases(args):
        run(kind, total, args.postgres, 10 if args.quick else 40)


if __name__ == "__main__":
    main()
