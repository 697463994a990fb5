"""GET /api/v1/stats/usage against a small history whose figures are worked out by hand.

The history lies in 2025, so it is placed through the real commands with an explicit `now`
(the HTTP API only books the future); the figures are read through HTTP. It has the spring
DST day (23 h) and the autumn one (25 h), a booking across midnight, a closure that cancels
a booking, an early and a late cancellation, and organisations of two types.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from booking.api.consistency import MAX_WAIT_SECONDS
from booking.clock import system_clock
from booking.domain.commands import (
    Actor,
    AddClosure,
    BookingRequest,
    CancelBooking,
    PlaceBooking,
)
from booking.service import Outcome, execute, run_premises_command
from events.slot import Slot
from events.sql import read_transaction
from events.store import Metadata, head_position
from projections import runner
from tests.conftest import HELSINKI, Api

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
EVENINGS = {d: [["18:00", "02:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {
    "min_notice_minutes": 0,
    "max_advance_days": 1095,
    "max_duration_minutes": 600,
    "cancellation_deadline_minutes": 1440,
}
STAFF = Actor("staff-1", "staff")


def at(day: str, hh: int, mm: int = 0, fold: int = 0) -> datetime:
    """A Helsinki wall-clock time (fold=1: the second 03:xx of the autumn change)."""
    naive = datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}")
    return naive.replace(tzinfo=HELSINKI, fold=fold)


class History:
    """Commands with their own `now`, through the service layer as the API runs them."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.repository = api.app.extensions["tilavaraus"].premises

    def run(self, premises_id: str, command: Any) -> None:
        def handle(conn: Any) -> Outcome:
            run_premises_command(
                conn,
                self.repository,
                premises_id,
                command,
                Metadata(command.actor.user_id),
                now=system_clock(),
            )
            return Outcome(200, {})

        execute(self.api.engine, handle)

    def book(
        self,
        premises_id: str,
        start: datetime,
        end: datetime,
        org: str,
        attendees: int,
        lead_hours: float,
    ) -> str:
        booking_id = str(uuid.uuid4())
        actor = Actor(f"user-of-{org}", "booker", org)
        request = BookingRequest(
            premises_id, Slot(start, end), "Salainen otsikko", attendees, False, "", org
        )
        self.run(
            premises_id,
            PlaceBooking(actor, booking_id, request, start - timedelta(hours=lead_hours)),
        )
        return booking_id

    def cancel(self, premises_id: str, booking_id: str, org: str, now: datetime) -> None:
        actor = Actor(f"user-of-{org}", "booker", org)
        self.run(premises_id, CancelBooking(actor, booking_id, "sairastuin", now))


@pytest.fixture
def history(api: Api) -> Api:
    api.premises("sali", capacity=10, opening_hours=ALL_DAY, rules=RULES, district="keskusta")
    api.premises("kerho", capacity=20, opening_hours=EVENINGS, rules=RULES, district="urpola")
    orgs = {
        "a1": api.organisation("Shakkikerho ry"),
        "a2": api.organisation("Kuoro ry"),
        "a3": api.organisation("Kyläyhdistys ry"),
        "c1": api.organisation("Kahvila Oy", "company"),
        "c2": api.organisation("Tanssikoulu Oy", "company"),
        "c3": api.organisation("Konsultit Oy", "company"),
    }
    h = History(api)
    # Spring change, 2025-03-30: 03:00 does not exist; 01:00-05:00 is three real hours.
    h.book("sali", at("2025-03-30", 1), at("2025-03-30", 5), orgs["a1"], 5, lead_hours=48)
    # Autumn change, 2025-10-26: 03:00 comes twice; 02:00-05:00 is four real hours.
    h.book("sali", at("2025-10-26", 2), at("2025-10-26", 5), orgs["a2"], 10, lead_hours=10)
    # Across midnight, Friday evening into Saturday.
    h.book("kerho", at("2025-06-06", 22), at("2025-06-07", 1), orgs["c1"], 5, lead_hours=100)
    early = h.book("sali", at("2025-06-10", 10), at("2025-06-10", 12), orgs["a1"], 4, 200)
    h.cancel("sali", early, orgs["a1"], at("2025-06-05", 12))
    late = h.book("sali", at("2025-06-11", 10), at("2025-06-11", 11), orgs["a2"], 4, 30)
    h.cancel("sali", late, orgs["a2"], at("2025-06-11", 9))
    h.book("sali", at("2025-06-12", 9), at("2025-06-12", 10), orgs["c1"], 4, lead_hours=5)
    closure = Slot(at("2025-06-12", 8), at("2025-06-12", 14))
    h.run(
        "sali",
        AddClosure(STAFF, "sali", "remontti", closure, "remontti", True, at("2025-06-01", 8)),
    )
    for n, org in enumerate(("a3", "c2", "c3")):
        start = at("2025-08-05", 10 + 2 * n)
        h.book("sali", start, start + timedelta(hours=1), orgs[org], 2, lead_hours=1)
    for role in ("analyst", "staff", "admin"):
        api.token(role)  # a new user is an event too: before the catch-up
    runner.catch_up(api.engine, clock=system_clock)
    return api


def stats(api: Api, query: str, role: str = "analyst") -> Any:
    api.token(role)  # a new user is an event too: make it before reading the head
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    response = api.get(f"/api/v1/stats/usage?{query}&min_position={head}", role=role)
    assert response.status_code == 200, response.get_json()
    assert int(response.headers["X-Log-Position"]) >= head
    return response.get_json()


def by_key(rows: list[dict[str, Any]], name: str) -> dict[Any, dict[str, Any]]:
    return {row["key"][name]: row for row in rows}


def test_spring_day_has_23_open_hours_and_no_hour_three(history: Api) -> None:
    body = stats(history, "from=2025-03-30&to=2025-03-30&group_by=hour&premises_id=sali")
    rows = by_key(body["rows"], "hour")
    assert sum(r["open_hours"] for r in rows.values()) == 23
    assert 3 not in rows
    assert {h: rows[h]["booked_hours"] for h in (1, 2, 4, 5)} == {1: 1, 2: 1, 4: 1, 5: 0}
    assert rows[1]["bookings"] == 1 and rows[2]["bookings"] == 0


def test_autumn_day_has_25_open_hours_and_a_double_hour_three(history: Api) -> None:
    body = stats(history, "from=2025-10-26&to=2025-10-26&group_by=hour&premises_id=sali")
    rows = by_key(body["rows"], "hour")
    assert sum(r["open_hours"] for r in rows.values()) == 25
    assert rows[3]["open_hours"] == 2
    assert {h: rows[h]["booked_hours"] for h in (2, 3, 4, 5)} == {2: 1, 3: 2, 4: 1, 5: 0}
    assert rows[3]["utilisation"] == 1.0


def test_march_by_month(history: Api) -> None:
    body = stats(history, "from=2025-03-01&to=2025-03-31&group_by=month&premises_id=sali")
    assert body["rows"] == [
        {
            "key": {"month": "2025-03"},
            "open_hours": 743.0,  # 31 days of 24 hours, less the hour the clocks skip
            "booked_hours": 3.0,
            "blocked_hours": 0.0,  # no premises shares its floor
            "utilisation": round(3 / 743, 4),
            "bookings": 1,
            "cancellations": 0,
            "late_cancellations": 0,
            "popup_requests": 0,
            "popup_approved": 0,
            "popup_rejected": 0,
            "popup_expired": 0,
            "median_lead_time_hours": 60.0,  # one lead of 48 h: the middle of bucket 48-72 h
            "mean_attendees_per_capacity": 0.5,
        }
    ]
    assert body["previous"]["from"] == "2025-01-29" and body["previous"]["to"] == "2025-02-28"
    previous = by_key(body["previous"]["rows"], "month")
    assert (previous["2025-01"]["open_hours"], previous["2025-02"]["open_hours"]) == (72, 28 * 24)


def test_june_cancellations_and_closure(history: Api) -> None:
    body = stats(history, "from=2025-06-01&to=2025-06-30&group_by=premises")
    sali = by_key(body["rows"], "premises")["sali"]
    assert sali["open_hours"] == 30 * 24 - 6  # the closure takes 08:00-14:00 of one day
    assert (sali["bookings"], sali["cancellations"], sali["late_cancellations"]) == (3, 3, 1)
    assert sali["booked_hours"] == 0 and sali["utilisation"] == 0
    # Leads 5 h, 30 h, 200 h: the median lies in bucket 24-36 h, halfway in.
    assert sali["median_lead_time_hours"] == 30.0
    assert sali["mean_attendees_per_capacity"] is None
    kerho = by_key(body["rows"], "premises")["kerho"]
    assert kerho["open_hours"] == 30 * 8
    assert kerho["booked_hours"] == 3 and kerho["bookings"] == 1
    assert kerho["mean_attendees_per_capacity"] == 0.25
    assert body["previous"]["from"] == "2025-05-02"


def test_booking_across_midnight_by_weekday(history: Api) -> None:
    body = stats(history, "from=2025-06-02&to=2025-06-08&group_by=weekday&premises_id=kerho")
    rows = by_key(body["rows"], "weekday")
    assert list(rows) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert all(r["open_hours"] == 8 for r in rows.values())  # 00-02 and 18-24 every date
    assert (rows["fri"]["booked_hours"], rows["sat"]["booked_hours"]) == (2, 1)
    assert (rows["fri"]["bookings"], rows["sat"]["bookings"]) == (1, 0)


def test_district_and_weekday_hour_heatmap(history: Api) -> None:
    body = stats(history, "from=2025-06-02&to=2025-06-08&group_by=weekday,hour")
    cells = {(r["key"]["weekday"], r["key"]["hour"]): r for r in body["rows"]}
    assert cells[("fri", 22)]["booked_hours"] == 1 and cells[("sat", 0)]["booked_hours"] == 1
    assert cells[("fri", 22)]["open_hours"] == 2  # sali all day and kerho in the evening
    assert cells[("mon", 3)]["open_hours"] == 1  # sali only
    districts = stats(history, "from=2025-01-01&to=2025-12-31&group_by=district")["rows"]
    assert [r["key"]["district"] for r in districts] == ["keskusta", "urpola"]
    assert by_key(districts, "district")["keskusta"]["open_hours"] == 365 * 24 - 6


def test_organisation_types_only_for_three_or_more(history: Api) -> None:
    year = stats(history, "from=2025-01-01&to=2025-12-31&group_by=organisation_type")
    rows = by_key(year["rows"], "organisation_type")
    assert set(rows) == {"association", "company"}
    assert rows["association"]["bookings"] == 5  # three associations
    assert rows["company"]["bookings"] == 4  # three companies
    assert rows["company"]["open_hours"] == (365 * 24 - 6) + 365 * 8
    march = stats(history, "from=2025-03-01&to=2025-03-31&group_by=organisation_type")
    assert [r["key"] for r in march["rows"]] == [{"organisation_type": "all"}]
    assert march["rows"][0]["bookings"] == 1


def test_no_personal_data_in_any_figure(history: Api) -> None:
    response = history.get(
        "/api/v1/stats/usage?from=2025-01-01&to=2025-12-31&group_by=premises,organisation_type",
        role="staff",
    )
    text = response.get_data(as_text=True)
    for secret in ("Salainen otsikko", "ry", "Oy", "user-of-", "@"):
        assert secret not in text


def test_csv_has_both_periods(history: Api) -> None:
    response = history.get(
        "/api/v1/stats/usage?from=2025-06-01&to=2025-06-30&group_by=premises&format=csv",
        role="admin",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    current = {r["premises"]: r for r in rows if r["period"] == "current"}
    assert float(current["sali"]["open_hours"]) == 714 and current["sali"]["cancellations"] == "3"
    assert {r["period"] for r in rows} == {"current", "previous"}


@pytest.mark.parametrize(
    "query",
    [
        "from=2025-01-01&to=2025-01-31&group_by=colour",
        "from=2025-01-01&to=2025-01-31&group_by=month,hour,weekday",
        "from=2025-01-01&to=2025-01-31&group_by=month,month",
        "from=2025-02-01&to=2025-01-01",
        "to=2025-01-01",
        "from=2025-01-01&to=2025-13-01",
        "from=2020-01-01&to=2025-01-01",
        "from=2025-01-01&to=2025-01-31&format=xml",
        "from=2025-01-01&to=2025-01-31&min_position=-1",
    ],
)
def test_bad_queries_get_422(api: Api, query: str) -> None:
    response = api.get(f"/api/v1/stats/usage?{query}", role="analyst")
    assert response.status_code == 422, response.get_json()
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_only_analysts_staff_and_admins(api: Api) -> None:
    query = "/api/v1/stats/usage?from=2025-01-01&to=2025-01-31"
    assert api.get(query).status_code == 401
    assert api.get(query, role="booker").status_code == 403
    assert api.get(query, role="resident").status_code == 403
    assert api.get(query + "&premises_id=nowhere", role="analyst").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/stats/usage", "/api/v1/registry/free-premises"])
@pytest.mark.parametrize("beyond", ["head+1", "999999", str(2**63 - 1), str(2**64), "9" * 40])
def test_min_position_beyond_the_log_is_422_at_once(api: Api, path: str, beyond: str) -> None:
    """API.md: a position the log has not reached is 422 at once — no wait, no 503 with
    Retry-After that a client would retry forever (issue 14.1); past 64 bits is no number."""
    api.token("analyst")  # a new user is an event too: make it before reading the head
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    wanted = str(head + 1) if beyond == "head+1" else beyond
    started = time.monotonic()
    response = api.get(
        f"{path}?from=2025-01-01&to=2025-01-31&min_position={wanted}", role="analyst"
    )
    # A wait would last MAX_WAIT_SECONDS before its 503; a refusal at once is far below it.
    assert time.monotonic() - started < MAX_WAIT_SECONDS
    assert response.status_code == 422, response.get_json()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "min_position" in response.get_json()["errors"]
    assert "Retry-After" not in response.headers


def test_min_position_reached_by_the_log_but_not_the_projection_waits_then_503(
    api: Api,
) -> None:
    """Still bounded: a position in the log that the asynchronous projection has not taken
    in within the wait is 503 with Retry-After (the runner is not running in tests)."""
    api.premises()
    api.token("analyst")
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    response = api.get(
        f"/api/v1/stats/usage?from=2025-01-01&to=2025-01-31&min_position={head}",
        role="analyst",
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/bookings", "/api/v1/premises", "/api/v1/availability", "/api/v1/allocation-rounds"],
)
def test_reads_of_inline_projections_refuse_an_unreached_min_position_too(
    api: Api, path: str
) -> None:
    """API.md states the 422 for any read: the inline projections' reads are always current,
    so a reached position is met at once, and one the log has not reached (or no number)
    is the same 422 as on the asynchronous reads, not silently ignored."""
    api.premises()
    api.token("staff")
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    query = "start=2026-11-20T10:00:00%2B02:00&end=2026-11-20T12:00:00%2B02:00&"
    for wanted, status in ((head, 200), (head + 1, 422), ("x", 422), (str(2**64), 422)):
        response = api.get(f"{path}?{query}min_position={wanted}", role="staff")
        assert response.status_code == status, (wanted, response.get_json())
        if status == 422:
            assert "min_position" in response.get_json()["errors"]
            assert response.headers["Content-Type"].startswith("application/problem+json")
