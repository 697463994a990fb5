"""The rules an application and a staff adjustment must keep, as field → messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from booking.allocation.candidates import candidates_of
from booking.allocation.commands import Catalogue
from booking.allocation.model import WEEKDAYS, Section, TimeWish, clock_minutes
from booking.domain.rules import Problems

MAX_SLOTS_PER_WEEK = 7


def wishes_of(raw: Mapping[str, Any]) -> tuple[TimeWish, ...]:
    return tuple(
        TimeWish(
            WEEKDAYS.index(t["weekday"]),
            clock_minutes(t["from"]),
            clock_minutes(t["to"]),
            t.get("priority", "primary") == "primary",
        )
        for t in raw["times"]
    )


def section_of(
    application_id: str, organisation_id: str, tier: int, raw: Mapping[str, Any]
) -> Section:
    return Section(
        application_id,
        raw["name"],
        organisation_id,
        tier,
        raw["slots_per_week"],
        raw["duration_minutes"],
        tuple(raw["premises"]),
        wishes_of(raw),
    )


def application_problems(
    body: Mapping[str, Any], round_premises: list[str], catalogue: Catalogue
) -> Problems:
    problems: Problems = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if "terms_accepted" in body and body["terms_accepted"] is not True:
        add("terms_accepted", "Accept the round's terms to apply.")
    names: set[str] = set()
    for index, raw in enumerate(body.get("sections", [])):
        where = f"{index}"
        if raw["name"] in names:
            add("sections", f"{where}.name: Each section needs a name of its own.")
        names.add(raw["name"])
        if not 1 <= raw["slots_per_week"] <= MAX_SLOTS_PER_WEEK:
            add("sections", f"{where}.slots_per_week: From 1 to {MAX_SLOTS_PER_WEEK} a week.")
        outside = [p for p in raw["premises"] if p not in round_premises]
        if outside:
            add("sections", f"{where}.premises: Not in this round: {', '.join(outside)}.")
            continue
        if len(set(raw["premises"])) < len(raw["premises"]):
            add("sections", f"{where}.premises: Name each premises once.")
        for premises_id in raw["premises"]:
            facts = catalogue.get(premises_id)
            if facts is None or facts.retired:
                add("sections", f"{where}.premises: {premises_id} is not in use.")
                continue
            size = body.get("group_size")
            if facts.capacity is not None and size is not None and size > facts.capacity:
                add("group_size", f"{premises_id} holds at most {facts.capacity} people.")
            if (
                not facts.min_duration_minutes
                <= raw["duration_minutes"]
                <= facts.max_duration_minutes
            ):
                add(
                    "sections",
                    f"{where}.duration_minutes: {premises_id} takes "
                    f"{facts.min_duration_minutes}–{facts.max_duration_minutes} minutes.",
                )
        try:
            wishes = wishes_of(raw)
        except ValueError as error:
            add("sections", f"{where}.times: {error}")
            continue
        if any(w.end <= w.start for w in wishes):
            add("sections", f"{where}.times: Each window ends after it begins.")
            continue
        hours = {p: catalogue[p].hours for p in raw["premises"] if p in catalogue}
        section = section_of("", "", 0, raw)
        if not candidates_of(section, 0, hours, step=15):
            add(
                "sections",
                f"{where}.times: No wished premises is open for {raw['duration_minutes']} "
                "minutes within these times.",
            )
    return problems
