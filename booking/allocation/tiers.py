"""An application's tier: the first of the round's ordered criteria that it meets.

Criteria (API.md): `{key: "age_group" | "organisation_type" | "previous_season" |
"purpose", in?: [values]}`. Without `in`, `age_group` means children and young people
(0-6, 7-14, 15-19) and `organisation_type` means associations; `purpose` matches when the
application's purpose contains any of the values (case-insensitive); `previous_season` is
met by an organisation that accepted an allocation in the previous round for any of the
same premises. An application that meets none is in the tier after the last criterion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

YOUNG = ("0-6", "7-14", "15-19")


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
