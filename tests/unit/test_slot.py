"""`Slot`, `merge` and `subtract`: the half-open interval arithmetic every rule rests on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from events.slot import Slot, merge, subtract
from tests.unit.domain_helpers import HELSINKI


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2027, 1, 11, hh, mm, tzinfo=UTC)


def s(a: int, b: int) -> Slot:
    return Slot(at(a), at(b))


def test_a_slot_needs_aware_instants() -> None:
    with pytest.raises(ValueError, match="aware"):
        Slot(datetime(2027, 1, 11, 10), at(11))
    with pytest.raises(ValueError, match="aware"):
        Slot(at(10), datetime(2027, 1, 11, 11))


@pytest.mark.parametrize("end", [at(10), at(9)])
def test_a_slot_must_end_after_it_starts(end: datetime) -> None:
    with pytest.raises(ValueError, match="end after"):
        Slot(at(10), end)


def test_duration_and_minutes() -> None:
    assert s(10, 12).duration == timedelta(hours=2)
    assert Slot(at(10), at(10, 45)).minutes == 45


def test_duration_is_elapsed_time_even_with_zone_aware_ends_on_a_dst_day() -> None:
    # 2027-03-28 02:00 → 05:00 Helsinki wall clock is two real hours (03:00 jumps to 04:00).
    # Python subtracts wall clocks when both ends share one tzinfo, so a Slot must not.
    start = datetime(2027, 3, 28, 2, 0, tzinfo=HELSINKI)
    end = datetime(2027, 3, 28, 5, 0, tzinfo=HELSINKI)
    assert Slot(start, end).duration == timedelta(hours=2)
    autumn = Slot(
        datetime(2027, 10, 31, 2, 0, tzinfo=HELSINKI), datetime(2027, 10, 31, 5, 0, tzinfo=HELSINKI)
    )
    assert autumn.duration == timedelta(hours=4)
    # 03:30 first time round (EEST) to 03:15 second time round (EET) is 45 real minutes.
    folded = Slot(
        datetime(2027, 10, 31, 3, 30, tzinfo=HELSINKI),
        datetime(2027, 10, 31, 3, 15, fold=1, tzinfo=HELSINKI),
    )
    assert folded.minutes == 45
    assert folded.start.utcoffset() == timedelta(0), "a slot keeps its instants in UTC"


def test_slots_in_different_offsets_compare_as_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    same = Slot(
        datetime(2027, 1, 11, 12, tzinfo=plus_two), datetime(2027, 1, 11, 14, tzinfo=plus_two)
    )
    assert same == s(10, 12)
    assert same.overlaps(s(11, 13))


def test_overlap_is_half_open() -> None:
    assert s(10, 12).overlaps(s(11, 13))
    assert s(11, 13).overlaps(s(10, 12))
    assert s(10, 12).overlaps(s(10, 12))
    assert s(10, 14).overlaps(s(11, 12))
    assert not s(10, 12).overlaps(s(12, 14)), "touching slots do not overlap"
    assert not s(12, 14).overlaps(s(10, 12))
    assert not s(10, 11).overlaps(s(12, 13))


def test_contains() -> None:
    assert s(8, 20).contains(s(8, 20))
    assert s(8, 20).contains(s(10, 12))
    assert not s(8, 20).contains(s(7, 9))
    assert not s(8, 20).contains(s(19, 21))
    assert not s(10, 12).contains(s(8, 20))


def test_padded_widens_both_sides_or_each_side_on_its_own() -> None:
    assert s(10, 12).padded(timedelta(minutes=30)) == Slot(at(9, 30), at(12, 30))
    assert s(10, 12).padded(timedelta(0), timedelta(hours=1)) == s(10, 13)
    assert s(10, 12).padded(timedelta(hours=1), timedelta(0)) == s(9, 12)
    assert s(10, 12).padded(timedelta(0)) == s(10, 12)


def test_intersection() -> None:
    assert s(10, 12).intersection(s(11, 13)) == s(11, 12)
    assert s(10, 14).intersection(s(11, 12)) == s(11, 12)
    assert s(10, 12).intersection(s(12, 13)) is None
    assert s(10, 11).intersection(s(12, 13)) is None


def test_merge_joins_overlapping_and_touching_slots_in_order() -> None:
    assert merge([]) == []
    assert merge([s(14, 16), s(10, 12), s(11, 13)]) == [s(10, 13), s(14, 16)]
    assert merge([s(10, 12), s(12, 14)]) == [s(10, 14)], "touching slots become one"
    assert merge([s(10, 20), s(11, 12), s(13, 14)]) == [s(10, 20)], "nested slots vanish"
    assert merge([s(10, 11), s(10, 11)]) == [s(10, 11)]


def test_subtract() -> None:
    assert subtract([s(8, 20)], []) == [s(8, 20)]
    assert subtract([s(8, 20)], [s(10, 12)]) == [s(8, 10), s(12, 20)]
    assert subtract([s(8, 20)], [s(6, 9), s(19, 22)]) == [s(9, 19)]
    assert subtract([s(8, 20)], [s(7, 21)]) == []
    assert subtract([s(8, 20)], [s(8, 20)]) == []
    assert subtract([s(8, 20)], [s(12, 14), s(10, 11), s(13, 15)]) == [
        s(8, 10),
        s(11, 12),
        s(15, 20),
    ]
    assert subtract([s(8, 12), s(14, 18)], [s(11, 15)]) == [s(8, 11), s(15, 18)]
    assert subtract([s(8, 10)], [s(10, 12), s(6, 8)]) == [s(8, 10)], "touching holes take nothing"


def test_a_slot_of_utc_instants_is_the_same_slot_as_a_checked_one() -> None:
    local_start = datetime(2026, 10, 25, 3, 30, tzinfo=HELSINKI)  # the autumn change
    checked = Slot(local_start, local_start + timedelta(hours=2))
    trusted = Slot.of_utc(checked.start, checked.end)
    assert trusted == checked and hash(trusted) == hash(checked)
    assert trusted.start.tzinfo is UTC and trusted.duration == checked.duration
    assert subtract(
        [checked], [Slot.of_utc(checked.start, checked.start + timedelta(hours=1))]
    ) == [Slot(checked.start + timedelta(hours=1), checked.end)]
