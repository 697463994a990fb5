"""A published round's result is public without names of people, and its statistics show
allocated against requested hours by organisation type, age group and purpose with the
three-organisation rule (issue 16.5). Both databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from booking import accounts
from events.sql import write_transaction
from tests.conftest import Api
from tests.integration.test_allocation_api import CLOSE, EVENINGS, application, round_body
from tests.integration.test_pages_helpers import Site, _fresh_limits, site, text

__all__ = ["_fresh_limits", "site"]

PERSON = "Pirjo Persoona"
EMAIL = "pirjo.persoona@example.fi"


def _section(weekday: str) -> dict[str, Any]:
    return {
        "name": "Ryhmä",
        "slots_per_week": 1,
        "duration_minutes": 90,
        "premises": ["gym"],
        "times": [{"weekday": weekday, "from": "17:00", "to": "18:30", "priority": "primary"}],
    }


def _published_round(api: Api, clock: Any) -> dict[str, Any]:
    """Six organisations apply; the two juniors' clubs wanting Monday collide."""
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", opening_hours=EVENINGS, rules=rules, capacity=60)
    rid = api.post("/api/v1/allocation-rounds", round_body(), role="staff").get_json()["id"]
    with write_transaction(api.engine) as conn:
        person = accounts.create_user(
            conn,
            email=EMAIL,
            name=PERSON,
            role="booker",
            organisation_id=api.organisation_id,
            vault=api.app.extensions["tilavaraus"].vault,
        )
    orgs = {
        "A": api.organisation_id,
        "B": api.other_organisation_id,
        "C": api.organisation("Tanssiseura Tahti ry"),
        "D": api.organisation("Kuntokeskus Voima Oy", "company"),
        "E": api.organisation("Eläkeläisten liikunta ry"),
        "F": api.organisation("Firma Liikunta Oy", "company"),
    }
    wishes = {
        "A": ("7-14", "Salibandy", "mon"),
        "B": ("7-14", "  SALIBANDY ", "mon"),
        "C": ("7-14", "salibandy", "tue"),
        "D": ("20-64", "Kuntopiiri", "wed"),
        "E": ("20-64", "Tuolijumppa", "thu"),
        "F": ("20-64", "Sulkapallo", "fri"),
    }
    path = f"/api/v1/allocation-rounds/{rid}/applications"
    ids = {}
    for key, (age, purpose, day) in wishes.items():
        body = application(age_group=age, purpose=purpose, sections=[_section(day)])
        if key == "A":  # a person applies for their own club; staff for the others
            made = api.client.post(
                path, json=body, headers={"Authorization": f"Bearer {person.token}"}
            )
        else:
            made = api.post(path, {**body, "organisation_id": orgs[key]}, role="staff")
        assert made.status_code == 201, made.get_json()
        ids[key] = made.get_json()["id"]
    clock.move_to(CLOSE + timedelta(minutes=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff").get_json()
    assert len(proposal["allocations"]) == 5
    before = api.client.get(f"/api/v1/allocation-rounds/{rid}/result")
    assert before.status_code == 404 and before.mimetype == "application/problem+json"
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff").get_json()
    by_app = {o["application_id"]: o for o in published["offers"]}
    accepted = api.post(f"/api/v1/allocations/{by_app[ids['D']]['id']}/accept", role="staff")
    assert accepted.status_code == 200, accepted.get_json()
    return {"id": rid, "orgs": orgs}


def test_the_published_result_is_public_and_names_no_person(api: Api, clock: Any) -> None:
    round_ = _published_round(api, clock)
    response = api.client.get(f"/api/v1/allocation-rounds/{round_['id']}/result")
    assert response.status_code == 200
    body = response.get_json()
    rows = body["result"]
    assert [(r["weekday"], r["premises_id"]) for r in rows] == [
        ("mon", "gym"),
        ("tue", "gym"),
        ("wed", "gym"),
        ("thu", "gym"),
        ("fri", "gym"),
    ]
    assert {r["organisation_name"] for r in rows} >= {
        "Tanssiseura Tahti ry",
        "Kuntokeskus Voima Oy",
        "Eläkeläisten liikunta ry",
        "Firma Liikunta Oy",
    }
    statuses = {r["organisation_name"]: r["status"] for r in rows}
    assert statuses["Kuntokeskus Voima Oy"] == "accepted"
    assert statuses["Tanssiseura Tahti ry"] == "offered"
    assert rows[0]["start_time"] == "17:00" and rows[0]["end_time"] == "18:30"
    assert rows[0]["premises_name"]["fi"]
    text = json.dumps(body, ensure_ascii=False)
    assert PERSON not in text and EMAIL not in text and "@" not in text
    assert "submitted_by" not in text and "Ryhmä" not in text  # nor the groups' own texts

    as_csv = api.client.get(
        f"/api/v1/allocation-rounds/{round_['id']}/result?format=csv",
        headers={"Accept-Language": "en"},
    )
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert len(table) == 5 and table[0]["premises_name"] == "Meeting room 2"
    assert PERSON not in as_csv.get_data(as_text=True)
    assert api.client.get("/api/v1/allocation-rounds/nope/result").status_code == 404


def test_allocation_statistics_keep_the_three_organisation_rule(api: Api, clock: Any) -> None:
    round_ = _published_round(api, clock)
    rid = round_["id"]
    # An unpublished round's applications are not counted.
    other = api.post(
        "/api/v1/allocation-rounds",
        round_body(
            applications_open=(CLOSE - timedelta(hours=1)).isoformat(),
            applications_close=(CLOSE + timedelta(days=3)).isoformat(),
        ),
        role="staff",
    ).get_json()
    made = api.post(
        f"/api/v1/allocation-rounds/{other['id']}/applications",
        {**application(), "organisation_id": round_["orgs"]["C"]},
        role="staff",
    )
    assert made.status_code == 201, made.get_json()

    def stats(query: str, role: str = "analyst") -> Any:
        return api.get(f"/api/v1/stats/allocation?{query}", role=role)

    by_age = stats("group_by=age_group").get_json()
    assert by_age["group_by"] == "age_group"
    assert {r["round_id"] for r in by_age["rows"]} == {rid}
    rows = {r["key"]["age_group"]: r for r in by_age["rows"]}
    assert rows["7-14"]["organisations"] == 3 and rows["7-14"]["suppressed"] is False
    assert rows["7-14"]["requested_hours"] == 4.5 and rows["7-14"]["allocated_hours"] == 3.0
    assert rows["7-14"]["accepted_hours"] == 0.0
    assert rows["20-64"]["requested_hours"] == 4.5 and rows["20-64"]["allocated_hours"] == 4.5
    assert rows["20-64"]["accepted_hours"] == 1.5
    assert rows["20-64"]["allocated_share"] == 1.0

    # Purposes are grouped by their words; single clubs' purposes show no figures.
    by_purpose = {r["key"]["purpose"]: r for r in stats("group_by=purpose").get_json()["rows"]}
    assert by_purpose["salibandy"]["organisations"] == 3
    for single in ("kuntopiiri", "tuolijumppa", "sulkapallo"):
        assert by_purpose[single]["suppressed"] is True
        assert by_purpose[single]["requested_hours"] is None
        assert by_purpose[single]["organisations"] is None

    # Two companies: suppressed, and then the associations too, or their figures and the
    # round's totals would give the companies' away.
    by_type = {
        r["key"]["organisation_type"]: r
        for r in stats(f"group_by=organisation_type&round_id={rid}").get_json()["rows"]
    }
    assert set(by_type) == {"association", "company"}
    assert all(r["suppressed"] and r["allocated_hours"] is None for r in by_type.values())

    as_csv = stats("group_by=age_group&format=csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert {(r["age_group"], r["allocated_hours"]) for r in lines} == {
        ("7-14", "3.0"),
        ("20-64", "4.5"),
    }

    assert stats("group_by=name").status_code == 422
    assert stats(f"round_id={other['id']}").status_code == 404  # not published
    assert stats("group_by=age_group", role="booker").status_code == 403
    assert api.client.get("/api/v1/stats/allocation").status_code == 401
    text = json.dumps(stats("group_by=purpose").get_json(), ensure_ascii=False)
    assert PERSON not in text and "@" not in text


def test_the_stats_page_shows_a_rounds_hours_in_each_language(
    site: Site, api: Api, clock: Any
) -> None:
    empty = text(site.client("analyst", lang="en").get("/stats"))
    assert "No allocation round has been published yet." in empty
    round_ = _published_round(api, clock)
    pages = {
        lang: text(site.client("analyst", lang=lang).get(f"/stats?round={round_['id']}"))
        for lang in ("fi", "sv", "en")
    }
    en = pages["en"]
    assert '<p class="table-title" id="allocation-age_group-title">By age group</p>' in en
    assert (
        '<th scope="row">7-14</th><td>3</td><td>4.5</td><td>3.0</td><td>0.0</td><td>67 %</td>' in en
    )
    assert '<th scope="row">Kuntopiiri</th><td colspan="5">Not shown: fewer than three' in en
    assert '<th scope="row">Associations</th><td colspan="5">' in en
    assert '<title id="chart-allocation-title">' in en
    assert "Ikäryhmittäin" in pages["fi"] and "Yhdistykset" in pages["fi"]
    assert "Per åldersgrupp" in pages["sv"] and "Föreningar" in pages["sv"]
    for page in pages.values():
        assert PERSON not in page and EMAIL not in page
