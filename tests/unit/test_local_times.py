"""Local times across the DST changes (booking/usecases/times.py): Helsinki skips 03:00–04:00
on 2027-03-28 and repeats 03:00–04:00 on 2027-10-31."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from booking.usecases.times import (
    LocalTimeProblem,
    MissingTime,
    TwiceTime,
    check_stated_times,
    local_span,
    wall_instant,
)

HELSINKI = ZoneInfo("Europe/Helsinki")
SPRING, AUTUMN = date(2027, 3, 28), date(2027, 10, 31)


def test_a_skipped_time_is_named_with_the_gap() -> None:
    with pytest.raises(MissingTime) as missing:
        wall_instant(SPRING, time(3, 30), HELSINKI)
    assert str(missing.value) == (
        "03:30 does not exist on 2027-03-28 in Europe/Helsinki: "
        "the clocks move from 03:00 to 04:00."
    )
    assert wall_instant(SPRING, time(4, 0), HELSINKI) == datetime(2027, 3, 28, 1, tzinfo=UTC)


def test_a_repeated_time_needs_a_choice() -> None:
    with pytest.raises(TwiceTime):
        wall_instant(AUTUMN, time(3, 30), HELSINKI)
    first = wall_instant(AUTUMN, time(3, 30), HELSINKI, fold=0)
    second = wall_instant(AUTUMN, time(3, 30), HELSINKI, fold=1)
    assert (first.astimezone(UTC).hour, second.astimezone(UTC).hour) == (0, 1)


def test_a_form_span_names_each_field_that_does_not_exist() -> None:
    with pytest.raises(LocalTimeProblem) as problem:
        local_span(SPRING, time(3, 15), time(4, 30), HELSINKI)
    assert list(problem.value.problems) == ["start"]
    night_before = date(2027, 3, 27)
    start, end = local_span(night_before, time(20, 0), time(6, 0), HELSINKI)  # over the change
    assert end.date() == SPRING
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 9 * 3600


def test_the_api_refuses_a_skipped_time_in_the_zones_own_offset_only() -> None:
    stated = {"start": datetime.fromisoformat("2027-03-28T03:30:00+02:00")}
    with pytest.raises(LocalTimeProblem) as problem:
        check_stated_times(stated, HELSINKI)
    assert list(problem.value.problems) == ["start"]
    # The same instant in UTC, or a repeated time with its offset, is what it says.
    check_stated_times({"start": datetime.fromisoformat("2027-03-28T01:30:00Z")}, HELSINKI)
    check_stated_times({"end": datetime.fromisoformat("2027-10-31T03:30:00+02:00")}, HELSINKI)
