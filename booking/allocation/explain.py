"""Why a section got less than it asked for, and the figures a proposal is judged by.

A reason is a code (`NO_WISHES`, `ONE_A_DAY`, `LEFT_OUT`, `TAKEN`) and the allocations that
hold the section's wished times; `sentence` says it in any catalogue's language (the API
answers in English, a mail in its reader's language: booking/allocation_mails.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from booking.allocation.candidates import Candidate
from booking.allocation.model import WEEKDAYS, Allocation, Section, Unallocated, clock_text

# A reason names at most this many holders; `blocked_by` lists them all.
NAMED_IN_REASON = 3
NO_WISHES, ONE_A_DAY, LEFT_OUT, TAKEN = "no_wishes", "one_a_day", "left_out", "taken"
REASON_CODES = (NO_WISHES, ONE_A_DAY, LEFT_OUT, TAKEN)


def _same(message: str) -> str:
    return message


def sentence(
    code: str,
    holders: list[str],
    days: int = 0,
    gettext: Callable[[str], str] = _same,
) -> str:
    """The reason of `code` in `gettext`'s language (English without one), naming the first
    `NAMED_IN_REASON` of `holders` (each already said in that language)."""
    _ = gettext
    named = "; ".join(holders[:NAMED_IN_REASON])
    more = len(holders) - NAMED_IN_REASON
    if more > 0:
        named = _("%(named)s and %(more)d more") % {"named": named, "more": more}
    if code == NO_WISHES:
        return _("No wished premises is open at the wished times.")
    if code == ONE_A_DAY:
        return _(
            "Its wishes cover %(days)d weekday(s) and a section gets at most one slot a day."
        ) % {"days": days}
    if code == LEFT_OUT:
        # Only possible when the solver stopped early or the slot was given up to keep a
        # higher tier's or a fairer share; say so rather than pretend it is taken.
        return _("Left out to keep a higher priority or a fairer share; held: %(named)s.") % {
            "named": named
        }
    return _("Its wished times are taken by %(named)s.") % {"named": named}


def code_of(entry: dict[str, Any]) -> str:
    """An unallocated entry's reason code; entries proposed before codes were kept are read
    from their English sentence."""
    if entry.get("reason_code") in REASON_CODES:
        return str(entry["reason_code"])
    reason = str(entry.get("reason", ""))
    for code, start in ((NO_WISHES, "No wished"), (ONE_A_DAY, "Its wishes cover")):
        if reason.startswith(start):
            return code
    return LEFT_OUT if reason.startswith("Left out") else TAKEN


def unallocated(
    sections: list[Section], candidates: list[Candidate], chosen: list[Candidate]
) -> list[Unallocated]:
    """One entry per section with fewer slots than `slots_per_week`, naming what holds the
    wished times it could not get."""
    got: dict[int, list[Candidate]] = defaultdict(list)
    for c in chosen:
        got[c.section_index].append(c)
    wished: dict[int, list[Candidate]] = defaultdict(list)
    for c in candidates:
        wished[c.section_index].append(c)
    result = []
    for index, section in enumerate(sections):
        mine = got[index]
        missing = section.slots_per_week - len(mine)
        if missing <= 0:
            continue
        code, holders = _why(wished[index], mine, chosen)
        named = [
            f"{a.section} ({a.application_id}, tier {a.tier + 1}) at {a.premises_id} "
            f"{WEEKDAYS[a.weekday]} {clock_text(a.start)}–{clock_text(a.end)}"
            for a in holders
        ]
        days = len({c.weekday for c in mine})
        reason = sentence(code, named, days)
        result.append(
            Unallocated(section.application_id, section.name, missing, reason, tuple(holders), code)
        )
    return result


def _why(
    wished: list[Candidate], mine: list[Candidate], chosen: list[Candidate]
) -> tuple[str, list[Allocation]]:
    if not wished:
        return NO_WISHES, []
    used_days = {c.weekday for c in mine}
    open_days = {c.weekday for c in wished} - used_days
    holders: dict[str, Allocation] = {}
    free_days: set[int] = set()
    for candidate in wished:
        if candidate.weekday in used_days:
            continue
        blocking = [
            other
            for other in chosen
            if other.section_index != candidate.section_index and other.overlaps(candidate)
        ]
        if not blocking:
            free_days.add(candidate.weekday)
        for other in blocking:
            allocation = other.allocation()
            holders.setdefault(allocation.id, allocation)
    ordered = sorted(holders.values(), key=lambda a: (a.weekday, a.start, a.premises_id))
    if not open_days:
        return ONE_A_DAY, []
    return (LEFT_OUT if free_days else TAKEN), ordered


def metrics(sections: list[Section], chosen: list[Candidate]) -> dict[str, Any]:
    """API.md's proposal metrics. Shares are of the allocated slots (0 when none)."""
    allocated = len(chosen)
    requested: dict[str, int] = defaultdict(int)
    granted: dict[str, int] = defaultdict(int)
    for section in sections:
        requested[section.organisation_id] += section.requested_minutes
    for c in chosen:
        granted[c.section.organisation_id] += c.section.duration
    organisations = [
        {
            "organisation_id": org,
            "requested_hours": round(requested[org] / 60, 2),
            "allocated_hours": round(granted[org] / 60, 2),
        }
        for org in sorted(requested)
    ]
    shares = [granted[o] / requested[o] for o in requested if requested[o]]
    return {
        "requested_slots": sum(s.slots_per_week for s in sections),
        "allocated_slots": allocated,
        "primary_share": _share(sum(1 for c in chosen if c.primary), allocated),
        "first_choice_share": _share(sum(1 for c in chosen if c.rank == 0), allocated),
        "lowest_organisation_share": round(min(shares), 4) if shares else 1.0,
        "organisations": organisations,
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def check(sections: list[Section], chosen: list[Candidate]) -> list[str]:
    """API.md's invariants of a proposal; the empty list when all hold (tests, asserts)."""
    problems = []
    for i, a in enumerate(chosen):
        for b in chosen[i + 1 :]:
            if a.overlaps(b):
                problems.append(
                    f"{a.allocation().id} and {b.allocation().id} share a space at one time "
                    "(buffers included)"
                )
    per_section: dict[int, list[Candidate]] = defaultdict(list)
    for c in chosen:
        per_section[c.section_index].append(c)
    for index, mine in per_section.items():
        section = sections[index]
        if len(mine) > section.slots_per_week:
            problems.append(f"{section.key} has more than slots_per_week")
        if len({c.weekday for c in mine}) < len(mine):
            problems.append(f"{section.key} has two slots on one day")
    return problems


def tier_values(sections: list[Section], chosen: list[Candidate]) -> list[tuple[float, ...]]:
    """The lexicographic objective the solver maximises, per tier, highest tier first:
    (minutes, preference points, lowest share, sum of shares) — the fairness terms 0 where
    a tier has one organisation (then they are not optimised)."""
    result: list[tuple[float, ...]] = []
    for tier in sorted({s.tier for s in sections}):
        requested: dict[str, int] = defaultdict(int)
        for section in sections:
            if section.tier == tier:
                requested[section.organisation_id] += section.requested_minutes
        mine = [c for c in chosen if c.section.tier == tier]
        granted: dict[str, int] = defaultdict(int)
        for c in mine:
            granted[c.section.organisation_id] += c.section.duration
        shares = [granted[o] / requested[o] for o in requested]
        fair = len(requested) > 1
        result.append(
            (
                float(sum(c.section.duration for c in mine)),
                float(sum(c.points for c in mine)),
                min(shares) if fair else 0.0,
                float(sum(shares)) if fair else 0.0,
            )
        )
    return result
