"""A round's e-mails in each recipient's language, found through the outbox, on both
databases (issue 16.4): application received, the offer per organisation with `confirm_by`
in local time and the reasons for what was not allocated, the reminder a day before
`confirm_by` (once per offer, whatever the number of runs and schedulers, at the clock's
time), the decline confirmation and the lapse notice. No mail names a person."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from booking import accounts
from booking.scheduler import jobs_for
from events.sql import read_transaction, write_transaction
from tests.conftest import HELSINKI, TEST_NOW, Api
from tests.integration.test_allocation_api import CLOSE, EVENINGS, application, round_body

NAMES = {"fi": "Koulun sali", "sv": "Skolans sal", "en": "School gym"}
HALL = {"fi": "Liikuntahalli", "sv": "Idrottshallen", "en": "Sports hall"}


def _person(api: Api, language: str, organisation_id: str) -> tuple[str, str]:
    """(token, user id) of a booker of the organisation who reads `language`."""
    with write_transaction(api.engine) as conn:
        created = accounts.create_user(
            conn,
            email=f"hakija-{language}@example.fi",
            name=f"Hakija Henkilö {language.upper()}",
            role="booker",
            organisation_id=organisation_id,
            language=language,
            vault=api.app.extensions["tilavaraus"].vault,
        )
    return created.token, created.user_id


def _mails(api: Api) -> list[Any]:
    from booking.outbox import outbox

    with read_transaction(api.engine) as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)).all())


def _to(api: Api, user_id: str, like: str = "") -> list[Any]:
    return [m for m in _mails(api) if m.recipient_id == user_id and like in m.subject]


def _post(api: Api, token: str, path: str, body: Any = None) -> Any:
    return api.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def _section(name: str, premises: list[str], weekday: str, start: str, end: str) -> dict[str, Any]:
    return {
        "name": name,
        "slots_per_week": 1,
        "duration_minutes": 90,
        "premises": premises,
        "times": [{"weekday": weekday, "from": start, "to": end, "priority": "primary"}],
    }


def test_round_mails_speak_each_recipients_language(api: Api, clock: Any) -> None:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", name=NAMES, opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", name=HALL, opening_hours=EVENINGS, rules=rules, capacity=60)
    created = api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    third = api.organisation("Tanssiseura Tahti ry")
    fi_token, fi_id = _person(api, "fi", api.organisation_id)
    sv_token, sv_id = _person(api, "sv", api.other_organisation_id)
    en_token, en_id = _person(api, "en", third)
    path = f"/api/v1/allocation-rounds/{rid}/applications"

    # The juniors (tier 1) want Monday and Wednesday; the adults want the same Monday; the
    # dancers want Tuesday in the hall.
    juniors = application(
        sections=[
            _section("P10", ["gym"], "mon", "17:00", "18:30"),
            _section("P12", ["gym"], "wed", "17:00", "18:30"),
        ]
    )
    assert _post(api, fi_token, path, juniors).status_code == 201
    adults = application(
        age_group="20-64",
        purpose="Kuntosalibandy",
        sections=[_section("Aikuiset", ["gym"], "mon", "17:00", "18:30")],
    )
    assert _post(api, sv_token, path, adults).status_code == 201
    dancers = application(
        age_group="20-64",
        purpose="Paritanssi",
        sections=[_section("Dance", ["hall"], "tue", "18:00", "19:30")],
    )
    assert _post(api, en_token, path, dancers).status_code == 201

    received = {who: _to(api, who) for who in (fi_id, sv_id, en_id)}
    assert [m.subject for m in received[fi_id]] == ["Hakemus vastaanotettu: Kevätkausi 2027"]
    assert [m.subject for m in received[sv_id]] == ["Ansökan mottagen: Kevätkausi 2027"]
    assert [m.subject for m in received[en_id]] == ["Application received: Spring season 2027"]
    # Each section with the premises and the local times it wishes (API.md: every e-mail).
    assert (
        "P12: 1 × 90 min viikossa — Koulun sali; keskiviikko 17.00–18.30" in received[fi_id][0].body
    )
    assert "Dance: 1 × 90 min a week — Sports hall; Tuesday 18:00–19:30" in received[en_id][0].body
    assert "Kalevankankaan Kyläyhdistys ry" in received[sv_id][0].body

    # Applications close, staff propose and publish.
    clock.move_to(CLOSE + timedelta(minutes=1))
    proposal = api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff").get_json()
    assert len(proposal["allocations"]) == 3
    assert [u["reason_code"] for u in proposal["unallocated"]] == ["taken"]
    published = api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff")
    assert published.status_code == 200, published.get_json()
    confirm_by = datetime.fromisoformat(published.get_json()["confirm_by"])
    local_deadline = confirm_by.astimezone(HELSINKI)

    (fi_offer,) = _to(api, fi_id, "Viikkovuoroja tarjolla")
    assert "maanantai 17.00–18.30" in fi_offer.body and "keskiviikko 17.00–18.30" in fi_offer.body
    assert "Koulun sali" in fi_offer.body
    assert f"klo {local_deadline:%H.%M} (Europe/Helsinki)" in fi_offer.body
    assert f"{local_deadline.day}.{local_deadline.month}.{local_deadline.year}" in fi_offer.body
    assert "11.1.2027–28.2.2027" in fi_offer.body

    (sv_none,) = _to(api, sv_id, "Fördelningen publicerad")
    assert "Aikuiset, 1 av 1 i veckan:" in sv_none.body
    # The reason in Swedish, naming who holds the wished time and when.
    assert "Mikkelin Shakkikerho ry (P10), Skolans sal, måndag 17.00–18.30" in sv_none.body
    assert "upptagna av" in sv_none.body

    (en_offer,) = _to(api, en_id, "Weekly slots offered")
    assert "Dance — Sports hall, Tuesday 18:00–19:30" in en_offer.body
    assert f"{local_deadline:%H:%M} (Europe/Helsinki)" in en_offer.body
    assert "Not allocated" not in en_offer.body

    offers = {o["section"]: o for o in published.get_json()["offers"]}

    # The juniors accept Monday and decline Wednesday with their own words.
    assert (
        _post(api, fi_token, f"/api/v1/allocations/{offers['P10']['id']}/accept").status_code == 200
    )
    declined = _post(
        api,
        fi_token,
        f"/api/v1/allocations/{offers['P12']['id']}/decline",
        {"reason": "Valmentaja ei pääse keskiviikkoisin."},
    )
    assert declined.status_code == 200, declined.get_json()
    (decline_mail,) = _to(api, fi_id, "Tarjous hylätty")
    assert "Valmentaja ei pääse keskiviikkoisin." in decline_mail.body
    assert "P12 — Koulun sali, keskiviikko 17.00–18.30" in decline_mail.body

    # The reminder: not yet 25 hours before confirm_by, then once a day before it, at the
    # clock's time (the job reads the clock seam), for the unanswered offer only.
    jobs = jobs_for(api.app)
    clock.move_to(confirm_by - timedelta(hours=25))
    assert jobs.remind_offers() == 0
    clock.move_to(confirm_by - timedelta(hours=23))
    assert jobs.remind_offers() == 1
    assert jobs.remind_offers() == 1  # due again, but the outbox keeps one
    others = [jobs_for(api.app) for _ in range(3)]
    threads = [threading.Thread(target=j.remind_offers) for j in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (reminder,) = _to(api, en_id, "Reminder")
    assert reminder.subject == f"Reminder: answer the offer by {_en_deadline(local_deadline)}"
    assert "Dance — Sports hall, Tuesday 18:00–19:30" in reminder.body
    assert _to(api, fi_id, "Muistutus") == []  # answered offers are not reminded of

    # The dancers' offer lapses by itself; they are told in English.
    clock.move_to(confirm_by + timedelta(minutes=1))
    assert jobs.lapse_offers() == 1
    (lapsed,) = _to(api, en_id, "Offer lapsed")
    assert "was not answered by" in lapsed.body and "Sports hall, Tuesday" in lapsed.body
    assert jobs.remind_offers() == 0

    # No mail names a person or carries an address.
    for mail in _mails(api):
        text = mail.subject + mail.body
        assert "Henkilö" not in text and "@" not in text, text


def _en_deadline(local: datetime) -> str:
    return f"{local:%a} {local.day} {local:%b %Y} {local:%H:%M} (Europe/Helsinki)"


def test_staff_applying_on_behalf_tells_the_organisations_members(api: Api) -> None:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", name=NAMES, opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", name=HALL, opening_hours=EVENINGS, rules=rules, capacity=60)
    rid = api.post("/api/v1/allocation-rounds", round_body(), role="staff").get_json()["id"]
    _, sv_id = _person(api, "sv", api.other_organisation_id)
    body = application(organisation_id=api.other_organisation_id)
    made = api.post(f"/api/v1/allocation-rounds/{rid}/applications", body, role="staff")
    assert made.status_code == 201, made.get_json()
    assert [m.subject for m in _to(api, sv_id)] == ["Ansökan mottagen: Kevätkausi 2027"]
    staff_mails = [m for m in _mails(api) if m.recipient_id not in (sv_id,)]
    assert staff_mails == []
    assert TEST_NOW < CLOSE
