"""No feed answer over 1 MB: which of a window's entries a feed shows, and how far it reaches.

Google drops feeds over about 1 MB, silently. When a feed's entries would make more, its
window narrows to whole local days around today (or around the nearest asked-for day when
today is outside the asked-for window): today and the days ahead first, as many as fit, then
the days back. The feed says how far it reaches (X-WR-CALDESC and the X-Feed-Window
header), and the /feeds page says it too. In the unlikely case where one day
alone is too much, that day's entries are cut in feed order: the answer stays under the cap.

Sizes are those of the rendered, uncompressed text: a client that does not take gzip gets
what is counted, and one that does never gets more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from booking.feeds.query import Window

LIMIT = 1_000_000  # octets of a whole answer (1 MB)


@dataclass(frozen=True)
class Reach:
    """What a feed shows of a window: the local days `first`..`last`, the indexes of the
    entries that fall in them (in feed order), and whether that is less than asked."""

    first: date
    last: date
    keep: list[int]
    narrowed: bool
    cut: bool = False  # even the single day around today was too much: entries were cut

    @property
    def header(self) -> str:
        """The X-Feed-Window header: the local days covered, an ISO 8601 interval."""
        return f"{self.first.isoformat()}/{self.last.isoformat()}"


def fit(
    window: Window,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    sizes: Sequence[int],
    fixed: int,
    limit: int = LIMIT,
) -> Reach:
    """The reach of a feed whose window holds entries (in feed order) starting and ending at
    `starts`/`ends`, each `sizes` octets long, around `fixed` octets of calendar text."""
    everything = list(range(len(sizes)))
    if fixed + sum(sizes) <= limit:
        return Reach(window.first, window.last, everything, False)
    budget = limit - fixed
    # An entry counts on the local day it starts (the window's first if it started before).
    per_day: dict[date, int] = {}
    for start, size in zip(starts, sizes, strict=True):
        day = max(start.astimezone(window.zone).date(), window.first)
        per_day[day] = per_day.get(day, 0) + size
    anchor = min(max(window.today, window.first), window.last)
    one = timedelta(days=1)
    first = last = anchor
    used = per_day.get(anchor, 0)
    while last < window.last and used + per_day.get(last + one, 0) <= budget:
        last += one
        used += per_day.get(last, 0)
    while first > window.first and used + per_day.get(first - one, 0) <= budget:
        first -= one
        used += per_day.get(first, 0)
    # Entries that began before `first` and run into it are in the narrower window too.
    while True:
        start, end = window.midnight(first), window.midnight(last + one)
        keep = [i for i in everything if starts[i] < end and ends[i] > start]
        if sum(sizes[i] for i in keep) <= budget:
            return Reach(first, last, keep, True)
        if first < anchor:
            first += one
        elif last > anchor:
            last -= one
        else:
            break
    kept, used = [], 0
    for i in keep:
        if used + sizes[i] > budget:
            break
        kept.append(i)
        used += sizes[i]
    return Reach(first, last, kept, True, cut=True)
