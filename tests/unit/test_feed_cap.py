"""How far a feed reaches under the real 1 MB cap (booking/feeds/cap.py `fit`), on entries
of known sizes: everything while it fits; else today and the days ahead first, then the
days back, whole local days, entries running into the window kept; one day too large alone
is cut in feed order. Never more than the cap."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.feeds import LIMIT, fit, window_of

ZONE = ZoneInfo("Europe/Helsinki")
TODAY = date(2026, 11, 18)
WINDOW = window_of(TODAY, ZONE, None, None)
HEAD = 700


def entries(per_day: int, days: range) -> tuple[list[datetime], list[datetime]]:
    starts = [
        datetime.combine(TODAY + timedelta(days=d), time(8 + n), tzinfo=ZONE)
        for d in days
        for n in range(per_day)
    ]
    return starts, [s + timedelta(hours=1) for s in starts]


def test_everything_while_it_fits() -> None:
    starts, ends = entries(2, range(-30, 300))
    reach = fit(WINDOW, starts, ends, lambda i: 600, HEAD)
    assert not reach.narrowed and reach.keep == list(range(len(starts)))
    assert (reach.first, reach.last) == (WINDOW.first, WINDOW.last)


def test_days_ahead_first_then_back_never_over_the_cap() -> None:
    starts, ends = entries(5, range(-30, 366))  # 1,980 entries of 650 octets: 1.3 MB
    asked: list[int] = []

    def size_of(i: int) -> int:
        asked.append(i)
        return 650

    reach = fit(WINDOW, starts, ends, size_of, HEAD)

    assert reach.narrowed and not reach.cut
    assert HEAD + 650 * len(reach.keep) <= LIMIT
    assert reach.first == TODAY  # the days ahead filled it: no room for the days back
    assert TODAY + timedelta(days=200) < reach.last < WINDOW.last
    shown = [starts[i].date() for i in reach.keep]
    assert shown == [s.date() for s in starts if TODAY <= s.date() <= reach.last]
    assert len(set(asked)) < len(starts)  # the days past the reach were not all rendered


def test_the_days_back_come_after_every_day_ahead() -> None:
    starts, ends = entries(5, range(-30, 366))
    past = sum(1 for s in starts if s.date() < TODAY)

    def size_of(i: int) -> int:
        return 4000 if i < past else 400  # 600 kB back, 730 kB ahead

    reach = fit(WINDOW, starts, ends, size_of, HEAD)
    assert reach.narrowed and reach.last == WINDOW.last
    assert WINDOW.first < reach.first < TODAY
    assert HEAD + sum(size_of(i) for i in reach.keep) <= LIMIT
    assert reach.keep == list(range(reach.keep[0], len(starts)))


def test_an_entry_running_into_the_reach_is_in_it() -> None:
    long_one = datetime.combine(TODAY - timedelta(days=20), time(8), tzinfo=ZONE)
    starts, ends = entries(13, range(-30, 366))
    starts.insert(0, long_one)
    ends.insert(0, datetime.combine(TODAY + timedelta(days=2), time(8), tzinfo=ZONE))
    reach = fit(WINDOW, starts, ends, lambda i: 700, HEAD)
    assert reach.first == TODAY and reach.keep[0] == 0
    assert HEAD + 700 * len(reach.keep) <= LIMIT


def test_one_day_too_large_alone_is_cut() -> None:
    starts, ends = entries(12, range(0, 3))
    reach = fit(WINDOW, starts, ends, lambda i: 100_000, HEAD)
    assert reach.cut and reach.first == reach.last == TODAY
    assert reach.keep == list(range(9))  # 9 × 100 kB and the head fit in 1 MB
