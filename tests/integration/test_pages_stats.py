"""The statistics page on both databases: SVG charts with titles and data tables, CSV
downloads, the period form's errors, and who may see it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from booking.clock import system_clock
from projections.runner import catch_up
from tests.conftest import Api, future_weekday, local
from tests.integration.test_pages_helpers import Site, _fresh_limits, site, text

__all__ = ["_fresh_limits", "site"]


def test_charts_tables_and_csv_show_the_booked_share(site: Site, api: Api) -> None:
    api.premises("room", district="rantakylä", rules={"max_duration_minutes": 600})  # 14 h a day
    day = future_weekday(2)
    assert api.book("room", local(day, 8), local(day, 15)).status_code == 201  # 7 of 98 h
    catch_up(api.engine, clock=system_clock)
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    analyst = site.client("analyst", lang="en")
    page = text(analyst.get(f"/stats?from={monday}&to={sunday}"))
    assert page.count('role="img"') == 3
    assert '<title id="chart-weeks-title">Utilisation by week</title>' in page
    assert '<p class="table-title" id="districts-table-title">Utilisation by district</p>' in page
    assert 'aria-labelledby="districts-table-title"' in page
    assert '<th scope="row">Rantakylä</th><td>98.0</td><td>7.0</td><td>7 %</td>' in page
    year, week, _ = day.isocalendar()
    assert f"{year}-W{week:02d}" in page
    download = analyst.get(f"/stats/usage.csv?group_by=district&from={monday}&to={sunday}")
    assert download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text(download))))
    current = [r for r in rows if r["period"] == "current"]
    assert current[0]["district"] == "rantakylä" and float(current[0]["booked_hours"]) == 7.0
    assert "style=" not in page and "<script>" not in page


def test_period_errors_and_access(site: Site, api: Api) -> None:
    analyst = site.client("analyst", lang="en")
    response = analyst.get("/stats?from=2027-02-01&to=2027-01-01")
    assert response.status_code == 422
    assert 'id="f-to-error"' in text(response)
    bad = analyst.get("/stats?from=yesterday")
    assert bad.status_code == 422 and "Give the date as YYYY-MM-DD" in text(bad)
    assert analyst.get("/stats/usage.csv?from=2027-02-01&to=2027-01-01").status_code == 422
    assert site.client("booker").get("/stats").status_code == 403
    assert site.client("staff").get("/stats").status_code == 200
