"""An application's tier: the first of the round's ordered criteria that it meets.

Criteria (API.md): `{key: "age_group" | "organisation_type" | "previous_season" |
"purpose", in?: [values]}`. Without `in`, `age_group` means children and young people
(0-6, 7-14, 15-19) and `organisation_type` means associations; `purpose` matches when the
application's purpose contains any of the values (case-insensitive); `previous_season` is
met by an organisation that accepted an allocation in the previous round for any of the
same premises. An application that meets none is in the tier after the last criterion.

`criteria_problems` says what is wrong with a round's criteria, for the API and the pages
alike: `in` names known age groups or organisation types, is left out for
`previous_season`, and for `purpose` names words (1 to 100 characters, no spaces at either
end, no control characters); values are named once and at most 50 of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from booking.domain.accounts import ORGANISATION_TYPES

CRITERIA = ("age_group", "organisation_type", "previous_season", "purpose")
AGE_GROUPS = ("0-6", "7-14", "15-19", "20-64", "65+", "mixed")
YOUNG = ("0-6", "7-14", "15-19")
MAX_CRITERIA = 10
MAX_VALUES = 50
MAX_WORD = 100
NO_WORDS = "Name the words the purpose must mention."
# The values each key takes from a fixed list; `purpose` takes words, `previous_season` none.
CHOICES: dict[str, tuple[str, ...]] = {
    "age_group": AGE_GROUPS,
    "organisation_type": ORGANISATION_TYPES,
}


def criteria_problems(criteria: object) -> list[str]:
    """What is wrong with a round's `criteria` (each message leads with the criterion's
    index and field, as `1.in: …`); empty when nothing is."""
    if not isinstance(criteria, list):
        return ["Give a list of criteria."]
    problems = []
    if len(criteria) > MAX_CRITERIA:
        problems.append(f"At most {MAX_CRITERIA} criteria.")
    for index, criterion in enumerate(criteria):
        if not isinstance(criterion, dict) or criterion.get("key") not in CRITERIA:
            problems.append(f"{index}.key: One of: {', '.join(CRITERIA)}.")
            continue
        problems += [f"{index}.in: {p}" for p in _values_problems(criterion)]
    return problems


def _values_problems(criterion: dict[str, Any]) -> list[str]:
    key = criterion["key"]
    if "in" not in criterion:
        return [NO_WORDS] if key == "purpose" else []
    values = criterion["in"]
    if key == "previous_season":
        return ["previous_season takes no values: leave `in` out."]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return ["Give a list of texts."]
    if not values:
        if key == "purpose":
            return [NO_WORDS]
        return ["Name at least one value, or leave `in` out for the default."]
    problems = []
    if len(values) > MAX_VALUES:
        problems.append(f"At most {MAX_VALUES} values.")
    if key in CHOICES:
        wrong = [v for v in values if v not in CHOICES[key]]
        if wrong:
            problems.append(
                f"Not a value of {key}: {', '.join(repr(v[:40]) for v in wrong[:5])}; "
                f"one of: {', '.join(CHOICES[key])}."
            )
    elif any(not is_word(v) for v in values):
        problems.append(
            f"A word is 1 to {MAX_WORD} characters, with no spaces at either end and no "
            "control characters."
        )
    if len({v.casefold() for v in values}) != len(values):
        problems.append("Name each value once.")
    return problems


def is_word(text: str) -> bool:
    """A word that a `purpose` criterion looks for in an application's purpose."""
    return (
        0 < len(text) <= MAX_WORD
        and text == text.strip()
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)
    )


def meets(
    criterion: dict[str, Any],
    *,
    age_group: str,
    purpose: str,
    organisation_type: str,
    previous_season: bool,
) -> bool:
    values = criterion.get("in")
    match criterion["key"]:
        case "age_group":
            return age_group in (values or YOUNG)
        case "organisation_type":
            return organisation_type in (values or ("association",))
        case "previous_season":
            return previous_season
        case "purpose":
            text = purpose.casefold()
            return any(str(v).casefold() in text for v in values or ())
    return False


def tier_of(
    criteria: Sequence[dict[str, Any]],
    *,
    age_group: str,
    purpose: str,
    organisation_type: str,
    previous_season: bool,
) -> int:
    for index, criterion in enumerate(criteria):
        if meets(
            criterion,
            age_group=age_group,
            purpose=purpose,
            organisation_type=organisation_type,
            previous_season=previous_season,
        ):
            return index
    return len(criteria)
