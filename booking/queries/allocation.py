"""What anyone may read of an allocation round once it is published: its result without
names of people (`published_result`), and allocated against requested hours by organisation
type, age group or purpose (`allocation_stats`), shared by the API and the /stats page.

Neither names a person: the result lists premises, weekday, times, the organisation (an
organisation is not a person) and the offer's status — not the section's or the
application's own texts, which an organisation may have written a coach's name into. The
statistics show a group only when at least three organisations are in it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.engine import Connection

from booking.domain.errors import NotFound, RuleBroken
from booking.queries.paging import BAD_CURSOR, Page, PageRequest, encode_cursor, fetch_page
from booking.tables import organisations
from projections.allocation import allocations_table, applications_table, rounds_table
from projections.catalogue import premises_table

STATS_KEYS = ("organisation_type", "age_group", "purpose")
MIN_ORGANISATIONS = 3  # API.md "Usage statistics": no group of fewer than 3 organisations
OFFERED = ("offered", "accepted", "declined", "lapsed")  # what publication offered
WEEKDAY_ORDER = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
RESULT_COLUMNS = (
    "premises_id",
    "premises_name",
    "weekday",
    "start_time",
    "end_time",
    "organisation_id",
    "organisation_name",
    "status",
)


def _utc(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat().replace("+00:00", "Z")


def published_round(conn: Connection, round_id: str) -> Any:
    """The round's row; NotFound when there is none or it is not published yet."""
    t = rounds_table
    row = conn.execute(select(t).where(t.c.id == round_id)).first()
    if row is None:
        raise NotFound(f"No allocation round {round_id!r}.")
    if row.published_at is None:
        raise NotFound(f"The allocation round {round_id!r} has no published result yet.")
    return row


def _weekday_number(column: Any) -> Any:
    """A weekday's text (`mon`…`sun`) as its number from Monday, for ordering in SQL."""
    return case(WEEKDAY_ORDER, value=column, else_=len(WEEKDAY_ORDER))


def published_result(
    conn: Connection, round_id: str, page: PageRequest | None = None
) -> tuple[dict[str, Any], Page[Any] | None]:
    """The round's offers as published and answered since, by premises, weekday, local
    start and id: all of them (`page` None, the CSV), or one page of them and its cursor."""
    row = published_round(conn, round_id)
    a, o, p = allocations_table, organisations, premises_table
    weekday_n = _weekday_number(a.c.weekday).label("weekday_n")
    sql = (
        select(
            a.c.premises_id,
            p.c.name.label("premises_name"),
            a.c.weekday,
            a.c.start_time,
            a.c.end_time,
            a.c.organisation_id,
            o.c.name.label("organisation_name"),
            a.c.status,
            a.c.id,
            weekday_n,
        )
        .select_from(
            a.outerjoin(o, o.c.id == a.c.organisation_id).outerjoin(p, p.c.id == a.c.premises_id)
        )
        .where(a.c.round_id == round_id, a.c.status.in_(OFFERED))
    )
    keys = [a.c.premises_id, weekday_n, a.c.start_time, a.c.id]
    found: Page[Any] | None = None
    if page is None:
        rows = list(conn.execute(sql.order_by(*keys)).all())
    else:
        found = fetch_page(conn, sql, keys, page)
        rows = found.rows
    body = {
        "round_id": row.id,
        "name": row.name,
        "season_start": row.season_start,
        "season_end": row.season_end,
        "published_at": _utc(row.published_at),
        "confirm_by": _utc(row.confirm_by),
        "result": [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in rows],
    }
    return body, found


def result_csv(body: dict[str, Any], language: str = "fi") -> str:
    """The result as CSV, premises named in `language` (Finnish where it has no name)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for r in body["result"]:
        names = r["premises_name"] or {}
        premises_name = names.get(language) or names.get("fi") or r["premises_id"]
        writer.writerow([premises_name if c == "premises_name" else r[c] for c in RESULT_COLUMNS])
    return out.getvalue()


# --- statistics ---------------------------------------------------------------------------


@dataclass
class _Cell:
    organisations: set[str] = field(default_factory=set)
    applications: int = 0
    requested_minutes: int = 0
    allocated_minutes: int = 0
    accepted_minutes: int = 0

    def row(self, round_id: str, key: str, value: str) -> dict[str, Any]:
        if len(self.organisations) < MIN_ORGANISATIONS:
            return suppressed(round_id, key, value)
        requested = round(self.requested_minutes / 60, 2)
        allocated = round(self.allocated_minutes / 60, 2)
        return {
            "round_id": round_id,
            "key": {key: value},
            "suppressed": False,
            "organisations": len(self.organisations),
            "applications": self.applications,
            "requested_hours": requested,
            "allocated_hours": allocated,
            "accepted_hours": round(self.accepted_minutes / 60, 2),
            "allocated_share": round(allocated / requested, 4) if requested else None,
        }


def suppressed(round_id: str, key: str, value: str) -> dict[str, Any]:
    return {
        "round_id": round_id,
        "key": {key: value},
        "suppressed": True,
        "organisations": None,
        "applications": None,
        "requested_hours": None,
        "allocated_hours": None,
        "accepted_hours": None,
        "allocated_share": None,
    }


def published_rounds(conn: Connection) -> list[Any]:
    """Published rounds, newest season first (what the statistics may cover)."""
    t = rounds_table
    return list(
        conn.execute(
            select(t.c.id, t.c.name, t.c.season_start, t.c.season_end)
            .where(t.c.published_at.is_not(None))
            .order_by(t.c.season_start.desc(), t.c.id)
        ).all()
    )


def allocation_stats(
    conn: Connection, group_by: str, round_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Requested and allocated weekly hours per published round and group of `group_by`.

    `requested_hours`: the submitted applications' sections, slots a week × duration;
    `allocated_hours`: what publication offered; `accepted_hours`: what was accepted. A
    group with fewer than three organisations is `suppressed` (no figures); when a round
    would have exactly one such group, the next smallest is suppressed with it, so that no
    figure follows from the round's others and its totals."""
    if group_by not in STATS_KEYS:
        raise ValueError(group_by)
    rounds = [r.id for r in published_rounds(conn)]
    if round_ids is not None:
        unknown = sorted(set(round_ids) - set(rounds))
        if unknown:
            raise NotFound(f"No published allocation round {', '.join(unknown)}.")
        rounds = [r for r in rounds if r in set(round_ids)]
    if not rounds:
        return []
    p, a = applications_table, allocations_table
    found = conn.execute(select(organisations.c.id, organisations.c.type)).all()
    types = {row.id: row.type for row in found}
    cells: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    group_of: dict[str, tuple[str, str]] = {}
    applications = conn.execute(
        select(p.c.id, p.c.round_id, p.c.organisation_id, p.c.purpose, p.c.age_group, p.c.sections)
        .where(p.c.round_id.in_(rounds), p.c.status == "submitted")
        .order_by(p.c.round_id, p.c.id)
    )
    for app in applications:
        value = {
            "organisation_type": types.get(app.organisation_id, "other"),
            "age_group": app.age_group,
            "purpose": " ".join(str(app.purpose).split()).casefold(),
        }[group_by]
        cell = cells[(app.round_id, value)]
        cell.organisations.add(app.organisation_id)
        cell.applications += 1
        cell.requested_minutes += sum(
            int(s["slots_per_week"]) * int(s["duration_minutes"]) for s in app.sections
        )
        group_of[app.id] = (app.round_id, value)
    offers = conn.execute(
        select(a.c.application_id, a.c.start_time, a.c.end_time, a.c.status).where(
            a.c.round_id.in_(rounds), a.c.status.in_(OFFERED)
        )
    )
    for offer in offers:
        where = group_of.get(offer.application_id)
        if where is None:  # withdrawn after an offer cannot happen; skip rather than fail
            continue
        minutes = _minutes(offer.end_time) - _minutes(offer.start_time)
        cells[where].allocated_minutes += minutes
        if offer.status == "accepted":
            cells[where].accepted_minutes += minutes
    rows: list[dict[str, Any]] = []
    for round_id in rounds:
        mine = sorted(
            ((value, cell) for (rid, value), cell in cells.items() if rid == round_id),
            key=lambda vc: vc[0],
        )
        said = [cell.row(round_id, group_by, value) for value, cell in mine]
        hidden = [r for r in said if r["suppressed"]]
        shown = [(r, cell) for r, (_, cell) in zip(said, mine, strict=True) if not r["suppressed"]]
        if len(hidden) == 1 and shown:
            smallest, _ = min(shown, key=lambda rc: (len(rc[1].organisations), str(rc[0]["key"])))
            said[said.index(smallest)] = suppressed(round_id, group_by, smallest["key"][group_by])
        rows += said
    return rows


def allocation_stats_page(
    rows: list[dict[str, Any]], group_by: str, page: PageRequest
) -> Page[dict[str, Any]]:
    """One page of `allocation_stats`' rows in their order (rounds newest season first, then
    the group's value); the cursor is the last row's round and value. The figures are worked
    out whole for each request (a round's suppression looks at all its groups): the page
    only bounds the answer."""
    rank: dict[str, int] = {}
    for row in rows:
        rank.setdefault(row["round_id"], len(rank))

    def order(round_id: str, value: str) -> tuple[int, str]:
        return rank[round_id], value

    start = 0
    if page.after is not None:
        cursor = page.after
        if len(cursor) != 2 or not all(isinstance(v, str) for v in cursor) or cursor[0] not in rank:
            raise RuleBroken({"after": [BAD_CURSOR]})
        after = order(cursor[0], cursor[1])
        start = next(
            (i for i, r in enumerate(rows) if order(r["round_id"], r["key"][group_by]) > after),
            len(rows),
        )
    chosen = rows[start : start + page.limit]
    more = start + page.limit < len(rows)
    last = chosen[-1] if chosen else None
    cursor_out = encode_cursor([last["round_id"], last["key"][group_by]]) if more and last else None
    return Page(chosen, cursor_out)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


STATS_FIGURES = (
    "suppressed",
    "organisations",
    "applications",
    "requested_hours",
    "allocated_hours",
    "accepted_hours",
    "allocated_share",
)


def stats_csv(group_by: str, rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["round_id", group_by, *STATS_FIGURES])
    for r in rows:
        figures = ["" if r[f] is None else r[f] for f in STATS_FIGURES]
        writer.writerow([r["round_id"], r["key"][group_by], *figures])
    return out.getvalue()
