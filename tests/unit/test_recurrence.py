"""Series rules: occurrences keep their local wall-clock time across DST, and the limits hold.

Europe/Helsinki moves to summer time on 2027-03-28 and back on 2027-10-31.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from booking.domain import recurrence
from booking.domain.recurrence import MAX_OCCURRENCES, BadRecurrence, expand
from events.slot import Slot
from tests.unit.domain_helpers import HELSINKI, local, slot

MONDAY = date(2027, 1, 11)


def starts_local(slots: list[Slot]) -> list[str]:
    return [s.start.astimezone(HELSINKI).strftime("%Y-%m-%d %H:%M") for s in slots]


def test_weekly_at_18_local_across_the_spring_change() -> None:
    first = slot(date(2027, 3, 15), (18, 0), (20, 0))
    occurrences = expand(first, "FREQ=WEEKLY;COUNT=4", HELSINKI)
    assert starts_local(occurrences) == [
        "2027-03-15 18:00",
        "2027-03-22 18:00",
        "2027-03-29 18:00",
        "2027-04-05 18:00",
    ]
    assert [s.start.hour for s in occurrences] == [16, 16, 15, 15], "UTC moves, local does not"
    assert all(s.duration == timedelta(hours=2) for s in occurrences)


def test_weekly_at_18_local_across_the_autumn_change() -> None:
    first = slot(date(2027, 10, 18), (18, 0), (20, 0))
    occurrences = expand(first, "RRULE:FREQ=WEEKLY;COUNT=4", HELSINKI)
    assert starts_local(occurrences) == [
        "2027-10-18 18:00",
        "2027-10-25 18:00",
        "2027-11-01 18:00",
        "2027-11-08 18:00",
    ]
    assert [s.start.hour for s in occurrences] == [15, 15, 16, 16]


def test_the_first_occurrence_is_the_requested_slot() -> None:
    first = slot(MONDAY, (18, 0), (19, 30))
    occurrences = expand(first, "FREQ=WEEKLY;COUNT=3", HELSINKI)
    assert occurrences[0] == first
    assert [s.start - first.start for s in occurrences] == [timedelta(weeks=n) for n in range(3)]


def test_a_first_occurrence_in_the_repeated_autumn_hour_stays_where_it_was_asked() -> None:
    # 03:30 EET, the second 03:30 of 2027-10-31 (01:30 UTC).
    first = Slot(local(date(2027, 10, 31), 3, 30, fold=1), local(date(2027, 10, 31), 4, 30))
    occurrences = expand(first, "FREQ=DAILY;COUNT=2", HELSINKI)
    assert occurrences[0] == first
    assert starts_local(occurrences)[1] == "2027-11-01 03:30"


def test_a_slot_past_midnight_keeps_its_local_end_over_the_dst_night() -> None:
    first = slot(date(2027, 3, 26), (23, 0), (4, 0), end_day=date(2027, 3, 27))
    occurrences = expand(first, "FREQ=DAILY;COUNT=3", HELSINKI)
    ends = [s.end.astimezone(HELSINKI).strftime("%d %H:%M") for s in occurrences]
    assert ends == ["27 04:00", "28 04:00", "29 04:00"]
    assert [s.duration.total_seconds() / 3600 for s in occurrences] == [5, 4, 5]


def test_byday_gives_several_days_a_week_at_the_same_time() -> None:
    occurrences = expand(
        slot(MONDAY, (17, 0), (18, 0)), "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", HELSINKI
    )
    assert starts_local(occurrences) == [
        "2027-01-11 17:00",
        "2027-01-13 17:00",
        "2027-01-18 17:00",
        "2027-01-20 17:00",
    ]


def test_a_lower_case_rule_is_read_the_same() -> None:
    first = slot(MONDAY, (17, 0), (18, 0))
    assert expand(first, "freq=weekly;interval=2;count=3", HELSINKI) == expand(
        first, "FREQ=WEEKLY;INTERVAL=2;COUNT=3", HELSINKI
    )


# --- UNTIL ------------------------------------------------------------------------------


def test_a_floating_until_is_local_time() -> None:
    first = slot(MONDAY, (18, 0), (19, 0))  # 16:00 UTC
    # 17:00 local on the 25th is 15:00 UTC: the 25th's 18:00 occurrence is after it.
    assert len(expand(first, "FREQ=WEEKLY;UNTIL=20270125T170000", HELSINKI)) == 2
    # Read as UTC, 17:00Z is after 16:00Z and the 25th would be in.
    assert len(expand(first, "FREQ=WEEKLY;UNTIL=20270125T170000Z", HELSINKI)) == 3
    assert len(expand(first, "FREQ=WEEKLY;UNTIL=20270125T180000", HELSINKI)) == 3, "inclusive"


def test_a_floating_until_date_means_the_end_of_that_local_day() -> None:
    # 01:00 local on Mondays is 23:00 UTC on the Sunday before.
    first = slot(MONDAY, (1, 0), (2, 0))
    occurrences = expand(first, "FREQ=WEEKLY;UNTIL=20270124", HELSINKI)
    assert starts_local(occurrences) == ["2027-01-11 01:00", "2027-01-18 01:00"]
    assert len(expand(first, "FREQ=WEEKLY;UNTIL=20270125", HELSINKI)) == 3


def test_until_before_the_first_occurrence_gives_nothing() -> None:
    assert expand(slot(MONDAY, (18, 0), (19, 0)), "FREQ=WEEKLY;UNTIL=20270101", HELSINKI) == []


# --- what is refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=WEEKLY", "COUNT or UNTIL"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20270301", "not both"),
        ("DTSTART:20270111T180000\nRRULE:FREQ=WEEKLY;COUNT=2", "without DTSTART"),
        ("FREQ=WEEKLY;COUNT=2;DTSTART=20270111T180000", "without DTSTART"),
        ("FREQ=HOURLY;COUNT=2", "at most daily"),
        ("FREQ=MINUTELY;COUNT=2", "at most daily"),
        ("FREQ=SECONDLY;COUNT=2", "at most daily"),
        ("FREQ=DAILY;BYHOUR=10,12;COUNT=4", "at most daily"),
        ("FREQ=DAILY;BYMINUTE=0,30;COUNT=4", "at most daily"),
        ("FREQ=WEEKLY;BYSECOND=1;COUNT=4", "at most daily"),
        ("FREQ=FORTNIGHTLY;COUNT=2", "not a valid RRULE"),
        ("COUNT=2", "not a valid RRULE"),
        ("FREQ=WEEKLY;UNTIL=20271340", "not a valid RRULE"),
        ("FREQ=WEEKLY;COUNT=two", "not a valid RRULE"),
        ("FREQ=WEEKLY;INTERVAL=0;COUNT=2", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=-1;COUNT=2", "INTERVAL"),
        ("FREQ=WEEKLY;BYDAY=XX;COUNT=2", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=6MO;COUNT=2", "BYDAY"),
        ("FREQ=WEEKLY;BYMONTH=13;COUNT=2", "out of range"),
        ("FREQ=YEARLY;BYYEARDAY=367;COUNT=2", "out of range"),
        ("FREQ=WEEKLY;BYEASTER=0;COUNT=2", "not supported"),
        ("FREQ=DAILY;BYSETPOS=1;COUNT=2", "MONTHLY or FREQ=YEARLY"),
    ],
)
def test_refused_rules(rule: str, message: str) -> None:
    with pytest.raises(BadRecurrence, match=message):
        expand(slot(MONDAY, (18, 0), (19, 0)), rule, HELSINKI)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=1",  # there is no 30 February
        "FREQ=WEEKLY;BYMONTH=4;BYMONTHDAY=31;COUNT=1",
        "FREQ=DAILY;INTERVAL=7;BYDAY=TU;COUNT=1",  # every 7th day from a Monday is a Monday
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;UNTIL=20400101",
    ],
)
def test_a_rule_that_can_never_match_is_refused_at_once(
    rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dateutil would look for a match up to the year 9999: seconds of CPU per request. The
    # refusal must come from the check of the next four years' days (a fixed amount of work),
    # before dateutil is asked at all. (Counted, not timed: a timing assertion fails on a
    # loaded machine.)
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("dateutil was asked to expand a rule that can never match")

    monkeypatch.setattr(recurrence, "rrulestr", never)
    with pytest.raises(BadRecurrence, match="no occurrence"):
        expand(slot(MONDAY, (18, 0), (19, 0)), rule, HELSINKI)


def test_monthly_rules_with_setpos_and_negative_days() -> None:
    first = slot(date(2027, 1, 29), (18, 0), (19, 0))
    last_weekday = expand(first, "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3", HELSINKI)
    assert starts_local(last_weekday) == [
        "2027-01-29 18:00",
        "2027-02-26 18:00",
        "2027-03-31 18:00",
    ]
    month_end = expand(
        slot(date(2027, 1, 31), (18, 0), (19, 0)), "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=2", HELSINKI
    )
    assert starts_local(month_end) == ["2027-01-31 18:00", "2027-02-28 18:00"]


def test_the_occurrence_cap() -> None:
    first = slot(MONDAY, (18, 0), (19, 0))
    assert len(expand(first, f"FREQ=DAILY;COUNT={MAX_OCCURRENCES}", HELSINKI)) == MAX_OCCURRENCES
    with pytest.raises(BadRecurrence, match=f"more than {MAX_OCCURRENCES}"):
        expand(first, f"FREQ=DAILY;COUNT={MAX_OCCURRENCES + 1}", HELSINKI)
    with pytest.raises(BadRecurrence, match="more than"):
        expand(first, "FREQ=WEEKLY;UNTIL=99991231T000000Z", HELSINKI)


def test_occurrences_are_utc_slots() -> None:
    (only,) = expand(slot(MONDAY, (18, 0), (19, 0)), "FREQ=WEEKLY;COUNT=1", HELSINKI)
    assert only.start == datetime(2027, 1, 11, 16, tzinfo=UTC)
    assert only.start.tzinfo is UTC
