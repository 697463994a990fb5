"""The application form of an allocation round, without JavaScript: a fixed number of rows
that grows by a round trip ("add another section", "add a time window", "remove").

The form is flat (`s0-name`, `s0-p1`, `s0-t2-from`, …) so that the shared form macros keep
what was typed and show each error next to its field; `read` turns it into API.md's
application body and `take_error` puts the allocation rules' refusals (field → "N.part:
message") back next to the fields they are about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from booking.allocation.model import WEEKDAYS
from booking.domain.errors import DomainError, RuleBroken
from booking.pages.common import Form
from booking.pages.round_texts import AGE_GROUPS, translate

CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
MAX_SECTIONS = 20
MAX_TIMES = 21
MAX_CHOICES = 5  # premises in order of preference, per section
FIRST_TIMES = 2  # time rows a new section starts with


@dataclass
class Layout:
    """How many rows the form shows: sections, and time windows per section."""

    times: list[int] = field(default_factory=lambda: [FIRST_TIMES])
    choices: int = 3

    @property
    def sections(self) -> int:
        return len(self.times)


def _count(form: Form, name: str, default: int, maximum: int) -> int:
    try:
        return max(1, min(maximum, int(form.get(name) or default)))
    except ValueError:
        return default


def layout_of(form: Form, choices: int) -> Layout:
    sections = _count(form, "sections", 1, MAX_SECTIONS)
    times = [_count(form, f"s{i}-times", FIRST_TIMES, MAX_TIMES) for i in range(sections)]
    return Layout(times, choices)


def _section_keys(i: int, layout: Layout, n_times: int) -> list[str]:
    keys = [f"s{i}-name", f"s{i}-slots", f"s{i}-duration"]
    keys += [f"s{i}-p{k}" for k in range(layout.choices)]
    for j in range(n_times):
        keys += [f"s{i}-t{j}-{part}" for part in ("day", "from", "to", "priority")]
    return keys


def _index(action: str) -> int:
    """The row an "add_time-N" or "remove_section-N" button names; -1 for anything else."""
    found = action.split("-", 1)[1]
    return int(found) if found.isdigit() and len(found) < 4 else -1


def rearranged(form: Form, layout: Layout, action: str) -> tuple[Form, Layout]:
    """The form again after "add another section", "add a time window" or "remove": the
    values typed so far moved to their new rows, nothing checked yet."""
    kept = list(range(layout.sections))
    times = list(layout.times)
    if action == "add_section" and layout.sections < MAX_SECTIONS:
        kept.append(-1)
        times.append(FIRST_TIMES)
    elif action.startswith("add_time-"):
        index = _index(action)
        if 0 <= index < len(times):
            times[index] = min(MAX_TIMES, times[index] + 1)
    elif action.startswith("remove_section-") and layout.sections > 1:
        index = _index(action)
        if 0 <= index < len(kept):
            del kept[index]
            del times[index]
    data: dict[str, Any] = {k: v for k, v in form.data.items() if not re.match(r"s\d+-", k)}
    for new, old in enumerate(kept):
        if old < 0:
            continue
        for key in _section_keys(old, layout, layout.times[old]):
            if key in form.data:
                data[f"s{new}-" + key.split("-", 1)[1]] = form.data[key]
        data[f"s{new}-times"] = str(times[new])
    data["sections"] = str(len(kept))
    for new in range(len(kept)):
        data[f"s{new}-times"] = str(times[new])
    return Form(data), Layout(times, layout.choices)


def is_blank(form: Form, i: int, layout: Layout) -> bool:
    """Nothing typed in the section's row (a time window's priority always has a value)."""
    keys = _section_keys(i, layout, layout.times[i])
    return not any(form.get(k) for k in keys if not k.endswith("-priority"))


def read(form: Form, layout: Layout, round_premises: list[str]) -> tuple[dict[str, Any], list[int]]:
    """API.md's application body (without `organisation_id`) from the form, with the form's
    section row of each section in the body; the form's errors say what is missing."""
    purpose = form.text("purpose", 500, required=True)
    age_group = form.get("age_group")
    if age_group not in AGE_GROUPS:
        form.error("age_group", _("Choose the age group."))
    group_size = form.integer("group_size", 1, 10_000)
    sections: list[dict[str, Any]] = []
    rows: list[int] = []
    for i in range(layout.sections):
        if is_blank(form, i, layout):
            continue
        rows.append(i)
        sections.append(_section(form, i, layout, round_premises))
    if not sections:
        form.error("s0-name", _("Describe at least one section."))
    body = {
        "purpose": purpose,
        "age_group": age_group,
        "group_size": group_size,
        "terms_accepted": form.checked("terms_accepted"),
        "sections": sections,
    }
    return body, rows


def _section(form: Form, i: int, layout: Layout, round_premises: list[str]) -> dict[str, Any]:
    name = form.text(f"s{i}-name", 200, required=True)
    slots = form.integer(f"s{i}-slots", 1, 7)
    duration = form.integer(f"s{i}-duration", 15, 24 * 60)
    premises = [form.get(f"s{i}-p{k}") for k in range(layout.choices)]
    premises = [p for p in premises if p]
    if not premises:
        form.error(f"s{i}-p0", _("Choose at least the premises you want most."))
    elif any(p not in round_premises for p in premises):
        form.error(f"s{i}-p0", _("Choose premises from the list."))
    elif len(set(premises)) < len(premises):
        form.error(f"s{i}-premises", _("Name each premises once."))
    times: list[dict[str, str]] = []
    for j in range(layout.times[i]):
        key = f"s{i}-t{j}"
        day, start, end = (form.get(f"{key}-{p}") for p in ("day", "from", "to"))
        priority = form.get(f"{key}-priority") or "primary"
        if not (day or start or end):
            continue
        if day not in WEEKDAYS:
            form.error(f"{key}-day", _("Choose the weekday."))
        for part, value in (("from", start), ("to", end)):
            value = value.replace(".", ":")
            if len(value) == 4 and value[1] == ":":
                value = "0" + value
            if not CLOCK.match(value):
                form.error(f"{key}-{part}", _("Give the time as HH:MM, for example 18:30."))
            elif part == "from":
                start = value
            else:
                end = value
        if priority not in ("primary", "secondary"):
            priority = "primary"
        times.append({"weekday": day, "from": start, "to": end, "priority": priority})
    if not times:
        form.error(f"s{i}-t0-day", _("Give at least one weekday and time window."))
    return {
        "name": name,
        "slots_per_week": slots,
        "duration_minutes": duration,
        "premises": premises,
        "times": times,
    }


PARTS = {
    "name": "name",
    "slots_per_week": "slots",
    "duration_minutes": "duration",
    "premises": "premises",
    "times": "times",
}
TOP = {
    "purpose": "purpose",
    "age_group": "age_group",
    "group_size": "group_size",
    "terms_accepted": "terms_accepted",
    "organisation_id": "organisation_id",
}


def take_error(form: Form, error: DomainError, rows: list[int]) -> None:
    """A refusal of the use case next to the field it is about: `sections` messages read
    "N.part: message", N the section's place in the body (`rows` maps it to the form)."""
    if not isinstance(error, RuleBroken):
        form.error("_form", translate(str(error)))
        return
    for name, messages in error.problems.items():
        for message in messages:
            if name == "sections":
                found = re.match(r"(\d+)\.(\w+): (.*)", message)
                if found and int(found[1]) < len(rows):
                    part = PARTS.get(found[2], "name")
                    form.error(f"s{rows[int(found[1])]}-{part}", translate(found[3]))
                    continue
            form.error(TOP.get(name, "_form"), translate(message))


def filled(application: Any, choices: int) -> tuple[Form, Layout]:
    """The form of an application sent already (to change it)."""
    data: dict[str, Any] = {
        "purpose": application.purpose,
        "age_group": application.age_group,
        "group_size": str(application.group_size),
        "version": str(application.version),
    }
    times: list[int] = []
    for i, section in enumerate(application.sections):
        data[f"s{i}-name"] = section["name"]
        data[f"s{i}-slots"] = str(section["slots_per_week"])
        data[f"s{i}-duration"] = str(section["duration_minutes"])
        for k, premises_id in enumerate(section["premises"][:choices]):
            data[f"s{i}-p{k}"] = premises_id
        for j, wish in enumerate(section["times"]):
            data[f"s{i}-t{j}-day"] = wish["weekday"]
            data[f"s{i}-t{j}-from"] = wish["from"]
            data[f"s{i}-t{j}-to"] = wish["to"]
            data[f"s{i}-t{j}-priority"] = wish.get("priority", "primary")
        times.append(min(MAX_TIMES, len(section["times"]) + 1))
        data[f"s{i}-times"] = str(times[-1])
    data["sections"] = str(len(times))
    return Form(data), Layout(times or [FIRST_TIMES], choices)


def choices_for(round_premises: list[str]) -> int:
    return max(1, min(MAX_CHOICES, len(round_premises)))


def labels(layout: Layout) -> Mapping[str, str]:
    """Field → its label in the error summary."""
    found: dict[str, str] = {
        "purpose": _("Purpose"),
        "age_group": _("Age group"),
        "group_size": _("Group size"),
        "terms_accepted": _("Terms"),
        "organisation_id": _("Organisation"),
    }
    for i in range(layout.sections):
        section = _("Section %(n)d", n=i + 1)
        found[f"s{i}-name"] = f"{section}: {_('Name')}"
        found[f"s{i}-slots"] = f"{section}: {_('Slots a week')}"
        found[f"s{i}-duration"] = f"{section}: {_('Length of a slot')}"
        found[f"s{i}-premises"] = f"{section}: {_('Premises')}"
        found[f"s{i}-p0"] = f"{section}: {_('Premises')}"
        found[f"s{i}-times"] = f"{section}: {_('Times')}"
        for j in range(layout.times[i]):
            window = _("time window %(n)d", n=j + 1)
            for part in ("day", "from", "to"):
                found[f"s{i}-t{j}-{part}"] = f"{section}, {window}"
    return found
