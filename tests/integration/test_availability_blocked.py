"""A new booking's `blocked_until`, worked out in SQL (`projections.availability`): the end
plus the premises' buffer, stopped at the next start on the space (not a closure's), never
before the end — the same instant as that rule in Python, on both databases. On SQLite the
minutes go onto the stored text, whose microseconds SQLite's own date arithmetic would
round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

from sqlalchemy import Engine, insert, select

from events.sql import write_transaction
from projections.availability import Availability, keep_keys
from projections.availability_tables import (
    buffers_table,
    busy_table,
    space_keys_table,
    spaces_table,
)

ENDS = [
    datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 50, 59, 999999, tzinfo=UTC),  # past midnight, a new year
    datetime(2028, 2, 28, 23, 30, 0, 500000, tzinfo=UTC),  # into a leap day
]
BUFFERS = [0, 15, 90, 1440]
NEXT = [None, timedelta(0), timedelta(minutes=5), timedelta(minutes=15), timedelta(days=2)]


def _expected(end: datetime, minutes: int, following: datetime | None) -> datetime:
    blocked = end + timedelta(minutes=minutes)
    if minutes and following is not None:
        blocked = max(end, min(blocked, following))
    return blocked


def _row(premises_id: str, ref_id: str, kind: str, start: datetime, end: datetime) -> dict:
    return {
        "premises_id": premises_id,
        "ref_id": ref_id,
        "kind": kind,
        "start": start,
        "end": end,
        "title": None,
        "public": False,
    }


def test_blocked_until_is_the_buffered_end_stopped_at_the_next_start(engine: Engine) -> None:
    cases = list(product(ENDS, BUFFERS, NEXT))
    wanted: dict[str, datetime] = {}
    with write_transaction(engine) as conn:
        for n, (end, minutes, gap) in enumerate(cases):
            premises_id, space_id, other = f"p{n}", f"s{n}", f"o{n}"
            conn.execute(
                insert(buffers_table), [{"premises_id": premises_id, "buffer_minutes": minutes}]
            )
            conn.execute(insert(spaces_table), [{"premises_id": premises_id, "space_id": space_id}])
            keep_keys(conn, [space_id])
            following = None if gap is None else end + gap
            neighbours = [
                # ignored: a closure right after the end, and a booking that starts before it
                {
                    **_row(other, "closure", "closure", end, end + timedelta(hours=1)),
                    "blocked_until": end + timedelta(hours=1),
                },
                {
                    **_row(
                        other, "before", "booking", end - timedelta(days=3), end - timedelta(days=2)
                    ),
                    "blocked_until": end - timedelta(days=2),
                },
            ]
            if following is not None:
                neighbours.append(
                    {
                        **_row(other, "next", "booking", following, following + timedelta(hours=1)),
                        "blocked_until": following + timedelta(hours=1),
                    }
                )
            key = conn.execute(
                select(space_keys_table.c.space_key).where(space_keys_table.c.space_id == space_id)
            ).scalar_one()
            neighbours = [{**r, "space_id": space_id, "space_key": key} for r in neighbours]
            conn.execute(insert(busy_table), neighbours)
            Availability()._insert(
                conn, _row(premises_id, "new", "booking", end - timedelta(hours=1), end)
            )
            wanted[premises_id] = _expected(end, minutes, following)
    with engine.connect() as conn:
        t = busy_table
        found = dict(
            conn.execute(
                select(t.c.premises_id, t.c.blocked_until).where(t.c.ref_id == "new")
            ).all()
        )
    assert found == wanted
