"""The allocation rounds' pages through the Flask test client, on both databases: the public
rounds, the application form (round trips, field errors, values kept), "my applications"
with offers to answer, the staff round page from proposal to publication, and who may see
what (residents no staff pages, bookers only their own organisation's)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import HELSINKI, TEST_NOW
from tests.integration.test_allocation_api import CLOSE, EVENINGS, application, round_body
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]


@pytest.fixture
def round_id(site: Site) -> str:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    for pid, name in (("gym", "Koulun sali"), ("hall", "Nuorisotalon sali")):
        site.api.premises(
            pid, name={"fi": name, "en": name}, opening_hours=EVENINGS, rules=rules, capacity=60
        )
    created = site.api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["id"])


def form_of(page: str) -> dict[str, str]:
    """The values a browser would send back from the page's application form."""
    found: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', page):
        if name != "csrf_token":
            found[name] = value
    return found


def good_form(**overrides: str) -> dict[str, str]:
    data = {
        "sections": "1",
        "purpose": "Juniorisalibandy",
        "age_group": "7-14",
        "group_size": "20",
        "terms_accepted": "1",
        "s0-times": "2",
        "s0-name": "P10",
        "s0-slots": "1",
        "s0-duration": "90",
        "s0-p0": "gym",
        "s0-p1": "hall",
        "s0-t0-day": "mon",
        "s0-t0-from": "17:00",
        "s0-t0-to": "18:30",
        "s0-t0-priority": "primary",
        "action": "submit",
    }
    data.update(overrides)
    return data


def test_the_rounds_are_public_with_their_criteria_in_words(site: Site, round_id: str) -> None:
    anyone = site.client(lang="en")
    listed = text(anyone.get("/rounds"))
    assert "Spring season 2027" in listed and "Open for applications" in listed
    page = anyone.get(f"/rounds/{round_id}")
    assert page.status_code == 200
    body = text(page)
    assert "Age of the group: 0–6 years, 7–14 years, 15–19 years" in body
    assert "Koulun sali" in body and "Sign in to apply" in body
    assert "open for applications" in body
    finnish = text(site.client(lang="fi").get(f"/rounds/{round_id}"))
    assert "Ryhmän ikä" in finnish
    swedish = text(site.client(lang="sv").get("/rounds"))
    assert "Kevätkausi 2027" in swedish  # no Swedish name: the Finnish one
    assert "Öppen för ansökningar" in swedish
    assert anyone.get("/rounds/no-such-round").status_code == 404


def test_a_booker_applies_through_the_form(site: Site, round_id: str) -> None:
    booker = site.client("booker", lang="en")
    path = f"/rounds/{round_id}/apply"
    page = text(booker.get(path))
    assert "Section 1" in page and "Section 2" not in page
    # Without JavaScript: "add another section" is a round trip that keeps what was typed.
    more = post_form(booker, path, good_form(action="add_section"), page=path)
    assert more.status_code == 200
    again = text(more)
    assert "Section 2" in again and 'value="Juniorisalibandy"' in again
    assert form_of(again)["s0-name"] == "P10" and form_of(again)["sections"] == "2"
    timed = text(post_form(booker, path, good_form(action="add_time-0"), page=path))
    assert "Time window 3" in timed
    for hostile in ("add_time-x", "remove_section-99", "remove_section-", "nonsense"):
        same = post_form(booker, path, good_form(action=hostile, sections="x"), page=path)
        assert same.status_code == 200 and "Section 1" in text(same), hostile
    two = good_form(action="remove_section-0", sections="2", **{"s1-name": "P12"})
    removed = form_of(text(post_form(booker, path, two, page=path)))
    assert removed["sections"] == "1" and removed["s0-name"] == "P12"

    # Errors from the page and from the use case, next to their fields, values kept.
    bad = post_form(
        booker,
        path,
        good_form(
            terms_accepted="", **{"s0-t0-from": "22:00", "s0-t0-to": "23:30", "s0-slots": "9"}
        ),
        page=path,
    )
    assert bad.status_code == 422
    wrong = text(bad)
    assert 'id="f-s0-slots-error"' in wrong and "from 1 to 7" in wrong
    assert 'id="f-terms_accepted-error"' in wrong and "Accept the round" in wrong
    # The form is whole; the use case refuses times no wished premises is open for.
    fixed = post_form(
        booker, path, good_form(**{"s0-t0-from": "22:00", "s0-t0-to": "23:30"}), page=path
    )
    assert fixed.status_code == 422
    refused = text(fixed)
    assert 'id="f-s0-times-error"' in refused and "is open for 90 minutes" in refused
    assert 'value="22:00"' in refused and 'value="Juniorisalibandy"' in refused

    sent = post_form(booker, path, good_form(), page=path)
    assert sent.status_code == 303, re.findall(r"error-summary.*?</div>", text(sent), re.S)
    mine = text(booker.get("/my/applications"))
    assert "Juniorisalibandy" in mine and "submitted" in mine and "P10" in mine
    edit = re.search(r'href="(/my/applications/[^"]+/edit)"', mine)
    assert edit
    form = text(booker.get(edit[1]))
    values = form_of(form)
    assert values["s0-name"] == "P10" and values["version"] == "1"
    values.update({"group_size": "25", "action": "submit", "s0-p0": "gym", "s0-p1": "hall"})
    values.update({"age_group": "7-14", "s0-t0-day": "mon", "s0-t0-priority": "primary"})
    changed = post_form(booker, edit[1], values, page=edit[1])
    assert changed.status_code == 303, text(changed)[:3000]
    stale = post_form(booker, edit[1], values, page=edit[1])
    assert stale.status_code == 409 and "changed this application meanwhile" in text(stale)
    application_id = edit[1].split("/")[3]
    listed = site.api.get(f"/api/v1/applications/{application_id}", role="staff").get_json()
    assert listed["group_size"] == 25 and listed["sections"][0]["premises"] == ["gym", "hall"]

    withdrawn = post_form(
        booker,
        f"/my/applications/{application_id}/withdraw",
        {"version": "2"},
        page="/my/applications",
    )
    assert withdrawn.status_code == 303
    assert "withdrawn" in text(booker.get("/my/applications"))
    assert booker.get(edit[1]).status_code == 303  # nothing to change any more


def test_who_sees_what(site: Site, round_id: str) -> None:
    theirs = site.api.post(
        f"/api/v1/allocation-rounds/{round_id}/applications", application(), role="booker"
    ).get_json()["id"]
    # Another organisation's booker sees none of it and may not touch it.
    other = site.client("other_booker", lang="en")
    assert "Juniorisalibandy" not in text(other.get("/my/applications"))
    assert other.get(f"/my/applications/{theirs}/edit").status_code == 403
    refused = post_form(other, f"/my/applications/{theirs}/withdraw", {}, page="/my/applications")
    assert refused.status_code == 403
    assert other.get("/staff/rounds").status_code == 403
    assert other.get(f"/staff/rounds/{round_id}").status_code == 403
    # Residents: no applications, no staff pages.
    resident = site.client("resident", lang="en")
    for path in ("/staff/rounds", f"/staff/rounds/{round_id}", "/staff/rounds/new"):
        assert resident.get(path).status_code == 403, path
    assert resident.get("/my/applications").status_code == 403
    assert resident.get(f"/rounds/{round_id}/apply").status_code == 403
    assert "Ask to join your association" in text(resident.get(f"/rounds/{round_id}"))
    # Signed out: to the sign-in page.
    anonymous = site.client()
    assert anonymous.get(f"/staff/rounds/{round_id}").status_code == 302
    assert anonymous.get("/my/applications").status_code == 302
    # Before publication the proposal is staff's: no offers show to the booker.
    owner = site.client("booker", lang="en")
    assert "Offers" not in text(owner.get("/my/applications"))


def test_staff_create_a_round_from_the_form(site: Site, round_id: str) -> None:
    staff = site.client("staff", lang="en")
    path = "/staff/rounds/new"
    assert "Priority order" in text(staff.get(path))
    empty = post_form(staff, path, {"confirm_days": "14"}, page=path)
    assert empty.status_code == 422
    assert "Give a name in at least one language." in text(empty)
    assert "Choose at least one premises." in text(empty)
    data = {
        "name_fi": "Syyskausi 2027",
        "name_en": "Autumn season 2027",
        "season_start": "2027-08-16",
        "season_end": "2027-12-19",
        "opens_date": "2027-03-01",
        "opens_time": "09:00",
        "closes_date": "2027-02-01",
        "closes_time": "16:00",
        "premises": ["gym", "hall"],
        "criterion_0": "age_group",
        "criterion_1": "purpose",
        "criterion_1_in": "juniori, lapset",
        "confirm_days": "10",
    }
    backwards = post_form(staff, path, data, page=path)
    assert backwards.status_code == 422
    assert "Applications close after they open." in text(backwards)
    made = post_form(staff, path, {**data, "closes_date": "2027-04-01"}, page=path)
    assert made.status_code == 303
    page = text(staff.get(made.headers["Location"]))
    assert "Autumn season 2027" in page and "upcoming" in page
    rounds = site.api.get("/api/v1/allocation-rounds").get_json()["allocation_rounds"]
    autumn = next(r for r in rounds if r["name"].get("en") == "Autumn season 2027")
    assert autumn["criteria"] == [
        {"key": "age_group"},
        {"key": "purpose", "in": ["juniori", "lapset"]},
    ]
    assert autumn["applications_open"] == "2027-03-01T07:00:00Z"  # 09:00 in Helsinki
    assert "Autumn season 2027" in text(staff.get("/staff/rounds"))


def test_staff_run_the_round_and_bookers_answer_the_offers(
    site: Site, round_id: str, clock: Any
) -> None:
    rid = round_id
    apply = f"/api/v1/allocation-rounds/{rid}/applications"
    mine = site.api.post(apply, application(), role="booker").get_json()["id"]
    other_token = site.api.user("booker", site.api.other_organisation_id)
    adults = application(age_group="20-64", purpose="Kuntosalibandy")
    theirs = site.api.client.post(
        apply, json=adults, headers={"Authorization": f"Bearer {other_token}"}
    ).get_json()["id"]
    site.user_id("other_booker")
    # A third club wants only the first club's Monday evening at the gym, and is adults.
    third = site.api.organisation("Mikkelin Kuntoilijat ry")
    only_gym = {**application()["sections"][0], "name": "Kuntopiiri", "premises": ["gym"]}
    left_out = application(
        organisation_id=third, age_group="65+", purpose="Kuntopiiri", sections=[only_gym]
    )
    assert site.api.post(apply, left_out, role="staff").status_code == 201
    clock.move_to(CLOSE + timedelta(minutes=1))
    closed = site.client("booker", lang="en").get(f"/rounds/{rid}/apply", follow_redirects=True)
    assert "Applications are not taken now: the round is being allocated." in text(closed)

    staff = site.client("staff", lang="en")
    page_path = f"/staff/rounds/{rid}"
    page = text(staff.get(page_path))
    assert "being allocated" in page and "Kuntosalibandy" in page and "Make a proposal" in page
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    stale = post_form(staff, f"{page_path}/proposal", {"version": "99"}, page=page_path)
    assert stale.status_code == 409 and "changed meanwhile" in text(stale)
    made = post_form(staff, f"{page_path}/proposal", {"version": version[1]}, page=page_path)
    assert made.status_code == 303
    page = text(staff.get(page_path))
    assert 'class="alloc-grid"' in page and "Koulun sali" in page
    assert re.search(r"<th scope=\"row\">17:00</th>", page)
    assert "Mikkelin Shakkikerho ry" in page and "P10" in page
    # Why the third club got nothing, naming what holds its wished time, in words.
    assert (
        "Its wished times are taken by P10 (priority group 1) at Koulun sali Monday 17:00–18:30."
        in page
    )
    finnish = text(site.client("staff", lang="fi").get(page_path))
    assert "Toivotut ajat on annettu: P10 (etusijaryhmä 1): Koulun sali maanantai 17:00–18:30." in (
        finnish
    )
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version

    def add(**fields: str) -> Any:
        body = {
            "version": version[1],
            "section": f"{mine}::P10",
            "premises_id": "gym",
            "weekday": "wed",
            "start_time": "18:00",
            "end_time": "19:30",
            **fields,
        }
        return post_form(staff, f"{page_path}/allocations", body, page=page_path)

    soft = add()
    assert soft.status_code == 422
    said = text(soft)
    assert 'id="f-override_reason-error"' in said and "Give a reason to override." in said
    assert "The time is outside the section" in said
    taken = add(premises_id="hall", weekday="mon", start_time="17:30", end_time="19:00")
    assert taken.status_code == 409 and "The time is taken by" in text(taken)
    closed = add(weekday="sat", start_time="10:00", end_time="11:30", override_reason="x")
    assert closed.status_code == 409 and "is not open" in text(closed)
    added = add(override_reason="Seura pyysi toisen vuoron.")
    assert added.status_code == 303
    page = text(staff.get(page_path))
    assert "Seura pyysi toisen vuoron." in page and "outside the wishes" in page
    extra = re.search(r'action="(/staff/rounds/[^"]+/allocations/[^"]+/remove)"', page)
    assert extra
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    ids = re.findall(r'<tr id="alloc-([^"]+)">', page)
    assert len(ids) == 3
    added_id = next(
        i
        for i in ids
        if site.api.get(f"/api/v1/allocations/{i}", role="staff").get_json()["priority"]
        == "outside_wishes"
    )
    removed = post_form(
        staff,
        f"{page_path}/allocations/{added_id}/remove",
        {"version": version[1]},
        page=page_path,
    )
    assert removed.status_code == 303
    assert len(re.findall(r'<tr id="alloc-', text(staff.get(page_path)))) == 2

    # The series preview names the Monday a booking already holds.
    site.api.book(
        "gym",
        datetime(2027, 1, 18, 17, 0, tzinfo=HELSINKI),
        datetime(2027, 1, 18, 18, 0, tzinfo=HELSINKI),
    )
    preview = text(staff.get(f"{page_path}?preview=series"))
    assert "Dates skipped" in preview and "6 bookings" in preview and "18, 2027" in preview

    page = text(staff.get(page_path))
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    published = post_form(staff, f"{page_path}/publish", {"version": version[1]}, page=page_path)
    assert published.status_code == 303
    public = text(site.client(lang="en").get(f"/rounds/{rid}"))
    assert f"/api/v1/allocation-rounds/{rid}/result?format=csv" in public
    assert site.api.get(f"/api/v1/allocation-rounds/{rid}/result?format=csv").status_code == 200
    published_page = text(staff.get(page_path))
    assert "published" in published_page and "Accept on their behalf" in published_page

    booker = site.client("booker", lang="en")
    offers = text(booker.get("/my/applications"))
    assert "offered, waiting for your answer" in offers
    # confirm_by (7 days after publication) in local time, with the zone.
    confirm_by = (CLOSE + timedelta(minutes=1, days=7)).astimezone(HELSINKI)
    assert f"{confirm_by:%H:%M}" in offers and "Europe/Helsinki (UTC+02:00)" in offers
    assert "Kuntosalibandy" not in offers
    offer = re.search(r'action="/my/offers/([^/"]+)/accept"', offers)
    assert offer
    other = site.client("other_booker", lang="en")
    assert (
        post_form(other, f"/my/offers/{offer[1]}/accept", {}, page="/my/applications").status_code
        == 403
    )
    accepted = post_form(booker, f"/my/offers/{offer[1]}/accept", {}, page="/my/applications")
    assert accepted.status_code == 303
    after = text(booker.get("/my/applications"))
    assert "6 weekly bookings made" in after and "1 date could not be booked" in after
    series_id = site.api.get(f"/api/v1/allocations/{offer[1]}", role="staff").get_json()[
        "series_id"
    ]
    assert series_id and series_id in after
    twice = post_form(booker, f"/my/offers/{offer[1]}/accept", {}, page="/my/applications")
    assert twice.status_code == 409 and "accepted already" in text(twice)

    theirs_page = text(other.get("/my/applications"))
    their_offer = re.search(r'action="/my/offers/([^/"]+)/decline"', theirs_page)
    assert their_offer and theirs in theirs_page
    declined = post_form(
        other,
        f"/my/offers/{their_offer[1]}/decline",
        {"reason": "Emme tarvitse"},
        page="/my/applications",
    )
    assert declined.status_code == 303
    assert "declined" in text(other.get("/my/applications"))
    # Staff answer on an organisation's behalf; nothing is left to answer here.
    on_behalf = post_form(
        staff,
        f"{page_path}/offers/{their_offer[1]}/accept",
        {"version": "999"},
        page=page_path,
    )
    assert on_behalf.status_code == 409 and "changed meanwhile" in text(on_behalf)
    answered = text(staff.get(page_path))
    assert "Accept on their behalf" not in answered and f"Series {series_id}" in answered
    finnish = text(site.client("booker", lang="fi").get("/my/applications"))
    assert "hyväksytty" in finnish
    assert TEST_NOW < CLOSE
