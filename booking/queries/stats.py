"""Usage statistics as CSV: the one file format that GET /api/v1/stats/usage?format=csv and
the /stats page's download share (figures from projections.usage.query); and the JSON rows
of both periods one aligned page at a time (`usage_page`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from booking.domain.errors import RuleBroken
from booking.queries.paging import BAD_CURSOR, PageRequest, encode_cursor
from projections.usage.query import FIGURES, WEEKDAYS

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


# --- paging the JSON rows ----------------------------------------------------------------------

NUMBERED = ("month", "week", "weekday", "hour")  # a cursor holds these as whole numbers


@dataclass(frozen=True)
class UsagePage:
    rows: list[dict[str, Any]]
    previous: list[dict[str, Any]]
    next: str | None


def usage_page(
    group_by: list[str],
    current: tuple[date, list[dict[str, Any]]],
    previous: tuple[date, list[dict[str, Any]]],
    page: PageRequest,
) -> UsagePage:
    """One page of both periods' rows, aligned: a page covers a run of groups in the rows'
    order, and holds the current and the previous period's rows of exactly those groups.

    A group is a row's key with its month or week written as its place in its own period
    (0 for the period's first month or week), so the current period's first month and the
    previous period's first month are one group, as are the same premises, weekday, hour or
    organisation type in both. A page takes whole groups while neither period's rows exceed
    `limit` (at least one group), so it may show fewer rows than `limit` where a group has
    rows in one period only. The cursor is the last group's key."""
    after = None if page.after is None else _cursor_group(group_by, page.after)
    groups: dict[tuple[Any, ...], list[int]] = {}
    keyed: list[list[tuple[Any, ...]]] = []
    for n, (first, rows) in enumerate((current, previous)):
        keys = [_group(group_by, row["key"], first) for row in rows]
        keyed.append(keys)
        for key in keys:
            groups.setdefault(key, [0, 0])[n] += 1
    ahead = sorted(
        (g for g in groups if after is None or _order(group_by, g) > _order(group_by, after)),
        key=lambda g: _order(group_by, g),
    )
    chosen: set[tuple[Any, ...]] = set()
    counts = [0, 0]
    for group in ahead:
        here = groups[group]
        if chosen and any(counts[i] + here[i] > page.limit for i in (0, 1)):
            break
        chosen.add(group)
        counts = [counts[i] + here[i] for i in (0, 1)]
    last = ahead[len(chosen) - 1] if chosen else None
    return UsagePage(
        [row for row, key in zip(current[1], keyed[0], strict=True) if key in chosen],
        [row for row, key in zip(previous[1], keyed[1], strict=True) if key in chosen],
        encode_cursor(list(last)) if last is not None and len(chosen) < len(ahead) else None,
    )


def _group(group_by: list[str], key: dict[str, Any], first: date) -> tuple[Any, ...]:
    """A row's group: its key's values in the rows' order (the other keys in `group_by`'s
    order, then the organisation type), months and weeks as their place in the period."""
    found: list[Any] = []
    for k in _ordered(group_by):
        value = key[k]
        if k == "month":
            value = int(value[:4]) * 12 + int(value[5:7]) - (first.year * 12 + first.month)
        elif k == "week":
            monday = date.fromisocalendar(int(value[:4]), int(value[6:]), 1)
            value = (monday - (first - timedelta(days=first.weekday()))).days // 7
        elif k == "weekday":
            value = WEEKDAYS.index(value)
        found.append(value)
    return tuple(found)


def _ordered(group_by: list[str]) -> list[str]:
    """The keys in the order the rows are sorted by: the organisation type last."""
    return [k for k in group_by if k != "organisation_type"] + [
        k for k in group_by if k == "organisation_type"
    ]


def _order(group_by: list[str], group: tuple[Any, ...]) -> tuple[Any, ...]:
    """How groups follow each other, as `projections.usage.query.usage` sorts its rows:
    numbers before texts per key; within a group of the other keys, the organisation types
    as they are broken down (`all` alone, else by name with the pooled `other` last)."""
    found: list[Any] = []
    for k, value in zip(_ordered(group_by), group, strict=True):
        if k == "organisation_type":
            found.append((0 if value == "all" else 2 if value == "other" else 1, value))
        else:
            found.append((0, value) if isinstance(value, int) else (1, str(value)))
    return tuple(found)


def _cursor_group(group_by: list[str], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A decoded cursor as a group of this grouping (422 on `after` for anything else)."""
    keys = _ordered(group_by)
    if len(values) != len(keys) or any(
        isinstance(v, int) != (k in NUMBERED) for k, v in zip(keys, values, strict=True)
    ):
        raise RuleBroken({"after": [BAD_CURSOR]})
    return values
