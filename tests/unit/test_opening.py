"""Opening hours: parsing, the instants a local week names, past-midnight intervals and DST.

Europe/Helsinki moves from 03:00 EET to 04:00 EEST on 2027-03-28 (a 23-hour day) and from
04:00 EEST back to 03:00 EET on 2027-10-31 (a 25-hour day).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from events.opening import OpeningHours, days, local_instant, parse_clock
from events.slot import Slot
from tests.unit.domain_helpers import HELSINKI, local

SPRING = date(2027, 3, 28)  # Sunday, 23 hours
AUTUMN = date(2027, 10, 31)  # Sunday, 25 hours


def utc(year: int, month: int, day: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(year, month, day, hh, mm, tzinfo=UTC)


def on(day: date, raw: list[list[str]]) -> list[Slot]:
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    return OpeningHours.parse({weekday: raw}).intervals_on(day, HELSINKI)


# --- parsing ---------------------------------------------------------------------------


def test_parse_and_as_json_round_trip() -> None:
    raw = {"mon": [["08:00", "12:00"], ["13:00", "20:00"]], "fri": [["18:00", "02:00"]]}
    hours = OpeningHours.parse(raw)
    assert hours.weekly["mon"] == [(time(8), time(12)), (time(13), time(20))]
    assert hours.weekly["sun"] == []
    assert hours.as_json()["fri"] == [["18:00", "02:00"]]
    assert OpeningHours.parse(hours.as_json()) == hours


def test_24_00_closes_at_midnight() -> None:
    assert parse_clock("24:00") == time(0)
    assert on(date(2027, 1, 11), [["08:00", "24:00"]]) == [
        Slot(utc(2027, 1, 11, 6), utc(2027, 1, 11, 22))
    ]
    whole = on(date(2027, 1, 11), [["00:00", "24:00"]])
    assert [s.duration for s in whole] == [timedelta(hours=24)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"monday": [["08:00", "12:00"]]}, "unknown weekdays"),
        ({"mon": [["8:00", "12:00"]]}, "HH:MM"),
        ({"mon": [["08:00", "25:00"]]}, "hour"),
        ({"mon": [["08:00", "12:60"]]}, "minute"),
        ({"mon": [["ab:cd", "12:00"]]}, "invalid literal"),
        ({"mon": [["08:00", "12:00", "14:00"]]}, r"\[open, close\]"),
        ({"mon": [["10:00", "10:00"]]}, "empty"),
    ],
)
def test_parse_refuses_what_is_not_opening_hours(
    raw: dict[str, list[list[str]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OpeningHours.parse(raw)


# --- instants ---------------------------------------------------------------------------


def test_an_ordinary_winter_and_summer_day() -> None:
    assert on(date(2027, 1, 11), [["08:00", "20:00"]]) == [
        Slot(utc(2027, 1, 11, 6), utc(2027, 1, 11, 18))
    ]
    assert on(date(2027, 6, 14), [["08:00", "20:00"]]) == [
        Slot(utc(2027, 6, 14, 5), utc(2027, 6, 14, 17))
    ]


def test_an_interval_past_midnight_closes_the_next_day() -> None:
    friday = date(2027, 1, 15)
    assert on(friday, [["18:00", "02:00"]]) == [Slot(utc(2027, 1, 15, 16), utc(2027, 1, 16, 0))]


def test_the_23_hour_day() -> None:
    (whole,) = on(SPRING, [["00:00", "24:00"]])
    assert whole == Slot(utc(2027, 3, 27, 22), utc(2027, 3, 28, 21))
    assert whole.duration == timedelta(hours=23)
    # 08:00-20:00 is still twelve hours, now at UTC+3.
    assert on(SPRING, [["08:00", "20:00"]]) == [Slot(utc(2027, 3, 28, 5), utc(2027, 3, 28, 17))]
    # 02:00-05:00 spans the missing hour: two real hours.
    (across,) = on(SPRING, [["02:00", "05:00"]])
    assert across == Slot(utc(2027, 3, 28, 0), utc(2027, 3, 28, 2))


def test_the_25_hour_day() -> None:
    (whole,) = on(AUTUMN, [["00:00", "24:00"]])
    assert whole == Slot(utc(2027, 10, 30, 21), utc(2027, 10, 31, 22))
    assert whole.duration == timedelta(hours=25)
    assert on(AUTUMN, [["08:00", "20:00"]]) == [Slot(utc(2027, 10, 31, 6), utc(2027, 10, 31, 18))]
    # 02:00-05:00 holds the repeated hour: four real hours.
    (across,) = on(AUTUMN, [["02:00", "05:00"]])
    assert across == Slot(utc(2027, 10, 30, 23), utc(2027, 10, 31, 3))


def test_past_midnight_intervals_over_the_dst_nights() -> None:
    (spring,) = on(date(2027, 3, 27), [["18:00", "06:00"]])
    assert spring == Slot(utc(2027, 3, 27, 16), utc(2027, 3, 28, 3))
    assert spring.duration == timedelta(hours=11)
    (autumn,) = on(date(2027, 10, 30), [["18:00", "06:00"]])
    assert autumn == Slot(utc(2027, 10, 30, 15), utc(2027, 10, 31, 4))
    assert autumn.duration == timedelta(hours=13)


def test_a_wall_time_in_the_spring_gap_maps_past_the_gap() -> None:
    # 03:30 does not exist on the spring day; it is read as 04:30 EEST (01:30 UTC).
    assert local_instant(SPRING, time(3, 30), HELSINKI) == utc(2027, 3, 28, 1, 30)
    (opening,) = on(SPRING, [["03:30", "05:00"]])
    assert opening == Slot(utc(2027, 3, 28, 1, 30), utc(2027, 3, 28, 2))


def test_an_ambiguous_autumn_wall_time_is_its_first_occurrence() -> None:
    assert local_instant(AUTUMN, time(3, 30), HELSINKI) == utc(2027, 10, 31, 0, 30)
    (opening,) = on(AUTUMN, [["03:30", "05:00"]])
    assert opening.duration == timedelta(hours=2, minutes=30)


def test_local_instant_is_utc() -> None:
    instant = local_instant(date(2027, 1, 11), time(8), HELSINKI)
    assert instant == utc(2027, 1, 11, 6)
    assert instant.tzinfo is UTC


def test_days_is_inclusive() -> None:
    assert list(days(date(2027, 1, 30), date(2027, 2, 1))) == [
        date(2027, 1, 30),
        date(2027, 1, 31),
        date(2027, 2, 1),
    ]
    assert list(days(date(2027, 2, 1), date(2027, 1, 30))) == []


def test_open_between_merges_intervals_that_meet_over_midnight() -> None:
    hours = OpeningHours.parse({"mon": [["08:00", "24:00"]], "tue": [["00:00", "08:00"]]})
    monday = date(2027, 1, 11)
    assert hours.open_between(monday, monday + timedelta(days=1), HELSINKI) == [
        Slot(local(monday, 8), local(monday + timedelta(days=1), 8))
    ]


# --- covers -----------------------------------------------------------------------------

MONDAY = date(2027, 1, 11)
FRIDAY = date(2027, 1, 15)
HOURS = OpeningHours.parse(
    {
        "mon": [["08:00", "12:00"], ["13:00", "24:00"]],
        "tue": [["00:00", "02:00"]],
        "fri": [["18:00", "02:00"]],
        "sat": [["10:00", "14:00"]],
        "sun": [["00:00", "24:00"]],
    }
)


@pytest.mark.parametrize(
    ("start", "end", "covered"),
    [
        (local(MONDAY, 8), local(MONDAY, 12), True),
        (local(MONDAY, 7, 59), local(MONDAY, 9), False),
        (local(MONDAY, 11), local(MONDAY, 14), False),  # the lunch break is closed
        (local(MONDAY, 23), local(MONDAY + timedelta(days=1), 1), True),  # Mon into Tue
        (local(MONDAY, 23), local(MONDAY + timedelta(days=1), 3), False),
        (local(FRIDAY, 23), local(FRIDAY + timedelta(days=1), 2), True),  # 18-02 interval
        (local(FRIDAY + timedelta(days=1), 1), local(FRIDAY + timedelta(days=1), 2), True),
        (local(FRIDAY + timedelta(days=1), 1), local(FRIDAY + timedelta(days=1), 11), False),
        (local(FRIDAY, 17), local(FRIDAY, 19), False),
        (local(SPRING, 2), local(SPRING, 5), True),  # the 23-hour Sunday is open all day
        (local(AUTUMN, 3, 30), local(AUTUMN, 3, 30, fold=1), True),  # the repeated hour
    ],
)
def test_covers_needs_one_continuous_opening(start: datetime, end: datetime, covered: bool) -> None:
    assert HOURS.covers(Slot(start, end), HELSINKI) is covered


def test_nothing_is_covered_without_opening_hours() -> None:
    closed = OpeningHours.parse({})
    assert not closed.covers(Slot(local(MONDAY, 10), local(MONDAY, 11)), HELSINKI)
    assert closed.intervals_on(MONDAY, HELSINKI) == []


@pytest.mark.parametrize(
    "intervals",
    [
        [["08:00", "12:00"], ["10:00", "14:00"]],
        [["18:00", "02:00"], ["20:00", "21:00"]],
        [["08:00", "12:00"], ["08:00", "12:00"]],
    ],
)
def test_overlapping_intervals_on_one_day_are_refused(intervals: list[list[str]]) -> None:
    with pytest.raises(ValueError, match="overlap"):
        OpeningHours.parse({"mon": intervals})


def test_intervals_that_only_meet_are_accepted() -> None:
    hours = OpeningHours.parse({"mon": [["08:00", "12:00"], ["12:00", "16:00"]]})
    assert len(hours.weekly["mon"]) == 2


def test_24_00_can_close_a_day_but_not_open_one() -> None:
    with pytest.raises(ValueError, match="24:00"):
        OpeningHours.parse({"mon": [["24:00", "02:00"]]})
