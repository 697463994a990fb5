"""Public pages over real HTTP on both databases: search, premises and week view, registry
(page and CSV), languages, error pages and the browser security headers."""

from __future__ import annotations

import csv
import io

from booking.clock import system_clock
from projections.runner import catch_up
from tests.conftest import Api, future_weekday, local
from tests.integration.test_pages_helpers import Site, _fresh_limits, site, text

__all__ = ["_fresh_limits", "site"]


def test_front_page_is_finnish_by_default_and_english_on_request(site: Site) -> None:
    client = site.client()
    page = text(client.get("/"))
    assert '<html lang="fi">' in page
    assert "Etsi tila" in page
    english = text(client.get("/?lang=en"))
    assert '<html lang="en">' in english and "Find a space" in english
    # The choice is remembered for the next page without ?lang.
    assert '<html lang="en">' in text(client.get("/premises"))
    assert '<html lang="fi">' in text(client.get("/premises?lang=fi"))


def test_search_finds_free_premises_and_leaves_out_busy_ones(site: Site, api: Api) -> None:
    api.premises("room-a", name={"fi": "Huone A", "en": "Room A"})
    api.premises("room-b", name={"fi": "Huone B", "en": "Room B"}, capacity=40)
    day = future_weekday(1)
    assert api.book("room-a", local(day, 18), local(day, 20)).status_code == 201
    page = text(site.client().get(f"/?date={day}&start=18:00&end=19:00&lang=en"))
    assert "Room B" in page and "Room A" not in page
    assert "1 space free" in page
    assert "Europe/Helsinki" in page
    bigger = text(site.client().get(f"/?date={day}&start=10:00&end=11:00&min_capacity=20"))
    assert "Huone B" in bigger and "Huone A" not in bigger


def test_search_errors_are_next_to_the_field_in_the_readers_language(site: Site) -> None:
    page = text(site.client().get("/?date=2027-13-45&start=25:99&end=&lang=fi"))
    assert 'id="f-date-error"' in page and 'aria-invalid="true"' in page
    assert "Anna päivämäärä muodossa" in page  # Finnish, next to the date field
    assert 'value="2027-13-45"' in page  # what was typed stays
    assert 'href="#f-date"' in page  # the error summary links to the field
    english = text(site.client().get("/?date=2027-13-45&start=10:00&end=11:00&lang=en"))
    assert "Give the date as YYYY-MM-DD" in english


def test_premises_page_has_an_accessible_week_grid_with_bookable_free_hours(
    site: Site, api: Api
) -> None:
    api.premises("library-room-2")
    day = future_weekday(2)
    assert (
        api.book("library-room-2", local(day, 10), local(day, 12), public=True).status_code == 201
    )
    page = text(site.client().get(f"/premises/library-room-2?week={day}&lang=en"))
    assert "<caption" in page and '<th scope="col">' in page and '<th scope="row">' in page
    # A free hour is a real link to the booking form with the slot filled in.
    assert (
        f"/bookings/new?premises_id=library-room-2&amp;date={day}&amp;start=14:00&amp;end=15:00"
        in page
    )
    assert f"date={day}&amp;start=10:00" not in page  # booked: no link
    # The text alternative lists the same facts, public titles included.
    assert 'id="week-text"' in page
    assert "10:00–12:00 (Kerhoilta)" in page
    assert "Europe/Helsinki (UTC+02:00)" in page


def test_held_time_is_provisionally_reserved_in_the_week_as_text(site: Site, api: Api) -> None:
    """A hold (a booking waiting for approval, a pop-up request, an allocation round's offer:
    all `kind: "hold"` to readers) is named for what it is to a passer-by, in each language."""
    api.premises("hall", rules={"requires_approval": True})
    day = future_weekday(2)
    booked = api.book("hall", local(day, 10), local(day, 12), public=True)
    assert booked.status_code == 201 and booked.get_json()["status"] == "pending_approval"
    for lang, said in [
        ("en", "10:00–12:00 (provisionally reserved)"),
        ("fi", "10:00–12:00 (alustavasti varattu)"),
        ("sv", "10:00–12:00 (preliminärt reserverad)"),
    ]:
        page = text(site.client().get(f"/premises/hall?week={day}&lang={lang}"))
        assert said in page, lang
        assert "Kerhoilta" not in page  # a held slot shows no title yet


def test_week_navigation_and_unknown_premises(site: Site, api: Api) -> None:
    api.premises("room")
    client = site.client()
    page = text(client.get("/premises/room?week=2027-03-03"))
    assert 'href="/premises/room?week=2027-03-08"' in page  # next Monday
    assert 'href="/premises/room?week=2027-02-22"' in page
    missing = client.get("/premises/nope")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html" and "<h1>" in text(missing)
    api_missing = client.get("/api/v1/premises/nope")
    assert api_missing.status_code == 404 and api_missing.mimetype == "application/problem+json"


def test_registry_page_and_csv_list_only_free_premises_in_use(site: Site, api: Api) -> None:
    api.premises("free-room", name={"fi": "Vapaa huone"})
    api.premises("paid-room", free_of_charge=False, hourly_price_cents=2000)
    api.premises("old-room", name={"fi": "Vanha huone"})
    assert api.post("/api/v1/premises/old-room/retire", {"reason": "x"}, "staff").status_code == 200
    client = site.client()
    page = text(client.get("/registry"))
    assert "Vapaa huone" in page and "paid-room" not in page and "Vanha huone" not in page
    # The open-data file comes from the asynchronous registry projection.
    catch_up(api.engine, clock=system_clock)
    download = client.get("/registry.csv", follow_redirects=True)
    assert download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text(download))))
    assert [r["id"] for r in rows] == ["free-room"]
    assert rows[0]["district"] == "keskusta" and rows[0]["next_free_hour"]
    same = client.get("/registry?format=csv", follow_redirects=True)
    assert text(same) == text(download)


def test_security_headers_and_cookie_flags(site: Site) -> None:
    client = site.client()
    response = client.get("/?lang=en")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = site.app.test_client().get("/?lang=en", base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_pages_use_no_outside_assets(site: Site, api: Api) -> None:
    api.premises("room")
    for path in ("/", "/premises", "/premises/room", "/registry", "/login", "/accessibility"):
        page = text(site.client().get(path))
        assert "http://" not in page.replace("http://localhost", "")
        assert 'src="https://' not in page and 'href="https://' not in page
        assert "<script>" not in page and "style=" not in page
