"""Space ids are written as premises ids are, and a round's criteria name values they can
meet: over HTTP on both databases, the API's 422 names the field, the staff forms say it in
the reader's language, and nothing is changed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from booking.domain.spaces import space_problems
from events.sql import read_transaction
from projections.allocation import rounds_table
from tests.conftest import Api, premises_body
from tests.integration.test_allocation_api import round_body
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text
from tests.integration.test_pages_staff import _new_premises_form, _premises
from tests.integration.test_rounds_pages import round_id

__all__ = ["_fresh_limits", "round_id", "site"]

BAD_IDS = [
    "Iso Sali",  # upper case and a space
    "sali-itä",  # a letter outside a-z
    "-sali",  # a leading hyphen
    "sali\n",  # a trailing line feed, which `re.match(…$)` would let through
    "sali_a",
    "x" * 101,
    "\uff53\uff41\uff4c\uff49",  # full-width letters
    "",
    " ",
]


def _premises_count(api: Api) -> int:
    return len(api.get("/api/v1/premises?include_retired=true").get_json()["premises"])


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_new_premises_with_a_malformed_space_id_is_422(api: Api, bad: str) -> None:
    api.premises("sali")
    body = premises_body("sali-ita", spaces=["sali", bad])

    refused = api.post("/api/v1/premises", body, role="staff")

    assert refused.status_code == 422, refused.get_json()
    assert refused.mimetype == "application/problem+json"
    assert list(refused.get_json()["errors"]) == ["spaces"]
    assert api.get("/api/v1/premises/sali-ita").status_code == 404
    assert _premises_count(api) == 1


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_patch_naming_a_malformed_space_id_is_422_and_changes_nothing(api: Api, bad: str) -> None:
    api.premises("sali", spaces=["sali-ita", "sali-lansi"])

    refused = api.patch("/api/v1/premises/sali", {"spaces": ["sali-ita", bad]}, role="staff")

    assert refused.status_code == 422, refused.get_json()
    assert "spaces" in refused.get_json()["errors"]
    now = api.get("/api/v1/premises/sali").get_json()
    assert now["spaces"] == ["sali-ita", "sali-lansi"] and now["version"] == 1


def test_well_formed_space_ids_are_taken(api: Api) -> None:
    made = api.premises("sali", spaces=["sali-ita", "0-lohko", "x" * 100])
    assert made["spaces"] == ["sali-ita", "0-lohko", "x" * 100]
    changed = api.patch("/api/v1/premises/sali", {"spaces": ["sali-ita"]}, role="staff")
    assert changed.status_code == 200 and changed.get_json()["spaces"] == ["sali-ita"]


def test_a_premises_keeps_the_space_ids_it_has() -> None:
    # Spaces named before the rule (older spelling) may be sent back as they are; a new
    # malformed one still may not join them.
    assert space_problems(["Sali A", "sali-b"], kept=("Sali A",)) == []
    assert space_problems(["Sali A", "Sali B"], kept=("Sali A",)) != []
    assert space_problems(["Sali A"]) != []


def test_a_premises_id_with_a_trailing_line_feed_is_422(api: Api) -> None:
    refused = api.post("/api/v1/premises", premises_body("sali\n"), role="staff")
    assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["id"]
    assert _premises_count(api) == 0


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en", "Write a space's name in lower-case letters (a-z), digits and hyphens"),
        ("fi", "Kirjoita osan nimi pienillä kirjaimilla (a–z), numeroilla ja yhdysmerkeillä"),
        ("sv", "Skriv utrymmets namn med små bokstäver (a–z), siffror och bindestreck"),
    ],
)
def test_the_premises_forms_refuse_malformed_space_ids_in_the_readers_language(
    site: Site, api: Api, lang: str, said: str
) -> None:
    api.premises("sali")
    staff = site.client("staff", lang=lang)
    edited = post_form(
        staff,
        "/staff/premises/sali",
        _new_premises_form(spaces="sali, Iso Sali", version="1"),
        page="/staff/premises/sali",
    )
    assert edited.status_code == 422
    page = text(edited).replace("&#39;", "'")
    assert said in page and "Iso Sali" in page and 'id="f-spaces-error"' in page
    assert _premises(api, "sali").spaces == ["sali"]
    new = post_form(
        staff,
        "/staff/premises/new",
        _new_premises_form(id="uusi", spaces="uusi, Iso Sali"),
        page="/staff/premises/new",
    )
    assert new.status_code == 422 and said in text(new).replace("&#39;", "'")
    assert _premises(api, "uusi") is None


BAD_CRITERIA: list[tuple[list[dict[str, Any]], str]] = [
    ([{"key": "age_group", "in": ["7-14 vuotta"]}], "Not a value of age_group"),
    ([{"key": "age_group", "in": []}], "Name at least one value"),
    ([{"key": "age_group", "in": ["7-14", "7-14"]}], "Name each value once"),
    ([{"key": "organisation_type", "in": ["yhdistys"]}], "Not a value of organisation_type"),
    ([{"key": "previous_season", "in": ["2026"]}], "previous_season takes no values"),
    ([{"key": "previous_season", "in": []}], "previous_season takes no values"),
    ([{"key": "purpose"}], "Name the words the purpose must mention"),
    ([{"key": "purpose", "in": []}], "Name the words the purpose must mention"),
    ([{"key": "purpose", "in": [" juniori"]}], "A word is 1 to 100 characters"),
    ([{"key": "purpose", "in": ["juni\u0007ori"]}], "A word is 1 to 100 characters"),
    ([{"key": "purpose", "in": ["Juniori", "juniori"]}], "Name each value once"),
    ([{"key": "purpose", "in": ["x"] * 51}], "Longer than maximum length 50"),
    ([{"key": "purpose", "in": ["x" * 101]}], "Length must be between 1 and 100"),
    ([{"key": "age_group", "in": "7-14"}], "Not a valid list"),
    ([{"key": "age_group", "in": [7]}], "Not a valid string"),
    ([{"key": "sukupuoli"}], "Must be one of"),
    ([{"key": "age_group"}] * 11, "Longer than maximum length 10"),
]


def _rounds(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(rounds_table)).scalar_one())


@pytest.mark.parametrize(("criteria", "said"), BAD_CRITERIA)
def test_criteria_with_values_they_cannot_meet_are_422(
    api: Api, criteria: list[dict[str, Any]], said: str
) -> None:
    api.premises("gym")
    body = round_body(premises=["gym"], criteria=criteria)

    refused = api.post("/api/v1/allocation-rounds", body, role="staff")

    assert refused.status_code == 422, refused.get_json()
    assert refused.mimetype == "application/problem+json"
    errors = refused.get_json()["errors"]
    assert list(errors) == ["criteria"], errors
    assert any(said in message for message in errors["criteria"]), errors
    assert _rounds(api) == 0


def test_criteria_with_values_they_can_meet_are_taken(api: Api) -> None:
    api.premises("gym")
    criteria = [
        {"key": "age_group", "in": ["0-6", "65+", "mixed"]},
        {"key": "organisation_type", "in": ["company", "other"]},
        {"key": "previous_season"},
        {"key": "purpose", "in": ["juniori", "Liikuntaa ikäihmisille", "x" * 100]},
        {"key": "age_group"},
    ]
    made = api.post(
        "/api/v1/allocation-rounds", round_body(premises=["gym"], criteria=criteria), "staff"
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["criteria"] == criteria


@pytest.mark.parametrize(
    ("lang", "key", "values", "said"),
    [
        ("en", "age_group", "7-14 years", "Write age groups as 0-6, 7-14, 15-19"),
        ("fi", "age_group", "7-14 vuotta", "Kirjoita ikäryhmät muodossa 0-6, 7-14"),
        ("sv", "organisation_type", "förening", "Skriv organisationstyperna som association"),
        ("fi", "previous_season", "2026", "Tällä perusteella ei ole arvoja"),
        ("sv", "purpose", "junior, Junior", "Ange varje värde bara en gång: Junior, junior."),
        ("en", "purpose", "x" * 101, "A word is at most 100 characters"),
    ],
)
def test_the_round_form_refuses_criterion_values_in_the_readers_language(
    site: Site, round_id: str, lang: str, key: str, values: str, said: str
) -> None:
    staff = site.client("staff", lang=lang)
    path = "/staff/rounds/new"
    data = {
        "name_fi": "Syyskausi 2027",
        "season_start": "2027-08-16",
        "season_end": "2027-12-19",
        "opens_date": "2027-03-01",
        "opens_time": "09:00",
        "closes_date": "2027-04-01",
        "closes_time": "16:00",
        "premises": ["gym", "hall"],
        "criterion_0": key,
        "criterion_0_in": values,
        "confirm_days": "10",
    }
    before = _rounds(site.api)

    refused = post_form(staff, path, data, page=path)

    assert refused.status_code == 422
    assert said in text(refused), text(refused)[:3000]
    assert _rounds(site.api) == before
    fine = post_form(staff, path, {**data, "criterion_0_in": ""}, page=path)
    assert fine.status_code == (422 if key == "purpose" else 303)
