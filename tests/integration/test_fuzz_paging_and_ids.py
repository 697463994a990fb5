"""Odd input to every endpoint the registry and allocation paging, the space-id rule and the
criteria rule touch, on SQLite and PostgreSQL: empty, huge, Unicode (lone surrogates
included), NUL, wrong JSON types and hand-made cursors. Nothing is a 500; a refusal is
problem+json and leaves the log as it was.

Each test runs a table of cases against one database and names every case that went wrong.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from booking.clock import system_clock
from events.sql import read_transaction
from events.store import events_table
from projections import runner
from tests.conftest import Api, premises_body
from tests.integration.test_allocation_api import CLOSE, EVENINGS, application, round_body
from tests.integration.test_pages_helpers import Site, _fresh_limits, post_form, site
from tests.integration.test_pages_staff import _new_premises_form

__all__ = ["_fresh_limits", "site"]

ODD_TEXTS = [
    "",
    " ",
    "x" * 100_000,
    "ä" * 101,
    "\U0001f3d0🏐",
    "\u202eilas",  # right-to-left override
    "a\x00b",
    "\ud800",  # a lone surrogate: valid JSON text, no valid UTF-8
    "a\nb",
    "1E309",
]
ODD_VALUES: list[Any] = [*ODD_TEXTS, None, 0, -1, 2**64, 1.5, True, [], {}, [[[]]], {"a": 1}]


def _cursor(values: Any) -> str:
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = [
    _cursor(v)
    for v in (
        [["s", "a"]],
        [["i", 1]],
        [["i", 2**80]],
        [["t", "2027-01-01T00:00:00+02:00"]],
        [["t", "2027-01-01T00:00:00"]],
        [["t", "9999-12-31T23:59:59-12:00"], ["s", "b"]],
        [["t", "0001-01-01T00:00:00+14:00"], ["s", "b"]],
        [["s", "a\u0000b"]],
        [["s", "\ud800"]],
        [["s", "x" * 300]],
        [["s", "a"], ["s", "b"]],
        [["t", "2027-01-01T00:00:00+00:00"], ["s", "b"]],
        [["i", 1], ["i", 2]],
        [["s", "a"], ["s", "b"], ["s", "c"], ["s", "d"]],
        [["s", "a"], ["i", 1], ["s", "c"], ["s", "d"]],
        [],
        {},
        "text",
        [["x", 1]],
        [["s"]],
    )
] + ["", "=", "%00", "a" * 501, "____", "W10"]


def _q(text: str) -> str:
    """`text` for a query; a lone surrogate goes as the invalid UTF-8 bytes it would be."""
    return quote(text, errors="surrogatepass")


def _events(api: Api) -> int:
    with read_transaction(api.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def _why(response: Any) -> str | None:
    if response.status_code >= 500:
        return f"status {response.status_code}: {response.get_data(as_text=True)[:200]}"
    if response.status_code >= 400 and response.mimetype not in (
        "application/problem+json",
        "text/html",  # the pages answer a refused form with the form again
    ):
        return f"{response.status_code} as {response.mimetype}"
    return None


def _check(api: Api, cases: dict[str, Callable[[], Any]], writes: bool) -> None:
    wrong = []
    for name, send in cases.items():
        before = _events(api)
        response = send()
        why = _why(response)
        if why is None and writes and response.status_code >= 400 and _events(api) != before:
            why = "a refused write changed the log"
        if why:
            wrong.append(f"{name}: {why}")
    assert not wrong, "\n".join(wrong)


def _proposed_round(api: Api, clock: Any) -> str:
    rules = {"max_advance_days": 365, "max_duration_minutes": 180}
    api.premises("gym", opening_hours=EVENINGS, rules=rules, capacity=60)
    api.premises("hall", opening_hours=EVENINGS, rules=rules, capacity=60)
    rid = str(api.post("/api/v1/allocation-rounds", round_body(), role="staff").get_json()["id"])
    sent = api.post(f"/api/v1/allocation-rounds/{rid}/applications", application(), "booker")
    assert sent.status_code == 201
    clock.move_to(CLOSE + timedelta(minutes=1))
    assert api.post(f"/api/v1/allocation-rounds/{rid}/proposal", role="staff").status_code == 200
    return rid


def test_odd_queries_to_the_paged_lists_are_never_a_500(api: Api, clock: Any) -> None:
    rid = _proposed_round(api, clock)
    lists = [
        ("/api/v1/registry/free-premises", None),
        ("/api/v1/registry/free-premises?format=csv", None),
        (f"/api/v1/allocation-rounds/{rid}/allocations", "staff"),
        (f"/api/v1/allocation-rounds/{rid}/allocations?preview=series", "staff"),
        ("/api/v1/allocation-rounds/nope/allocations", "staff"),
        ("/api/v1/allocation-rounds", None),
        (f"/api/v1/allocation-rounds/{rid}/applications", "staff"),
        ("/api/v1/premises", None),
        ("/api/v1/bookings", "staff"),
        ("/api/v1/popup-requests", "staff"),
        ("/api/v1/membership-requests", "staff"),
        ("/api/v1/feed-tokens", "staff"),
        ("/api/v1/users/me/sessions", "staff"),
    ]
    _check(api, _paging_cases(api, lists), writes=False)


def _paging_cases(api: Api, lists: list[tuple[str, str | None]]) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    for path, role in lists:
        glue = "&" if "?" in path else "?"
        params = [f"after={quote(c)}" for c in CURSORS]
        params += [f"limit={_q(str(v))}" for v in ODD_VALUES if not isinstance(v, dict)]
        params += [f"preview={_q(t)}" for t in ODD_TEXTS]
        params += [f"format={_q(t)}" for t in ODD_TEXTS]
        params += ["limit=1&limit=2", "after=a&after=b", "limit=", "after="]
        params += [f"format=csv&after={quote(c)}" for c in CURSORS[:3]]
        for param in params:
            url = f"{path}{glue}{param}"
            cases[url[:120]] = lambda url=url, role=role: api.get(url, role=role)
    return cases


def test_odd_queries_to_the_search_statistics_and_result_are_never_a_500(
    api: Api, clock: Any
) -> None:
    rid = _proposed_round(api, clock)
    assert api.post(f"/api/v1/allocation-rounds/{rid}/publish", role="staff").status_code == 200
    runner.catch_up(api.engine, clock=system_clock)
    window = "start=2027-03-02T18:00:00%2B02:00&end=2027-03-02T19:00:00%2B02:00"
    usage = "/api/v1/stats/usage?from=2027-01-01&to=2027-03-31"
    lists: list[tuple[str, str | None]] = [
        (f"/api/v1/availability?{window}", None),
        (f"/api/v1/availability?{window}&district=x&feature=a", None),
        (f"/api/v1/allocation-rounds/{rid}/result", None),
        ("/api/v1/allocation-rounds/nope/result", None),
    ]
    lists += [
        (f"{usage}&group_by={g}", "analyst")
        for g in ("premises", "premises,month", "week,premises", "organisation_type,premises")
    ]
    lists += [
        (f"/api/v1/stats/allocation?group_by={g}", "analyst") for g in ("purpose", "age_group")
    ]
    _check(api, _paging_cases(api, lists), writes=False)


def test_odd_spaces_and_premises_ids_are_never_a_500(api: Api) -> None:
    api.premises("sali")
    cases: dict[str, Callable[[], Any]] = {}
    for n, value in enumerate(ODD_VALUES):
        cases[f"POST spaces={n}"] = lambda v=value: api.post(
            "/api/v1/premises", premises_body("uusi", spaces=v), role="staff"
        )
        cases[f"POST [spaces]={n}"] = lambda v=value: api.post(
            "/api/v1/premises", premises_body("uusi", spaces=["uusi", v]), role="staff"
        )
        cases[f"POST id={n}"] = lambda v=value: api.post(
            "/api/v1/premises", premises_body(v), role="staff"
        )
        cases[f"PATCH spaces={n}"] = lambda v=value: api.patch(
            "/api/v1/premises/sali", {"spaces": v}, role="staff"
        )
        cases[f"PATCH [spaces]={n}"] = lambda v=value: api.patch(
            "/api/v1/premises/sali", {"spaces": ["sali", v]}, role="staff"
        )
    cases["PATCH 21 spaces"] = lambda: api.patch(
        "/api/v1/premises/sali", {"spaces": [f"s-{n}" for n in range(21)]}, role="staff"
    )
    _check(api, cases, writes=True)
    now = api.get("/api/v1/premises/sali").get_json()
    assert now["spaces"] == ["sali"] and now["version"] == 1
    assert len(api.get("/api/v1/premises").get_json()["premises"]) == 1


def test_odd_criteria_are_never_a_500(api: Api) -> None:
    api.premises("gym")
    cases: dict[str, Callable[[], Any]] = {}

    def send(criteria: Any) -> Callable[[], Any]:
        body = round_body(premises=["gym"], criteria=criteria)
        return lambda: api.post("/api/v1/allocation-rounds", body, role="staff")

    for n, value in enumerate(ODD_VALUES):
        cases[f"criteria={n}"] = send(value)
        cases[f"[criteria]={n}"] = send([value])
        cases[f"key={n}"] = send([{"key": value}])
        for key in ("age_group", "organisation_type", "previous_season", "purpose"):
            cases[f"{key} in={n}"] = send([{"key": key, "in": value}])
            cases[f"{key} [in]={n}"] = send([{"key": key, "in": [value]}])
    cases["unknown field"] = send([{"key": "age_group", "not": 1}])
    _check(api, cases, writes=True)


def test_odd_form_input_is_never_a_500(site: Site, api: Api) -> None:
    api.premises("gym", opening_hours=EVENINGS)
    staff = site.client("staff", lang="fi")
    cases: dict[str, Callable[[], Any]] = {}
    for n, text in enumerate(ODD_TEXTS):
        if text == "\ud800":
            continue  # a form cannot carry a lone surrogate: the client encodes UTF-8
        for path in ("/staff/premises/new", "/staff/premises/gym"):
            form = _new_premises_form(id="uusi", spaces=text, version="1")
            cases[f"{path} spaces={n}"] = lambda p=path, f=form: post_form(staff, p, f, page=p)
        for key in ("age_group", "organisation_type", "previous_season", "purpose", text):
            data = {
                "name_fi": "Syyskausi",
                "season_start": "2027-08-16",
                "season_end": "2027-12-19",
                "opens_date": "2027-03-01",
                "opens_time": "09:00",
                "closes_date": "2027-04-01",
                "closes_time": "16:00",
                "premises": ["gym"],
                "criterion_0": key,
                "criterion_0_in": text,
                "confirm_days": "10",
            }
            path = "/staff/rounds/new"
            cases[f"round {key[:20]!r} in={n}"] = lambda d=data, p=path: post_form(
                staff, p, d, page=p
            )
    _check(api, cases, writes=True)
