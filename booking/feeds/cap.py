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

from bisect import bisect_left
from collections.abc import Callable, Sequence
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
    size_of: Callable[[int], int],
    fixed: int,
    limit: int = LIMIT,
) -> Reach:
    """The reach of a feed whose window holds entries (in feed order: `starts` ascending)
    starting and ending at `starts`/`ends`, entry `i` being `size_of(i)` octets long, around
    `fixed` octets of calendar text. Sizes are asked for in feed order until they pass the
    budget, and then only of the days that are looked at, so a caller that renders in
    `size_of` renders at most the budget more than what is shown."""
    one = timedelta(days=1)
    budget = limit - fixed
    # Most feeds fit whole: then the walk below keeps every entry and every day. Found
    # without it: its two local midnights per day of a 395-day window were some 40 % of a
    # public feed request's CPU (py-spy under bench.load).
    total = 0
    for i in range(len(starts)):
        total += size_of(i)
        if total > budget:
            break
    if total <= budget:
        return Reach(window.first, window.last, list(range(len(starts))), False)

    def bounds(day: date) -> tuple[int, int]:
        # An entry counts on the local day it starts (the window's first if it started
        # before): the first day takes everything before it, the last everything after.
        low = 0 if day == window.first else bisect_left(starts, window.midnight(day))
        high = (
            len(starts) if day == window.last else bisect_left(starts, window.midnight(day + one))
        )
        return low, high

    def day_size(day: date) -> int:
        return sum(size_of(i) for i in range(*bounds(day)))

    anchor = min(max(window.today, window.first), window.last)
    first = last = anchor
    used = day_size(anchor)
    while last < window.last and used <= budget:
        more = day_size(last + one)
        if used + more > budget:
            break
        last, used = last + one, used + more
    while first > window.first and used <= budget:
        more = day_size(first - one)
        if used + more > budget:
            break
        first, used = first - one, used + more
    if first == window.first and last == window.last and used <= budget:
        return Reach(first, last, list(range(len(starts))), False)
    # Entries that began before `first` and run into it are in the narrower window too.
    while True:
        low, high = bounds(first)[0], bounds(last)[1]
        begun = window.midnight(first)
        keep = [i for i in range(low) if ends[i] > begun] + list(range(low, high))
        if sum(size_of(i) for i in keep) <= budget:
            return Reach(first, last, keep, True)
        if first < anchor:
            first += one
        elif last > anchor:
            last -= one
        else:
            break
    kept, used = [], 0
    for i in keep:
        if used + size_of(i) > budget:
            break
        kept.append(i)
        used += size_of(i)
    return Reach(first, last, kept, True, cut=True)
