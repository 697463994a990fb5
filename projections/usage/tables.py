"""What the usage projection stores: its tables (by name suffix, for rebuilds) and measures.

See `projections.usage.projection` for what each measure counts.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, SmallInteger, String, Table

from events.sql import JSONDocument, UTCDateTime

LEAD_EDGES: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 18, 24, 36, 48, 72, 96, 120, 168, 240)
LEAD_EDGES += (336, 504, 720, 1080, 1440, 2160, 2880, 4320, 6480, 8760)
LEAD_TOP = 17520
COUNTS = (
    "booked_s",
    "bookings",
    "cancellations",
    "late_cancellations",
    "popup_requests",
    "popup_approved",
    "popup_rejected",
    "popup_expired",
    "attendance_ppm",
    "attendance_n",
)
LEADS = tuple(f"lead_{i}" for i in range(len(LEAD_EDGES)))
MEASURES = COUNTS + LEADS
INDEX = {name: i for i, name in enumerate(MEASURES)}
TIME_COLUMNS = ("month", "week", "weekday")  # derived from the date, for GROUP BY


def lead_bucket(hours: float) -> int:
    return max(0, bisect_right(LEAD_EDGES, hours) - 1)


def time_columns(day: date) -> dict[str, int]:
    iso = day.isocalendar()
    return {
        "month": day.year * 100 + day.month,
        "week": iso.year * 100 + iso.week,
        "weekday": day.weekday(),
    }


def _measure_columns() -> list[Column[Any]]:
    return [Column(name, BigInteger, nullable=False, default=0) for name in MEASURES]


def _time_columns() -> list[Column[Any]]:
    return [Column(name, Integer, nullable=False) for name in TIME_COLUMNS]


def define(metadata: MetaData, suffix: str) -> tuple[Table, ...]:
    def table(name: str, *columns: Any, **info: Any) -> Table:
        return Table(f"usage_{name}{suffix}", metadata, *columns, info=info)

    return (
        table(
            "premises",
            Column("premises_id", String(100), primary_key=True),
            Column("district", String(100), nullable=False),
            Column("timezone", String(64), nullable=False),
            Column("capacity", Integer, nullable=False),
            Column("opening_hours", JSONDocument, nullable=False),
            Column("retired_at", UTCDateTime),
        ),
        table(
            "schedules",  # opening hours in force from valid_from (the first: always before)
            Column("premises_id", String(100), primary_key=True),
            Column("position", BigInteger, primary_key=True),
            Column("valid_from", UTCDateTime, nullable=False),
            Column("opening_hours", JSONDocument, nullable=False),
            Column("timezone", String(64), nullable=False),
        ),
        table(
            "closures",
            Column("premises_id", String(100), primary_key=True),
            Column("closure_id", String(64), primary_key=True),
            Column("start", UTCDateTime, nullable=False),
            Column("end", UTCDateTime, nullable=False),
        ),
        table(
            "organisations",
            Column("organisation_id", String(64), primary_key=True),
            Column("type", String(32), nullable=False),
        ),
        table(
            "bookings",
            Column("booking_id", String(64), primary_key=True),
            Column("premises_id", String(100), nullable=False),
            Column("party", String(64), nullable=False),
            Column("org_type", String(32), nullable=False),
            Column("timezone", String(64), nullable=False),
            # Epoch seconds: read and written for every booking event, so no date parsing.
            Column("start_s", BigInteger, nullable=False),
            Column("end_s", BigInteger, nullable=False),
            Column("status", String(32), nullable=False),
            Column("lead_bucket", SmallInteger, nullable=False),
            Column("attendance_ppm", Integer, nullable=False),
        ),
        table(
            "popups",
            Column("request_id", String(64), primary_key=True),
            Column("premises_id", String(100), nullable=False),
            Column("party", String(64), nullable=False),
            Column("timezone", String(64), nullable=False),
            Column("start", UTCDateTime, nullable=False),
        ),
        table(
            "cells",
            Column("premises_id", String(100), primary_key=True),
            Column("day", Date, primary_key=True),
            Column("hour", SmallInteger, primary_key=True),
            Column("party", String(64), primary_key=True),
            Column("org_type", String(32), nullable=False),
            *_time_columns(),
            *_measure_columns(),
            keep=("org_type", *TIME_COLUMNS),
        ),
        table(
            "days",
            Column("premises_id", String(100), primary_key=True),
            Column("day", Date, primary_key=True),
            *_time_columns(),
            *_measure_columns(),
            keep=TIME_COLUMNS,
        ),
        table(
            "hours",
            Column("day", Date, primary_key=True),
            Column("hour", SmallInteger, primary_key=True),
            *_time_columns(),
            *_measure_columns(),
            keep=TIME_COLUMNS,
        ),
    )


def canonical_hours(opening_hours: Any) -> str:
    """Opening hours as canonical JSON text (the cache key of their weekly template)."""
    return json.dumps(opening_hours, sort_keys=True, separators=(",", ":"))
