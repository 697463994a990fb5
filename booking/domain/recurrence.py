"""Expanding an RFC 5545 RRULE into slots that keep their local wall-clock time across DST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from events.slot import Slot

MAX_OCCURRENCES = 370
# Bookings are at most three years ahead (the largest max_advance_days): a rule with no date
# in this span can never be booked.
HORIZON = timedelta(days=4 * 366)
_FLOATING_UNTIL = re.compile(r"UNTIL=(\d{8}(?:T\d{6})?)(?=;|$)")
_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTH", "BYMONTHDAY"}
# A rule whose filters select nothing makes dateutil scan period by period up to the year
# 9999: seconds of CPU for a daily or weekly rule. These parts can do that even when some
# date matches, so they are kept to monthly and yearly rules, whose scans are short.
_COARSE_ONLY = {"BYSETPOS", "BYYEARDAY", "BYWEEKNO"}
_LIMITS = {"BYMONTH": 12, "BYMONTHDAY": 31, "BYYEARDAY": 366, "BYWEEKNO": 53, "BYSETPOS": 366}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_NTH_WEEKDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")


class BadRecurrence(ValueError):
    pass


def _parts(rule: str) -> dict[str, str]:
    parts = {}
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            parts[key.strip()] = value.strip()
    return parts


def _ints(key: str, text: str) -> set[int]:
    try:
        return {int(item) for item in text.split(",")}
    except ValueError:
        raise BadRecurrence(f"{key} is not a list of numbers") from None


def _weekdays(text: str, most_nth: int) -> set[str]:
    found = set()
    for item in text.split(","):
        match = _NTH_WEEKDAY.match(item.strip())
        if match is None or (match[1] and not 1 <= abs(int(match[1])) <= most_nth):
            raise BadRecurrence(f"BYDAY has an impossible day: {item.strip()!r}")
        found.add(match[2])
    return found


def _check_parts(parts: dict[str, str], first: date) -> None:
    """Refuse what this service does not book and rules that could never give a date."""
    freq = parts.get("FREQ", "")
    if freq in ("SECONDLY", "MINUTELY", "HOURLY") or {"BYHOUR", "BYMINUTE", "BYSECOND"} & set(
        parts
    ):
        raise BadRecurrence("occurrences repeat at most daily, at the first one's time")
    for key in parts.keys() - _PARTS:
        if key not in _COARSE_ONLY:
            raise BadRecurrence(f"{key} is not supported")
        if freq not in ("MONTHLY", "YEARLY"):
            raise BadRecurrence(f"{key} needs FREQ=MONTHLY or FREQ=YEARLY")
    numbers = {key: _ints(key, parts[key]) for key in _LIMITS.keys() & parts.keys()}
    for key, values in numbers.items():
        if not all(1 <= abs(v) <= _LIMITS[key] for v in values):
            raise BadRecurrence(f"{key} is out of range")
    step = min(_ints("INTERVAL", parts.get("INTERVAL", "1")))
    if step < 1:
        raise BadRecurrence("INTERVAL is at least 1")
    weekdays = (
        _weekdays(parts["BYDAY"], 5 if freq == "MONTHLY" else 53) if "BYDAY" in parts else None
    )

    def could_match(day: date) -> bool:
        last = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        return (
            ("BYMONTH" not in numbers or day.month in numbers["BYMONTH"])
            and (
                "BYMONTHDAY" not in numbers
                or bool(numbers["BYMONTHDAY"] & {day.day, day.day - last - 1})
            )
            and (weekdays is None or _WEEKDAYS[day.weekday()] in weekdays)
        )

    # A daily rule visits only every INTERVAL-th day; other rules may reach any date.
    stride = step if freq == "DAILY" else 1
    if not any(could_match(first + timedelta(days=n)) for n in range(0, HORIZON.days, stride)):
        raise BadRecurrence("the rule gives no occurrence in the next four years")


def _until_in_utc(rule: str, zone: ZoneInfo) -> str:
    """A floating UNTIL (no `Z`) means local time; dateutil wants UTC with an aware start."""

    def to_utc(match: re.Match[str]) -> str:
        text = match.group(1)
        if "T" not in text:
            text += "T235959"
        local = datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
        return "UNTIL=" + local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return _FLOATING_UNTIL.sub(to_utc, rule)


def expand(first: Slot, rule: str, zone: ZoneInfo) -> list[Slot]:
    """Every occurrence of `rule` starting with `first`, same local start time and length."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    upper = text.upper()
    if "DTSTART" in upper or "\n" in text:
        raise BadRecurrence("give only the RRULE value, without DTSTART")
    parts = _parts(upper)
    if "COUNT" not in parts and "UNTIL" not in parts:
        raise BadRecurrence("the rule needs COUNT or UNTIL")
    if "COUNT" in parts and "UNTIL" in parts:
        raise BadRecurrence("give COUNT or UNTIL, not both")
    local_start = first.start.astimezone(zone)
    _check_parts(parts, local_start.date())
    local_length = first.end.astimezone(zone).replace(tzinfo=None) - local_start.replace(
        tzinfo=None
    )
    try:
        parsed = rrulestr(_until_in_utc(upper, zone), dtstart=local_start)
    except (ValueError, TypeError) as error:
        raise BadRecurrence(f"not a valid RRULE: {error}") from None
    if not isinstance(parsed, rrule):
        raise BadRecurrence("give one RRULE")
    slots: list[Slot] = []
    for occurrence in _occurrences(parsed):
        if len(slots) == MAX_OCCURRENCES:
            raise BadRecurrence(f"more than {MAX_OCCURRENCES} occurrences")
        # dateutil keeps the wall-clock time; resolve each to its own UTC offset. The first
        # is the slot as asked, which may be the second of two equal autumn wall times.
        wall_start = occurrence.replace(tzinfo=None)
        if wall_start == local_start.replace(tzinfo=None):
            slots.append(first)
            continue
        start = wall_start.replace(tzinfo=zone).astimezone(UTC)
        end = (wall_start + local_length).replace(tzinfo=zone).astimezone(UTC)
        if end > start:
            slots.append(Slot(start, end))
    if slots and slots[0] != first:
        # RFC 5545 leaves a start that is not itself an occurrence undefined; say so.
        raise BadRecurrence("the start must be an occurrence of the rule (check BYDAY)")
    return slots


def _occurrences(parsed: rrule) -> Iterator[datetime]:
    """dateutil validates some parts only while iterating; its errors mean a bad rule."""
    try:
        yield from parsed
    except (ValueError, OverflowError) as error:
        raise BadRecurrence(f"not a valid RRULE: {error}") from None
