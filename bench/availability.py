"""Availability of one premises for a 31-day month, and the search over all premises for a
2-hour window, with the demo year loaded — each beside a plain SELECT of the busy rows.

(b) month: GET /api/v1/premises/{id}/availability?from&to through the Flask test client (after
    the first request the view's per-process cache answers: that row shows a hit), and in
    process what the view does on a miss (its queries, the days and the JSON body).
(c) search: GET /api/v1/availability?start&end over every premises, and in process.
The floor for each is one SQLAlchemy Core SELECT of the same premises' busy rows in the
window, over the same index range as the view's, on the same engine. (b) asks for the
premises and 31-day month with the most busy rows (the most days to build); (c) walks 2-hour
windows across the coming 31-day month, which is what people search in.

    python -m bench.availability [--quick] [--databases sqlite,postgresql] [--bookings N]
                                 [--profile N]
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from bench import common
from booking.api.premises import _AVAILABILITY_HEAD, _availability_body, matching_premises
from booking.http import statement_reads
from booking.service import PremisesRepository, premises_stream
from events.opening import OpeningHours
from events.slot import LONGEST_BOOKING, LONGEST_BUFFER, Slot
from events.sql import read_transaction
from projections.availability import busy_between, busy_table, free_for_whole
from projections.catalogue import premises_table

MONTH_TARGET_P95 = 0.005  # seconds, in process
SEARCH_TARGET_P95 = 0.020
ZONE = ZoneInfo("Europe/Helsinki")


@dataclass(frozen=True)
class Month:
    premises_id: str
    first: date
    last: date
    busy_rows: int

    @property
    def window(self) -> Slot:
        """The instants the view asks about: the first local midnight to two days past the
        last date (opening hours may run past midnight)."""
        return Slot(
            datetime.combine(self.first, time(), ZONE),
            datetime.combine(self.last + timedelta(days=2), time(), ZONE),
        )


def busiest_month(engine: Engine) -> Month:
    """The premises and 31-day month with the most busy rows."""
    t = busy_table
    with read_transaction(engine) as conn:
        rows = conn.execute(select(t.c.premises_id, t.c.start)).all()
    counts = Counter(
        (premises_id, local.year, local.month)
        for premises_id, start in rows
        if calendar.monthrange((local := start.astimezone(ZONE)).year, local.month)[1] == 31
    )
    if not counts:
        raise RuntimeError("no busy rows in any 31-day month: is the demo loaded?")
    (premises_id, year, month), found = counts.most_common(1)[0]
    return Month(premises_id, date(year, month, 1), date(year, month, 31), found)


def coming_month(today: date) -> tuple[date, date]:
    """The next 31-day month starting after `today`: what people search in."""
    first = date(today.year, today.month, 1)
    while True:
        first = (first + timedelta(days=32)).replace(day=1)
        if calendar.monthrange(first.year, first.month)[1] == 31:
            return first, first.replace(day=31)


def search_windows(first: date) -> list[Slot]:
    """2-hour windows over 31 days from `first` at times people book: 10, 14 and 17."""
    starts = [
        datetime.combine(first + timedelta(days=day), time(hour), ZONE)
        for day in range(31)
        for hour in (10, 14, 17)
    ]
    return [Slot(start, start + timedelta(hours=2)) for start in starts]


# --- (b) one premises, one month ----------------------------------------------------------


def _reach(window: Slot) -> datetime:
    """How far back a busy row meeting `window` may start (bookings and holds; the index
    range `busy_between` reads), so the floor walks the same range of the same index."""
    return window.start - LONGEST_BOOKING - LONGEST_BUFFER


def month_floor(engine: Engine, month: Month) -> Callable[[int], object]:
    t, window = busy_table, month.window

    def query(_: int) -> object:
        with engine.connect() as conn:
            return conn.execute(
                select(t.c.kind, t.c.start, t.c.end, t.c.blocked_until, t.c.title).where(
                    t.c.premises_id == month.premises_id,
                    t.c.start >= _reach(window),
                    t.c.start < window.end,
                    t.c.blocked_until > window.start,
                )
            ).all()

    return query


def month_in_process(engine: Engine, month: Month) -> Callable[[int], object]:
    """What the availability view does when its cache misses: the head query, the busy rows,
    the days and the JSON body (`booking.api.premises`), without HTTP and the cache."""
    stream = premises_stream(month.premises_id)

    def query(_: int) -> object:
        with statement_reads(engine) as conn:
            row = conn.execute(
                _AVAILABILITY_HEAD, {"id": month.premises_id, "stream": stream}
            ).one()
            return _availability_body(conn, month.premises_id, row, month.first, month.last)

    return query


def month_http(client: Any, month: Month) -> Callable[[int], object]:
    path = f"/api/v1/premises/{month.premises_id}/availability?from={month.first}&to={month.last}"

    def get(_: int) -> object:
        response = client.get(path)
        if response.status_code != 200 or len(response.get_json()["days"]) != 31:
            raise RuntimeError(f"availability failed: {response.status_code} {response.data!r}")
        return response

    return get


# --- (c) every premises, a 2-hour window --------------------------------------------------


def search_floor(engine: Engine, windows: list[Slot]) -> Callable[[int], object]:
    t, p = busy_table, premises_table

    def query(i: int) -> object:
        window = windows[i % len(windows)]
        with engine.connect() as conn:
            live = select(p.c.id).where(p.c.retired.is_(False))
            return conn.execute(
                select(t.c.premises_id, t.c.start, t.c.blocked_until).where(
                    t.c.premises_id.in_(live),
                    t.c.start >= _reach(window),
                    t.c.start < window.end,
                    t.c.blocked_until > window.start,
                )
            ).all()

    return query


def search_in_process(engine: Engine, windows: list[Slot]) -> Callable[[int], object]:
    """What the search view computes, minus the JSON."""

    def query(i: int) -> object:
        window = windows[i % len(windows)]
        with statement_reads(engine) as conn:
            candidates = matching_premises(conn, {})
            busy = busy_between(conn, [r.id for r in candidates], window)
        return [
            row.id
            for row in candidates
            if free_for_whole(
                OpeningHours.parse(row.opening_hours), ZoneInfo(row.timezone), window, busy[row.id]
            )
        ]

    return query


def search_http(client: Any, windows: list[Slot]) -> Callable[[int], object]:
    def get(i: int) -> object:
        window = windows[i % len(windows)]
        query = {"start": window.start.isoformat(), "end": window.end.isoformat()}
        response = client.get("/api/v1/availability", query_string=query)
        if response.status_code != 200:
            raise RuntimeError(f"search failed: {response.status_code} {response.data!r}")
        return response

    return get


# --- running ------------------------------------------------------------------------------


def _rows(
    kind: str, what: str, samples: dict[str, common.Samples], target: float, labels: dict[str, str]
) -> list[list[object]]:
    floor = samples["floor"]
    rows: list[list[object]] = []
    for name, label in labels.items():
        found = samples[name]
        if name == "floor":
            verdict = "baseline"
        elif name == "process":
            wall = "met" if found.p95 <= target else "MISSED"
            cpu = "met" if found.cpu_p(95) <= target else "MISSED"
            verdict = f"p95 ≤ {target * 1000:g} ms: {wall} (cpu: {cpu})"
        else:
            verdict = "(extra)"
        rows.append(
            [
                kind,
                what,
                label,
                found.count,
                common.millis(found.p50),
                common.millis(found.p95),
                common.ratio(found.p50 / floor.p50),
                common.ratio(found.p95 / floor.p95),
                common.millis(found.cpu_p(50)),
                common.millis(found.cpu_p(95)),
                verdict,
            ]
        )
    return rows


def measure(
    kind: str, engine: Engine, booking_count: int, requests: int, profile: int = 0
) -> tuple[list[list[object]], str]:
    app = common.bench_app(engine)
    repository: PremisesRepository = common.repository_of(app)
    loaded = common.load_demo(engine, repository, booking_count)
    with read_transaction(engine) as conn:
        premises_count = len(matching_premises(conn, {}))
        busy_count = len(conn.execute(select(busy_table.c.ref_id)).all())
    month = busiest_month(engine)
    coming, _ = coming_month(datetime.now(ZONE).date())
    windows = search_windows(coming)
    client = app.test_client()
    demo = loaded.summary.split("\n\n")[0].strip()  # the figures, not the demo accounts
    note = (
        f"{kind}: demo loaded in {loaded.seconds:.0f} s:\n{demo}\n"
        f"{premises_count} premises, {busy_count} busy rows; month {month.first:%Y-%m} of "
        f"{month.premises_id} ({month.busy_rows} busy rows); {len(windows)} search windows "
        f"in {coming:%Y-%m}"
    )
    print(note, end="\n\n", flush=True)
    month_samples = common.interleave(
        {
            "floor": month_floor(engine, month),
            "process": month_in_process(engine, month),
            "http": month_http(client, month),
        },
        requests,
    )
    search_samples = common.interleave(
        {
            "floor": search_floor(engine, windows),
            "process": search_in_process(engine, windows),
            "http": search_http(client, windows),
        },
        requests,
    )
    if profile:
        common.profile_calls(
            f"{kind}, (b) in process", month_in_process(engine, month), range(profile)
        )
        common.profile_calls(
            f"{kind}, (c) in process", search_in_process(engine, windows), range(profile)
        )
    rows = _rows(
        kind,
        "(b) 1 premises, 31 days",
        month_samples,
        MONTH_TARGET_P95,
        {
            "floor": "SELECT busy rows (floor)",
            "process": "in process",
            "http": "GET …/availability (test client)",
        },
    )
    rows += _rows(
        kind,
        f"(c) search {premises_count} premises, 2 h",
        search_samples,
        SEARCH_TARGET_P95,
        {
            "floor": "SELECT busy rows (floor)",
            "process": "in process",
            "http": "GET /api/v1/availability (test client)",
        },
    )
    return rows, note


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--bookings", type=int, help="demo bookings to load (default 20000)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N requests")
    args = parser.parse_args(argv)
    booking_count = args.bookings or (2000 if args.quick else 20_000)
    requests = 50 if args.quick else 300
    print(f"(b, c) availability — {requests} requests each, {common.machine()}\n", flush=True)
    rows: list[list[object]] = []
    for kind in common.chosen_databases(args):
        with common.migrated_engine(kind, args.postgres) as engine:
            found, _ = measure(kind, engine, booking_count, requests, args.profile)
            rows.extend(found)
    print()
    common.print_table(
        "(b, c) availability with the demo year loaded: latency per request",
        [
            "database",
            "query",
            "path",
            "n",
            "p50 ms",
            "p95 ms",
            "p50 vs floor",
            "p95 vs floor",
            "cpu p50",
            "cpu p95",
            "target",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
