"""GET /api/v1/registry/free-premises: the public register of free premises, JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import time_machine

from booking.clock import system_clock
from events.sql import read_transaction
from events.store import head_position
from projections import runner
from tests.conftest import Api, local

DAY = date(2026, 12, 2)  # a Wednesday


def listed(api: Api) -> list[dict[str, object]]:
    runner.catch_up(api.engine, clock=system_clock)
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    response = api.get(f"/api/v1/registry/free-premises?min_position={head}")
    assert response.status_code == 200
    assert int(response.headers["X-Log-Position"]) == head
    return list(response.get_json()["premises"])


def test_only_free_premises_in_use_are_listed(api: Api) -> None:
    api.premises("lib", free_use_conditions={"fi": "Maksuton yhdistyksille", "en": "Free"})
    api.premises("hall", free_of_charge=False, hourly_price_cents=2500)
    api.premises("old")
    assert (
        api.post("/api/v1/premises/old/retire", {"reason": "purettu"}, "staff").status_code == 200
    )
    entries = listed(api)
    assert [e["id"] for e in entries] == ["lib"]
    lib = entries[0]
    assert lib["address"] == "Raatihuoneenkatu 6, 50100 Mikkeli"
    assert (lib["district"], lib["capacity"]) == ("keskusta", 12)
    assert lib["accessibility"] == ["step_free_access", "induction_loop"]
    assert lib["equipment"] == ["projector", "whiteboard"]
    assert lib["opening_hours"]["mon"] == [["08:00", "22:00"]]
    assert lib["free_use_conditions"]["fi"] == "Maksuton yhdistyksille"
    assert "rules" not in lib and "hourly_price_cents" not in lib

    made_free = api.patch("/api/v1/premises/hall", {"free_of_charge": True}, role="staff")
    assert made_free.status_code == 200
    made_paid = api.patch(
        "/api/v1/premises/lib", {"free_of_charge": False, "hourly_price_cents": 900}, role="staff"
    )
    assert made_paid.status_code == 200
    assert [e["id"] for e in listed(api)] == ["hall"]


def test_next_free_hour_skips_bookings_and_closed_hours(api: Api) -> None:
    with time_machine.travel(local(DAY, 9, 15), tick=False):
        api.premises("lib")
        api.premises("late", opening_hours={"wed": [["18:00", "20:00"]]})
        assert api.book("lib", local(DAY, 10), local(DAY, 12)).status_code == 201
        entries = {e["id"]: e for e in listed(api)}
    assert entries["lib"]["next_free_hour"] == local(DAY, 12).isoformat()
    assert entries["late"]["next_free_hour"] == local(DAY, 18).isoformat()
    with time_machine.travel(local(DAY, 21, 30), tick=False):
        entries = {e["id"]: e for e in listed(api)}
    assert entries["lib"]["next_free_hour"] == local(date(2026, 12, 3), 8).isoformat()
    assert entries["late"]["next_free_hour"] == local(date(2026, 12, 9), 18).isoformat()


def test_csv_download(api: Api) -> None:
    api.premises(
        "kylatalo",
        name={"fi": "Kylätalo Pörrö", "en": "Village hall"},
        accessibility=["step_free_access"],
        equipment=[],
    )
    runner.catch_up(api.engine, clock=system_clock)
    response = api.get("/api/v1/registry/free-premises?format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "X-Log-Position" in response.headers
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8"))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["name_fi"], row["name_en"]) == (
        "kylatalo",
        "Kylätalo Pörrö",
        "Village hall",
    )
    assert row["accessibility"] == "step_free_access" and row["equipment"] == ""
    assert row["opening_hours"].startswith("mon 08:00-22:00; tue 08:00-22:00")
    assert row["next_free_hour"]


def test_bad_format_is_422(api: Api) -> None:
    response = api.get("/api/v1/registry/free-premises?format=pdf")
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
