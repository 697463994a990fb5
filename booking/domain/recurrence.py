"""Expanding an RFC 5545 RRULE into slots that keep their local wall-clock time across DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from events.slot import Slot

MAX_OCCURRENCES = 370
_FLOATING_UNTIL = re.compile(r"UNTIL=(\d{8}(?:T\d{6})?)(?=;|$)")


class BadRecurrence(ValueError):
    pass


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
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        raise BadRecurrence("the rule needs COUNT or UNTIL")
    if re.search(r"FREQ=(SECONDLY|MINUTELY|HOURLY)", upper):
        raise BadRecurrence("occurrences repeat at most daily")
    local_start = first.start.astimezone(zone)
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
    for occurrence in parsed:
        if len(slots) == MAX_OCCURRENCES:
            raise BadRecurrence(f"more than {MAX_OCCURRENCES} occurrences")
        # dateutil keeps the wall-clock time; resolve each to its own UTC offset.
        wall_start = occurrence.replace(tzinfo=None)
        start = wall_start.replace(tzinfo=zone).astimezone(UTC)
        end = (wall_start + local_length).replace(tzinfo=zone).astimezone(UTC)
        if end > start:
            slots.append(Slot(start, end))
    return slots
