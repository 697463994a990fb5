"""Staff pages over real HTTP on both databases: the approval queue, and the catalogue —
create, edit (with a stale-version check), opening hours, closures and retirement."""

from __future__ import annotations

from sqlalchemy import select

from events.sql import read_transaction
from projections.bookings import bookings_table
from projections.catalogue import premises_table
from tests.conftest import Api, future_weekday, local
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site, text

__all__ = ["_fresh_limits", "site"]


def _premises(api: Api, premises_id: str) -> object:
    with read_transaction(api.engine) as conn:
        return conn.execute(
            select(premises_table).where(premises_table.c.id == premises_id)
        ).first()


def _status(api: Api, booking_id: str) -> tuple[str, str | None]:
    b = bookings_table
    with read_transaction(api.engine) as conn:
        row = conn.execute(select(b.c.status, b.c.reason).where(b.c.id == booking_id)).one()
    return row.status, row.reason


def test_staff_approve_and_reject_bookings_waiting_for_approval(site: Site, api: Api) -> None:
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(2)
    first = api.book("hall", local(day, 10), local(day, 11), title="Eka").get_json()
    second = api.book("hall", local(day, 12), local(day, 13), title="Toka").get_json()
    assert first["status"] == "pending_approval"
    staff = site.client("staff", lang="en")
    queue = text(staff.get("/staff/requests"))
    assert "Eka" in queue and "Toka" in queue
    approved = post_form(
        staff, f"/staff/bookings/{first['id']}/approve", {}, page="/staff/requests"
    )
    assert approved.status_code == 303
    assert _status(api, first["id"]) == ("confirmed", None)
    # Rejecting needs a reason, shown next to that request's field.
    refused = post_form(
        staff, f"/staff/bookings/{second['id']}/reject", {"reason": ""}, page="/staff/requests"
    )
    assert refused.status_code == 422
    assert f'id="f-reason-{second["id"]}-error"' in text(refused)
    assert _status(api, second["id"]) == ("pending_approval", None)
    rejected = post_form(
        staff,
        f"/staff/bookings/{second['id']}/reject",
        {"reason": "Sali on varattu kunnan käyttöön"},
        page="/staff/requests",
    )
    assert rejected.status_code == 303
    assert _status(api, second["id"]) == ("rejected", "Sali on varattu kunnan käyttöön")
    assert "No bookings are waiting." in text(staff.get("/staff/requests"))


def _new_premises_form(**extra: str) -> dict[str, str]:
    form = {
        "name_fi": "Nuorisotila Kompassi",
        "name_en": "Youth centre Kompassi",
        "address": "Porrassalmenkatu 1, 50100 Mikkeli",
        "district": "Keskusta",
        "capacity": "30",
        "free_of_charge": "1",
        "accessibility": "step_free_access",
        "equipment": "projector, sound system",
        "timezone": "Europe/Helsinki",
        "hours_mon": "08:00-20:00",
        "hours_fri": "18:00-02:00",
        "min_duration_minutes": "30",
        "max_duration_minutes": "240",
        "min_notice_minutes": "60",
        "max_advance_days": "180",
        "buffer_minutes": "0",
        "cancellation_deadline_minutes": "1440",
        "popup_max_duration_minutes": "180",
        "bookable_by": "organisations",
    }
    form.update(extra)
    return form


def test_staff_create_and_edit_premises(site: Site, api: Api) -> None:
    staff = site.client("staff", lang="en")
    created = post_form(
        staff, "/staff/premises/new", _new_premises_form(), page="/staff/premises/new"
    )
    assert created.status_code == 303
    row = _premises(api, "nuorisotila-kompassi")
    assert row is not None
    assert row.capacity == 30 and row.district == "keskusta" and row.free_of_charge
    assert row.opening_hours["fri"] == [["18:00", "02:00"]] and row.opening_hours["sun"] == []
    assert row.equipment == ["projector", "sound_system"]
    edit_page = text(staff.get(created.headers["Location"]))
    assert 'value="30"' in edit_page and 'name="version" value="1"' in edit_page
    changed = post_form(
        staff,
        "/staff/premises/nuorisotila-kompassi",
        _new_premises_form(capacity="35", version="1"),
        page="/staff/premises/nuorisotila-kompassi",
    )
    assert changed.status_code == 303
    assert _premises(api, "nuorisotila-kompassi").capacity == 35
    # A form filled in before someone else saved gets a clear message and changes nothing.
    stale = post_form(
        staff,
        "/staff/premises/nuorisotila-kompassi",
        _new_premises_form(capacity="40", version="1"),
        page="/staff/premises",
    )
    assert stale.status_code == 409 and "Someone else changed these premises" in text(stale)
    assert _premises(api, "nuorisotila-kompassi").capacity == 35


def test_premises_form_errors_are_next_to_the_fields(site: Site, api: Api) -> None:
    staff = site.client("staff")
    bad = _new_premises_form(
        name_fi="", name_en="", capacity="paljon", hours_mon="8-20", timezone="Mars/Olympus"
    )
    response = post_form(staff, "/staff/premises/new", bad, page="/staff/premises/new")
    assert response.status_code == 422
    page = text(response)
    assert 'id="f-name_fi-error"' in page and "Anna nimi vähintään yhdellä kielellä." in page
    assert 'id="f-capacity-error"' in page and 'value="paljon"' in page
    assert 'id="f-hours_mon-error"' in page
    assert 'id="f-timezone-error"' in page
    with read_transaction(api.engine) as conn:
        assert conn.execute(select(premises_table.c.id)).all() == []


def test_closure_over_bookings_needs_consent_then_cancels_them(site: Site, api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 12)).get_json()
    staff = site.client("staff", lang="en")
    closure = {
        "closure_start_date": str(day),
        "closure_start_time": "08:00",
        "closure_end_date": str(day),
        "closure_end_time": "22:00",
        "closure_reason": "Vesivahinko",
    }
    refused = post_form(staff, "/staff/premises/room/closures", closure, page="/staff/premises")
    assert refused.status_code == 422
    assert "There are bookings in this period" in text(refused)
    assert _status(api, booking["id"])[0] == "confirmed"
    closure["cancel_conflicting"] = "1"
    done = post_form(staff, "/staff/premises/room/closures", closure, page="/staff/premises")
    assert done.status_code == 303
    assert "1 booking cancelled." in text(staff.get(done.headers["Location"]))
    assert _status(api, booking["id"]) == ("cancelled", "Vesivahinko")
    # The page says the system's sentence in the reader's language around the staff's words.
    reader = site.client("staff", lang="fi")
    assert "Tila on suljettu: Vesivahinko" in text(reader.get(f"/my/bookings/{booking['id']}"))
    week = text(staff.get(f"/premises/room?week={day}"))
    assert "(closed)" in week


def test_retire_needs_confirmation_and_takes_premises_out_of_the_registry(
    site: Site, api: Api
) -> None:
    api.premises("room", name={"fi": "Vanha kerhohuone"})
    staff = site.client("staff", lang="en")
    unconfirmed = post_form(
        staff, "/staff/premises/room/retire", {"retire_reason": "Purku"}, page="/staff/premises"
    )
    assert unconfirmed.status_code == 422 and "Tick the box to confirm." in text(unconfirmed)
    assert not _premises(api, "room").retired
    done = post_form(
        staff,
        "/staff/premises/room/retire",
        {"retire_reason": "Purku", "retire_confirm": "1"},
        page="/staff/premises",
    )
    assert done.status_code == 303
    assert _premises(api, "room").retired
    assert "Vanha kerhohuone" not in text(staff.get("/registry"))
    assert "retired" in text(staff.get("/staff/premises"))


def test_retire_over_bookings_still_to_come_needs_consent_then_cancels_them(
    site: Site, api: Api
) -> None:
    """Issue 14.9 on the page: the bookings in the way are named, nothing changes until the
    box is ticked, then they are cancelled with the staff's reason."""
    api.premises("room")
    day = future_weekday(2)
    booking = api.book("room", local(day, 10), local(day, 12)).get_json()
    staff = site.client("staff", lang="en")
    form = {"retire_reason": "Purku", "retire_confirm": "1"}
    refused = post_form(staff, "/staff/premises/room/retire", form, page="/staff/premises")
    assert refused.status_code == 422
    page = text(refused)
    assert "These premises have bookings still to come" in page
    assert "10:00" in page
    assert not _premises(api, "room").retired
    assert _status(api, booking["id"])[0] == "confirmed"
    form["retire_cancel_conflicting"] = "1"
    done = post_form(staff, "/staff/premises/room/retire", form, page="/staff/premises")
    assert done.status_code == 303
    assert "1 booking cancelled." in text(staff.get(done.headers["Location"]))
    assert _premises(api, "room").retired
    assert _status(api, booking["id"]) == ("cancelled", "Purku")


def test_staff_give_premises_their_spaces_on_the_form(site: Site, api: Api) -> None:
    """A gym and its halves made on the form; the edit form shows and changes the spaces."""
    staff = site.client("staff", lang="en")
    for premises_id, spaces in (
        ("sali", "sali-ita, sali-lansi"),
        ("sali-ita", "sali-ita"),
        ("puoli", ""),  # empty on a new premises: one space of its own
    ):
        created = post_form(
            staff,
            "/staff/premises/new",
            _new_premises_form(id=premises_id, spaces=spaces),
            page="/staff/premises/new",
        )
        assert created.status_code == 303, text(created)[:3000]
    assert _premises(api, "sali").spaces == ["sali-ita", "sali-lansi"]
    assert _premises(api, "sali-ita").spaces == ["sali-ita"]
    assert _premises(api, "puoli").spaces == ["puoli"]
    page = text(staff.get("/staff/premises/sali"))
    assert 'name="spaces" type="text" value="sali-ita, sali-lansi"' in page
    # The same floor in another order is no change; a new name creates a space.
    same = post_form(
        staff,
        "/staff/premises/sali",
        _new_premises_form(spaces="sali-lansi, sali-ita", version="1"),
        page="/staff/premises/sali",
    )
    assert same.status_code == 303
    assert "Nothing was changed." in text(staff.get(same.headers["Location"]))
    moved = post_form(
        staff,
        "/staff/premises/puoli",
        _new_premises_form(spaces="sali-lansi", version="1"),
        page="/staff/premises/puoli",
    )
    assert moved.status_code == 303
    assert _premises(api, "puoli").spaces == ["sali-lansi"]


def test_spaces_that_would_collide_are_409_naming_the_bookings(site: Site, api: Api) -> None:
    api.premises("sali", name={"fi": "Koulun sali", "en": "School gym"}, spaces=["sali"])
    api.premises("varasto", name={"fi": "Varasto", "en": "Store"})
    day = future_weekday(2)
    assert api.book("sali", local(day, 10), local(day, 12)).status_code == 201
    assert api.book("varasto", local(day, 11), local(day, 13)).status_code == 201
    for lang, said in (
        ("en", "bookings of these premises would overlap what other premises hold"),
        ("fi", "tämän tilan varaukset menisivät päällekkäin"),
        ("sv", "skulle denna lokals bokningar överlappa"),
    ):
        staff = site.client("staff", lang=lang)
        refused = post_form(
            staff,
            "/staff/premises/varasto",
            _new_premises_form(spaces="sali", version="1"),
            page="/staff/premises/varasto",
        )
        assert refused.status_code == 409
        page = text(refused)
        assert said in page, page
        assert 'id="f-spaces-error"' in page and 'aria-invalid="true"' in page
        assert "10:00–12:00" in page
        assert ("School gym" if lang == "en" else "Koulun sali") in page
        assert 'href="#f-spaces"' in page  # the error summary links to the field
    assert _premises(api, "varasto").spaces == ["varasto"]


def test_bad_spaces_on_the_form_are_422_next_to_the_field(site: Site, api: Api) -> None:
    api.premises("sali")
    staff = site.client("staff", lang="en")
    for spaces, said in (
        ("", "Name at least one space."),
        (" , ", "Name at least one space."),
        ("a, b, a", "Name each space once: a."),
        (", ".join(f"osa-{n}" for n in range(21)), "Name at most 20 spaces."),
        ("x" * 101, "A space's name is at most 100 characters."),
    ):
        refused = post_form(
            staff,
            "/staff/premises/sali",
            _new_premises_form(spaces=spaces, version="1"),
            page="/staff/premises/sali",
        )
        assert refused.status_code == 422, spaces
        page = text(refused)
        assert said in page.replace("&#39;", "'"), said
        assert 'id="f-spaces-error"' in page
    assert _premises(api, "sali").spaces == ["sali"]
    new = post_form(
        staff,
        "/staff/premises/new",
        _new_premises_form(id="uusi", spaces="a, a"),
        page="/staff/premises/new",
    )
    assert new.status_code == 422 and "Name each space once: a." in text(new)
