"""The statistics page's allocation round section in a real Chromium with axe, in Finnish,
Swedish and English: a round is opened, applied for, proposed and published through the
API, then the analyst reads its hours (issue 16.5). Screenshot:
test-artifacts/screenshots/stats-allocation.png."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from booking import accounts
from events.sql import write_transaction
from tests.browser.conftest import Site, axe_violations, screenshot, sign_in
from tests.conftest import TEST_NOW

CLOSE = TEST_NOW + timedelta(days=2)


def _publish_a_round(page: Any, site: Site, clock: Any) -> str:
    with write_transaction(site.engine) as conn:
        staff = accounts.user_id_by_email(conn, site.emails["staff"])
        token = accounts.issue_token(conn, str(staff))
        organisations = [
            accounts.create_organisation(conn, name, kind, None, None)
            for name, kind in (
                ("Salibandyseura Ilves ry", "association"),
                ("Juniorikoripallo ry", "association"),
                ("Lentopalloseura Isku ry", "association"),
                ("Kuntosali Voima Oy", "company"),
                ("Eläkeläisten liikunta ry", "association"),
                ("Sulkapalloseura ry", "association"),
            )
        ]
    headers = {"Authorization": f"Bearer {token}"}

    def post(path: str, body: Any = None) -> Any:
        response = page.request.post(f"{site.url}{path}", data=body, headers=headers)
        assert response.status < 300, (path, response.text())
        return response.json() if response.text() else None

    round_ = post(
        "/api/v1/allocation-rounds",
        {
            "name": {"fi": "Kevätkausi 2027", "sv": "Vårsäsongen 2027", "en": "Spring 2027"},
            "season_start": "2027-01-11",
            "season_end": "2027-02-28",
            "applications_open": (TEST_NOW - timedelta(hours=1)).isoformat(),
            "applications_close": CLOSE.isoformat(),
            "premises": ["koulu-sali", "nuorisotalo-sali"],
            "criteria": [{"key": "age_group"}],
            "confirm_days": 7,
        },
    )
    for n, organisation_id in enumerate(organisations):
        post(
            f"/api/v1/allocation-rounds/{round_['id']}/applications",
            {
                "organisation_id": organisation_id,
                "purpose": "Salibandy",
                "age_group": "7-14" if n < 3 else "20-64",
                "group_size": 10,
                "terms_accepted": True,
                "sections": [
                    {
                        "name": "Harjoitus",
                        "slots_per_week": 2,
                        "duration_minutes": 90,
                        "premises": ["koulu-sali", "nuorisotalo-sali"],
                        "times": [
                            {"weekday": day, "from": "17:00", "to": "18:30", "priority": "primary"}
                            for day in ("mon", "tue", "wed")
                        ],
                    }
                ],
            },
        )
    clock.move_to(CLOSE + timedelta(minutes=1))
    post(f"/api/v1/allocation-rounds/{round_['id']}/proposal")
    post(f"/api/v1/allocation-rounds/{round_['id']}/publish")
    return str(round_["id"])


def test_allocation_hours_on_the_stats_page_pass_axe(
    page: Any, site: Site, axe_source: str, clock: Any
) -> None:
    round_id = _publish_a_round(page, site, clock)
    sign_in(page, site, "analyst")
    found = {}
    for lang, heading in (
        ("fi", "Ikäryhmittäin"),
        ("sv", "Per åldersgrupp"),
        ("en", "By age group"),
    ):
        page.goto(f"{site.url}/stats?round={round_id}&lang={lang}")
        assert page.locator("#allocation-age_group-title").inner_text() == heading
        assert page.locator("#chart-allocation-title").count() == 1
        found[lang] = axe_violations(page, axe_source)
    screenshot(page, "stats-allocation")
    rows = page.locator("#allocation-age_group-title + div tbody tr")
    assert rows.count() == 2 and "Not shown" not in rows.nth(0).inner_text()
    # One company: no figure of its own, nor of the associations (that would give it away).
    types = page.locator("#allocation-organisation_type-title + div tbody").inner_text()
    assert types.count("Not shown") == 2
    assert {k: v for k, v in found.items() if v} == {}
