"""`days_of` splits each day's opening hours into free and busy time, and nothing else.

With no buffer, free and busy together are exactly the opening hours and never overlap. With a
buffer, free and busy stay disjoint and inside the opening hours (the buffer is neither).
Opening hours include past-midnight intervals; the dates include both DST changes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events.opening import WEEKDAYS, OpeningHours
from events.slot import Slot, merge, subtract
from projections.availability import Busy, days_of, free_for_whole
from tests.unit.domain_helpers import HELSINKI, local

FIRST_DATES = [
    date(2027, 3, 27),  # the night before the 23-hour day
    date(2027, 3, 28),
    date(2027, 10, 30),  # the night before the 25-hour day
    date(2027, 10, 31),
    date(2027, 1, 11),
    date(2027, 6, 14),
]
SETTINGS = settings(max_examples=200, deadline=None)


def clock(quarter: int) -> str:
    return "24:00" if quarter == 96 else f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"


@st.composite
def opening_hours(draw: st.DrawFn) -> OpeningHours:
    raw: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        intervals = []
        for _ in range(draw(st.integers(0, 2))):
            opens = draw(st.integers(0, 95))
            # A close at or before the open runs past midnight (but never an empty interval).
            closes = draw(st.integers(1, 96).filter(lambda q, o=opens: q != o))
            intervals.append([clock(opens), clock(closes)])
        raw[day] = intervals
    # Overlapping intervals within one day are refused by the parser: draw another case.
    try:
        return OpeningHours.parse(raw)
    except ValueError:
        assume(False)
        raise


@st.composite
def busy_items(draw: st.DrawFn, first: date, buffer: timedelta) -> list[tuple[Busy, Slot]]:
    base = local(first - timedelta(days=1), 0)
    items = []
    for _ in range(draw(st.integers(0, 8))):
        start = base + timedelta(minutes=15 * draw(st.integers(0, 6 * 96)))
        slot = Slot(start, start + timedelta(minutes=15 * draw(st.integers(1, 48))))
        kind = draw(st.sampled_from(["booking", "hold", "closure"]))
        lead = timedelta(0) if kind == "closure" else buffer
        items.append((Busy(slot, kind, None), slot.padded(lead)))
    return items


def disjoint(one: list[Slot], other: list[Slot]) -> bool:
    return not any(a.overlaps(b) for a in one for b in other)


def partition_case(draw: st.DrawFn, buffer: timedelta) -> tuple[OpeningHours, date, date, list]:
    hours = draw(opening_hours())
    first = draw(st.sampled_from(FIRST_DATES))
    last = first + timedelta(days=draw(st.integers(0, 3)))
    return hours, first, last, draw(busy_items(first, buffer))


@SETTINGS
@given(st.data())
def test_without_a_buffer_free_and_busy_partition_the_opening_hours(data: st.DataObject) -> None:
    hours, first, last, busy = partition_case(data.draw, timedelta(0))
    days = days_of(hours, HELSINKI, first, last, busy)
    assert [d.date for d in days] == [first + timedelta(n) for n in range((last - first).days + 1)]
    for day in days:
        busy_slots = [b.slot for b in day.busy]
        assert day.open == hours.intervals_on(day.date, HELSINKI)
        assert merge(day.free + busy_slots) == merge(day.open)
        assert disjoint(day.free, busy_slots)
        assert day.free == merge(day.free), "free is sorted, disjoint and not touching"


@SETTINGS
@given(st.data(), st.sampled_from([15, 30, 120]))
def test_with_a_buffer_free_and_busy_stay_disjoint_inside_the_opening_hours(
    data: st.DataObject, buffer_minutes: int
) -> None:
    buffer = timedelta(minutes=buffer_minutes)
    hours, first, last, busy = partition_case(data.draw, buffer)
    for day in days_of(hours, HELSINKI, first, last, busy):
        busy_slots = [b.slot for b in day.busy]
        assert disjoint(day.free, busy_slots)
        assert subtract(day.free + busy_slots, day.open) == [], "nothing outside opening hours"
        # Free time keeps the buffer clear on both sides of every booking and hold.
        assert disjoint(day.free, [span for _, span in busy])
        # And everything open that is neither busy nor buffer is free.
        assert merge(day.free) == subtract(day.open, [span for _, span in busy])


@SETTINGS
@given(st.data(), st.sampled_from([0, 30]), st.integers(0, 4 * 96), st.integers(1, 16))
def test_free_for_whole_agrees_with_the_free_intervals(
    data: st.DataObject, buffer_minutes: int, offset: int, length: int
) -> None:
    hours, first, _, busy = partition_case(data.draw, timedelta(minutes=buffer_minutes))
    start = local(first - timedelta(days=1), 0) + timedelta(minutes=15 * offset)
    window = Slot(start, start + timedelta(minutes=15 * length))
    day = window.start.astimezone(HELSINKI).date()
    # Free time merged over the days around the window, as one continuous stretch.
    free = subtract(
        hours.open_between(day - timedelta(days=1), day + timedelta(days=1), HELSINKI),
        [span for _, span in busy],
    )
    expected = any(piece.contains(window) for piece in free)
    assert free_for_whole(hours, HELSINKI, window, busy) is expected


def test_the_25_hour_day_is_split_into_25_hours() -> None:
    hours = OpeningHours.parse({"sun": [["00:00", "24:00"]]})
    autumn = date(2027, 10, 31)
    booking = Slot(
        datetime.combine(autumn, time(3, 30), HELSINKI),
        datetime.combine(autumn, time(3, 30), HELSINKI).replace(fold=1),
    )
    (day,) = days_of(hours, HELSINKI, autumn, autumn, [(Busy(booking, "booking", "x"), booking)])
    assert [b.slot.duration for b in day.busy] == [timedelta(hours=1)]
    assert sum((s.duration for s in day.free), timedelta()) == timedelta(hours=24)
