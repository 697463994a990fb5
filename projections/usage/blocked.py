"""`blocked_hours` of the usage statistics: time a premises could not be booked because a
premises sharing a space with it (the whole hall, for a half; a half, for the whole) was in
use, and it was not in use itself (API.md, premises made of spaces).

Read from the availability projection when asked, in the premises' own cells (local date x
local hour): the confirmed bookings of the others on the premises' spaces, merged (both
halves booked at once block the whole once), less the premises' own bookings. A premises
whose spaces nobody shares has none, and costs one query for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from events.slot import Slot, merge, subtract
from projections.availability_read import busy_between
from projections.availability_tables import spaces_table
from projections.usage.hours import PremisesHours, local_midnight, split_hours

KeyOf = Callable[[str, date, int], tuple[object, ...]]


def shared_premises(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Those of `ids` that share a space with another premises."""
    mine, theirs = spaces_table.alias("mine"), spaces_table.alias("theirs")
    found = conn.execute(
        select(mine.c.premises_id)
        .join(theirs, theirs.c.space_id == mine.c.space_id)
        .where(theirs.c.premises_id != mine.c.premises_id)
        .distinct()
    ).scalars()
    wanted = set(ids)
    return {p for p in found if p in wanted}


def blocked_seconds(
    conn: Connection, places: Sequence[PremisesHours], first: date, last: date, key_of: KeyOf
) -> Counter[tuple[object, ...]]:
    """Blocked seconds by group key (`key_of(premises_id, local date, local hour)`)."""
    found: Counter[tuple[object, ...]] = Counter()
    shared = shared_premises(conn, [p.premises_id for p in places])
    chosen = [p for p in places if p.premises_id in shared]
    if not chosen:
        return found
    periods = {
        p.premises_id: Slot(
            local_midnight(first, p.zone), local_midnight(last + timedelta(days=1), p.zone)
        )
        for p in chosen
    }
    widest = Slot(min(s.start for s in periods.values()), max(s.end for s in periods.values()))
    every = busy_between(conn, list(periods), widest)  # one query for all of them
    for place in chosen:
        period = periods[place.premises_id]
        busy = every[place.premises_id]
        theirs = merge(b.slot for b, _ in busy if b.via is not None and b.kind == "booking")
        mine = [b.slot for b, _ in busy if b.via is None and b.kind == "booking"]
        for slot in subtract(theirs, mine):
            clipped = slot.intersection(period)
            if clipped is None:
                continue
            for day, hour, seconds in split_hours(clipped.start, clipped.end, place.zone):
                found[key_of(place.premises_id, day, hour)] += seconds
    return found
