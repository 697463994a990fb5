"""A proposal drawn as a weekday × time grid per premises, for a `<table>` with a row per
time step and a column per weekday: each allocation one cell spanning its rows. Overlaps
(which the rules refuse within a premises) would share one cell rather than break the
table. Closed times are marked from the premises' opening hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from booking.allocation.model import DAY_MINUTES, WEEKDAYS, Premises, clock_minutes, clock_text


@dataclass
class Block:
    start: int
    end: int
    items: list[Any] = field(default_factory=list)
    rows: int = 1


@dataclass
class Cell:
    """What a `<td>` of the grid is: the start of a block (spanning rows), a row covered by
    a block above (no `<td>`), or an empty slot of time, open or closed."""

    block: Block | None = None
    covered: bool = False
    open: bool = True


@dataclass
class Grid:
    premises_id: str
    times: list[str]  # the label of each row, "HH:MM"
    rows: list[list[Cell]]  # rows × 7 weekdays
    days: tuple[str, ...] = WEEKDAYS


def _step(allocations: list[Any]) -> int:
    minutes = {clock_minutes(a.start_time) % 60 for a in allocations}
    minutes |= {clock_minutes(a.end_time) % 60 for a in allocations}
    return 30 if minutes <= {0, 30} else 15


def grid_of(premises_id: str, allocations: list[Any], hours: Premises | None) -> Grid:
    """The grid of one premises' allocations (rows of `allocations_table`)."""
    step = _step(allocations)
    spans = [(o, c) for day in (hours.opening.values() if hours else ()) for o, c in day]
    spans += [(clock_minutes(a.start_time), clock_minutes(a.end_time)) for a in allocations]
    first = min((s for s, _ in spans), default=8 * 60) // step * step
    last = min(DAY_MINUTES, -(-max((e for _, e in spans), default=22 * 60) // step) * step)
    count = max(1, (last - first) // step)
    rows = [[Cell() for _ in WEEKDAYS] for _ in range(count)]
    for day_index, day in enumerate(WEEKDAYS):
        blocks: list[Block] = []
        mine = sorted(
            (a for a in allocations if a.weekday == day), key=lambda a: (a.start_time, a.id)
        )
        for a in mine:
            start = clock_minutes(a.start_time) // step * step
            end = -(-clock_minutes(a.end_time) // step) * step
            if blocks and start < blocks[-1].end:
                blocks[-1].end = max(blocks[-1].end, end)
                blocks[-1].items.append(a)
            else:
                blocks.append(Block(start, end, [a]))
        opening = hours.opening.get(day_index, ()) if hours else ()
        for r in range(count):
            at = first + r * step
            rows[r][day_index].open = any(o <= at and at + step <= c for o, c in opening)
        for block in blocks:
            top = max(0, (block.start - first) // step)
            bottom = min(count, (block.end - first) // step)
            block.rows = max(1, bottom - top)
            rows[top][day_index].block = block
            for r in range(top + 1, top + block.rows):
                rows[r][day_index].covered = True
    times = [clock_text(first + r * step) for r in range(count)]
    return Grid(premises_id, times, rows)
