"""A held rebuild's bookings spread into their cells by the database (`spread_by_sql`).

What Python hands over: one row per shape of booking (`_Batch.shapes`: premises, party,
organisation type, zone, start and end, the sum of the signs of its uses, whether it was
used, and its start cell's counts) and one row per piece of time (zone, start and end, the
piece's number, local date and hour, seconds, and the date's time columns) for each
distinct time of those shapes. One `INSERT … SELECT … GROUP BY` then makes the cells: the
seconds of every piece of a used shape, the counts in its start cell (piece 0), an unused
shape only in its start cell. Building, sorting and writing 45-column rows in Python was
half the cost of a rebuild's cells.

The cells keep the organisation type of what touched them first (`_Batch.cells`); here
there is one per party or the caller spreads in Python instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, SmallInteger, String, Table
from sqlalchemy.engine import Connection

from projections.batching import upsert_rows
from projections.usage.tables import INDEX, LEADS, MEASURES, TIME_COLUMNS, time_columns

# The start cell's counts a booking's events may change, each a column of a shape's row;
# the lead-time buckets go as (bucket, count), one row per bucket a shape touched.
STARTS = ("bookings", "cancellations", "late_cancellations", "attendance_ppm", "attendance_n")
_START_AT = {INDEX[name]: n for n, name in enumerate(STARTS)}
_LEAD_AT = {INDEX[name]: n for n, name in enumerate(LEADS)}

_metadata = MetaData()
shapes_table = Table(
    "usage_spread_shapes",
    _metadata,
    Column("premises_id", String(100), nullable=False),
    Column("party", String(64), nullable=False),
    Column("org_type", String(32), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("start_s", BigInteger, nullable=False),
    Column("end_s", BigInteger, nullable=False),
    Column("signs", BigInteger, nullable=False),
    Column("used", SmallInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in STARTS),
    Column("lead", SmallInteger, nullable=False),
    Column("lead_n", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
pieces_table = Table(
    "usage_spread_pieces",
    _metadata,
    Column("timezone", String(64), primary_key=True),
    Column("start_s", BigInteger, primary_key=True),
    Column("end_s", BigInteger, primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("day", Date, nullable=False),
    Column("hour", SmallInteger, nullable=False),
    Column("seconds", BigInteger, nullable=False),
    *(Column(name, Integer, nullable=False) for name in TIME_COLUMNS),
    prefixes=["TEMPORARY"],
)

Pieces = Callable[[int, int, str], tuple[tuple[date, int, int], ...]]
StartCell = Callable[[int, str], tuple[date, int]]


def spread_by_sql(
    conn: Connection,
    cells: Table,
    shapes: dict[tuple[str, str, str, str, int, int], list[Any]],
    pieces_of: Pieces,
    start_cell: StartCell,
    fresh: bool,
    kinds: dict[str, str],
) -> bool:
    """Write the cells of `shapes` (`_Batch.shapes`) into `cells`, summed into the rows
    there unless `fresh`; False (and nothing written) where a party has two organisation
    types (`kinds`: party -> type of what else the caller writes; filled in) or a shape
    counts something else in its start cell: the caller spreads those in Python."""
    rows = []
    for (premises_id, party, org_type, zone, start_s, end_s), shape in shapes.items():
        if kinds.setdefault(party, org_type) != org_type:
            return False
        signs, _, first_use, start = shape
        counts = [0] * len(STARTS)
        leads = []
        for i, amount in start.items():
            if (at := _START_AT.get(i)) is not None:
                counts[at] = amount
            elif (bucket := _LEAD_AT.get(i)) is not None:
                leads.append((bucket, amount))
            else:
                return False
        used = 0 if first_use is None else 1
        head = (premises_id, party, org_type, zone, start_s, end_s)
        bucket, count = leads[0] if leads else (0, 0)
        rows.append((*head, signs, used, *counts, bucket, count))
        for bucket, count in leads[1:]:  # only the start cell, which the shape touches anyway
            rows.append((*head, 0, 0, *[0] * len(STARTS), bucket, count))
    if not rows:
        return True
    sqlite = conn.dialect.name == "sqlite"
    pieces = _pieces({(r[3], r[4], r[5]) for r in rows}, pieces_of, start_cell, sqlite)
    for table in (shapes_table, pieces_table):
        table.drop(conn, checkfirst=True)
        table.create(conn)
    try:
        names = [c.name for c in shapes_table.columns]
        upsert_rows(conn, shapes_table, [], names, rows, fresh=True)
        names = [c.name for c in pieces_table.columns]
        upsert_rows(conn, pieces_table, [], names, pieces, fresh=True)
        if not sqlite:
            conn.exec_driver_sql(f'ANALYZE "{shapes_table.name}"')
            conn.exec_driver_sql(f'ANALYZE "{pieces_table.name}"')
        conn.exec_driver_sql(_statement(cells, fresh))
    finally:
        for table in (shapes_table, pieces_table):
            table.drop(conn)
    return True


def _pieces(
    times: Iterable[tuple[str, int, int]], pieces_of: Pieces, start_cell: StartCell, sqlite: bool
) -> list[tuple[Any, ...]]:
    """The pieces' rows of these (zone, start, end): piece 0 is the start cell, even of a
    time that covers nothing (seconds 0 then)."""
    found = []
    derived: dict[date, tuple[Any, ...]] = {}
    for zone, start_s, end_s in times:
        pieces = pieces_of(start_s, end_s, zone)
        if not pieces:
            day, hour = start_cell(start_s, zone)
            pieces = ((day, hour, 0),)
        for n, (day, hour, seconds) in enumerate(pieces):
            if (columns := derived.get(day)) is None:
                values = time_columns(day)
                columns = derived[day] = (
                    day.isoformat() if sqlite else day,
                    *(values[k] for k in TIME_COLUMNS),
                )
            text, *times_of_day = columns
            found.append((zone, start_s, end_s, n, text, hour, seconds, *times_of_day))
    return found


def _statement(cells: Table, fresh: bool) -> str:
    keys = ["premises_id", "day", "hour", "party"]
    sums = []
    for name in MEASURES:
        if name == "booked_s":
            sums.append("sum(s.signs * p.seconds)")
        elif name in STARTS:
            sums.append(f"sum(CASE WHEN p.n = 0 THEN s.{name} ELSE 0 END)")
        elif name in LEADS:
            sums.append(
                f"sum(CASE WHEN p.n = 0 AND s.lead = {LEADS.index(name)} THEN s.lead_n ELSE 0 END)"
            )
        else:
            sums.append("0")
    grouped = "s.premises_id, p.day, p.hour, s.party"
    times = ", ".join(f"p.{k}" for k in TIME_COLUMNS)
    columns = ", ".join(f'"{n}"' for n in (*keys, "org_type", *TIME_COLUMNS, *MEASURES))
    sql = (
        f'INSERT INTO "{cells.name}" ({columns}) '
        f"SELECT {grouped}, min(s.org_type), {times}, {', '.join(sums)} "
        f'FROM "{shapes_table.name}" s JOIN "{pieces_table.name}" p '
        "ON p.timezone = s.timezone AND p.start_s = s.start_s AND p.end_s = s.end_s "
        f"WHERE s.used = 1 OR p.n = 0 GROUP BY {grouped}, {times} ORDER BY {grouped}"
    )
    if fresh:
        return sql
    added = ", ".join(f'"{m}" = "{cells.name}"."{m}" + excluded."{m}"' for m in MEASURES)
    conflict = ", ".join(f'"{k}"' for k in keys)
    return f"{sql} ON CONFLICT ({conflict}) DO UPDATE SET {added}"
