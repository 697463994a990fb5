"""Usage statistics as CSV: the one file format that GET /api/v1/stats/usage?format=csv and
the /stats page's download share (figures from projections.usage.query)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from projections.usage.query import FIGURES

Period = tuple[str, date, date, list[dict[str, Any]]]  # name, first day, last day, rows


def usage_csv(group_by: list[str], periods: list[Period]) -> str:
    """One row per period and group: period, from, to, the group's keys, every figure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "from", "to", *group_by, *FIGURES])
    for name, first, last, rows in periods:
        for row in rows:
            figures = ["" if row[f] is None else row[f] for f in FIGURES]
            writer.writerow([name, first, last, *(row["key"][k] for k in group_by), *figures])
    return out.getvalue()
