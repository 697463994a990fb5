"""Asking the usage projection: figures for a period, grouped by one or two keys.

Booked figures come from the coarsest rollup table that holds the asked grouping; open hours
are counted from the opening-hours history (`projections.usage.hours`). With
`organisation_type` among the keys, each group of the other keys is broken down by
organisation type only where every shown type has at least `MIN_PARTIES` organisations:
smaller types are pooled as "other", and if even the pool is smaller, the group is shown
whole as "all".
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, SupportsInt
from typing import cast as typed_as
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, func, select
from sqlalchemy.engine import Connection

from events.slot import Slot
from projections.usage.blocked import blocked_seconds
from projections.usage.hours import PremisesHours, Segment, open_seconds
from projections.usage.projection import Usage
from projections.usage.tables import INDEX, LEAD_EDGES, LEAD_TOP, LEADS, MEASURES, canonical_hours

GROUP_KEYS = ("premises", "district", "month", "week", "weekday", "hour", "organisation_type")
TIME_KEYS = ("month", "week", "weekday")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_PARTIES = 3
FIGURES = (
    "open_hours",
    "booked_hours",
    "blocked_hours",
    "utilisation",
    "bookings",
    "cancellations",
    "late_cancellations",
    "popup_requests",
    "popup_approved",
    "popup_rejected",
    "popup_expired",
    "median_lead_time_hours",
    "mean_attendees_per_capacity",
)


class UnknownPremises(LookupError):
    pass


@dataclass
class Group:
    open_s: int = 0
    blocked_s: int = 0
    measures: list[int] | None = None
    parties: int = 0

    def add(self, values: Sequence[int]) -> None:
        if self.measures is None:
            self.measures = [0] * len(MEASURES)
        for i, v in enumerate(values):
            self.measures[i] += int(v)


def _time_key(keys: Sequence[str]) -> Callable[[date], tuple[object, ...]]:
    wanted = [k for k in keys if k in TIME_KEYS]

    def key(day: date) -> tuple[object, ...]:
        found: list[object] = []
        for k in wanted:
            if k == "month":
                found.append(day.year * 100 + day.month)
            elif k == "week":
                iso = day.isocalendar()
                found.append(iso.year * 100 + iso.week)
            else:
                found.append(day.weekday())
        return tuple(found)

    return key


def premises_hours(conn: Connection, ids: Sequence[str] | None = None) -> list[PremisesHours]:
    """Every premises (or those named) with its opening-hours history and closures."""
    t = Usage().t
    pc, sc = t["premises"].c, t["schedules"].c
    query = select(pc.premises_id, pc.district, pc.timezone, pc.retired_at)
    query = query.order_by(pc.premises_id)
    if ids is not None:
        query = query.where(pc.premises_id.in_(list(ids)))
    rows = conn.execute(query).all()
    if ids is not None and len(rows) != len(set(ids)):
        raise UnknownPremises(sorted(set(ids) - {r.premises_id for r in rows}))
    chosen = [r.premises_id for r in rows]
    schedules: dict[str, list[Any]] = defaultdict(list)
    # Opening hours as the database's text, made canonical once per distinct text: decoding
    # every premises' JSON twice per request was a third of a year's statistics.
    for schedule in conn.execute(
        select(
            sc.premises_id, sc.valid_from, sc.timezone, cast(sc.opening_hours, Text).label("raw")
        )
        .where(sc.premises_id.in_(chosen))
        .order_by(sc.premises_id, sc.position)
    ):
        schedules[schedule.premises_id].append(schedule)
    closures: dict[str, list[Slot]] = defaultdict(list)
    for c in conn.execute(select(t["closures"]).where(t["closures"].c.premises_id.in_(chosen))):
        closures[c.premises_id].append(Slot(c.start, c.end))
    found = []
    for row in rows:
        history = schedules[row.premises_id]
        segments = []
        for n, s in enumerate(history):
            start = None if n == 0 else s.valid_from
            end = history[n + 1].valid_from if n + 1 < len(history) else None
            if row.retired_at is not None:
                if start is not None and start >= row.retired_at:
                    break
                end = row.retired_at if end is None else min(end, row.retired_at)
            segments.append(Segment(start, end, _canonical(s.raw), s.timezone))
        found.append(
            PremisesHours(
                row.premises_id,
                row.district,
                ZoneInfo(row.timezone),
                segments,
                closures[row.premises_id],
            )
        )
    return found


@lru_cache(maxsize=1024)
def _canonical(raw: str) -> str:
    return canonical_hours(json.loads(raw))


def usage(
    conn: Connection,
    first: date,
    last: date,
    group_by: Sequence[str],
    premises_ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows of figures for local dates first..last inclusive, one per group (sorted)."""
    places = premises_hours(conn, premises_ids)
    district = {p.premises_id: p.district for p in places}
    outer_keys = [k for k in group_by if k != "organisation_type"]
    by_org = "organisation_type" in group_by

    def place_part(premises_id: str) -> dict[str, object]:
        found: dict[str, object] = {}
        if "premises" in group_by:
            found["premises"] = premises_id
        if "district" in group_by:
            found["district"] = district.get(premises_id, "")
        return found

    def time_part(values: Sequence[object], hour: int | None) -> dict[str, object]:
        wanted = [k for k in group_by if k in TIME_KEYS]
        found: dict[str, object] = dict(zip(wanted, values, strict=True))
        if "hour" in group_by:
            found["hour"] = hour
        return found

    def outer(premises_id: str, times: Sequence[object], hour: int | None) -> tuple[object, ...]:
        parts = {**place_part(premises_id), **time_part(times, hour)}
        return tuple(parts[k] for k in outer_keys)

    groups: dict[tuple[object, ...], Group] = defaultdict(Group)
    by_place = "premises" in group_by or "district" in group_by
    for (premises_id, times, hour), seconds in open_seconds(
        places,
        first,
        last,
        _time_key(group_by),
        place=(lambda p: p.premises_id) if by_place else (lambda p: ""),
        by_hour="hour" in group_by,
    ).items():
        groups[outer(premises_id, times, hour)].open_s += seconds

    time_key = _time_key(group_by)
    for key, seconds in blocked_seconds(
        conn,
        places,
        first,
        last,
        lambda premises_id, day, hour: outer(premises_id if by_place else "", time_key(day), hour),
    ).items():
        groups[key].blocked_s += seconds

    inner: dict[tuple[object, ...], dict[str, Group]] = defaultdict(dict)
    for row in _booked(conn, first, last, group_by, premises_ids):
        row_times = [row[k] for k in TIME_KEYS if k in group_by]
        key = outer(row.get("premises_id", ""), row_times, row.get("hour"))
        values = [row[m] for m in MEASURES]
        if by_org:
            part = inner[key].setdefault(row["org_type"], Group())
            part.add(values)
            part.parties += row["parties"]
        else:
            groups[key].add(values)

    rows = []
    for key in sorted(set(groups) | set(inner), key=_sortable):
        total = groups[key]
        named = dict(zip(outer_keys, key, strict=True))
        if not by_org:
            rows.append(
                _figures(_shown(named, group_by), total.open_s, total.measures, total.blocked_s)
            )
            continue
        for org_type, part in _broken_down(inner.get(key, {})):
            shown = _shown({**named, "organisation_type": org_type}, group_by)
            # Blocked time belongs to no organisation: each part shows its group's.
            rows.append(_figures(shown, total.open_s, part.measures, total.blocked_s))
    return rows


def _booked(
    conn: Connection,
    first: date,
    last: date,
    group_by: Sequence[str],
    premises_ids: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Summed measures per group from the coarsest table that answers it."""
    t = Usage().t
    by_place = premises_ids is not None or "premises" in group_by or "district" in group_by
    if "organisation_type" in group_by or (by_place and "hour" in group_by):
        table = t["cells"]
    elif by_place:
        table = t["days"]
    else:
        table = t["hours"]
    columns = []
    if by_place:
        columns.append(table.c.premises_id)
    columns += [table.c[k] for k in TIME_KEYS if k in group_by]
    if "hour" in group_by:
        columns.append(table.c.hour)
    if "organisation_type" in group_by:
        columns.append(table.c.org_type)
    sums = [func.sum(table.c[m]).label(m) for m in MEASURES]
    extra = []
    if "organisation_type" in group_by:
        extra.append(func.count(func.distinct(table.c.party)).label("parties"))
    query = select(*columns, *sums, *extra).where(table.c.day.between(first, last))
    if premises_ids is not None:
        query = query.where(table.c.premises_id.in_(list(premises_ids)))
    if columns:
        query = query.group_by(*columns)
    found = []
    for row in conn.execute(query).mappings():
        if row[MEASURES[0]] is None:
            continue  # no rows at all: SUM over nothing
        found.append(dict(row))
    return found


def _broken_down(parts: dict[str, Group]) -> list[tuple[str, Group]]:
    """The organisation types of one group, small ones pooled, or the group whole."""
    shown = [(k, g) for k, g in sorted(parts.items()) if g.parties >= MIN_PARTIES]
    small = [g for _, g in sorted(parts.items()) if g.parties < MIN_PARTIES]
    pooled = Group()
    for g in small:
        pooled.add(g.measures or [])
        pooled.parties += g.parties
    if small and pooled.parties < MIN_PARTIES:
        whole = Group()
        for g in parts.values():
            whole.add(g.measures or [])
        return [("all", whole)]
    if small:
        # The pool is named "other": where the type "other" is large enough to be shown
        # itself, the pool joins it (two rows named "other" in one group would be neither).
        for k, g in shown:
            if k == "other":
                pooled.add(g.measures or [])
                pooled.parties += g.parties
        shown = [(k, g) for k, g in shown if k != "other"] + [("other", pooled)]
    return shown or [("all", Group())]


def _sortable(key: tuple[object, ...]) -> tuple[tuple[int, object], ...]:
    return tuple((0, v) if isinstance(v, int) else (1, str(v)) for v in key)


def _int(value: object) -> int:
    """A time key's part as a number (an int, or what the database gave for one)."""
    return int(typed_as(SupportsInt, value))


def _shown(named: dict[str, object], group_by: Sequence[str]) -> dict[str, object]:
    """The key as the API shows it: months and weeks as text, weekdays by name."""
    found: dict[str, object] = {}
    for k in group_by:
        v = named[k]
        if k == "month":
            found[k] = f"{_int(v) // 100:04d}-{_int(v) % 100:02d}"
        elif k == "week":
            found[k] = f"{_int(v) // 100:04d}-W{_int(v) % 100:02d}"
        elif k == "weekday":
            found[k] = WEEKDAYS[_int(v)]
        else:
            found[k] = v
    return found


def median_lead_hours(counts: Sequence[int]) -> float | None:
    """The median of a lead-time histogram, interpolating linearly within its bucket."""
    total = sum(counts)
    if total <= 0:
        return None
    half, seen = total / 2, 0
    for i, count in enumerate(counts):
        if count > 0 and seen + count >= half:
            low = LEAD_EDGES[i]
            high = LEAD_EDGES[i + 1] if i + 1 < len(LEAD_EDGES) else LEAD_TOP
            return low + (high - low) * (half - seen) / count
        seen += count
    return None  # pragma: no cover - the loop always reaches half


def _figures(
    key: dict[str, object], open_s: int, measures: list[int] | None, blocked_s: int = 0
) -> dict[str, Any]:
    m = measures or [0] * len(MEASURES)
    booked = m[INDEX["booked_s"]]
    attended = m[INDEX["attendance_n"]]
    median = median_lead_hours([m[INDEX[name]] for name in LEADS])
    return {
        "key": key,
        "open_hours": round(open_s / 3600, 4),
        "booked_hours": round(booked / 3600, 4),
        "blocked_hours": round(blocked_s / 3600, 4),
        "utilisation": round(min(1.0, booked / open_s), 4) if open_s > 0 else None,
        "bookings": m[INDEX["bookings"]],
        "cancellations": m[INDEX["cancellations"]],
        "late_cancellations": m[INDEX["late_cancellations"]],
        "popup_requests": m[INDEX["popup_requests"]],
        "popup_approved": m[INDEX["popup_approved"]],
        "popup_rejected": m[INDEX["popup_rejected"]],
        "popup_expired": m[INDEX["popup_expired"]],
        "median_lead_time_hours": None if median is None else round(median, 2),
        "mean_attendees_per_capacity": (
            round(m[INDEX["attendance_ppm"]] / attended / 1_000_000, 4) if attended else None
        ),
    }
