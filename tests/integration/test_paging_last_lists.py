"""Paging of the last lists that came whole: GET /api/v1/availability (the premises free for
a window), GET /api/v1/stats/usage as JSON (both periods, aligned) and a published round's
GET /api/v1/allocation-rounds/{id}/result, over HTTP on both databases, like every other
list (API.md conventions: `limit`, `after`, `next`, `Link`; a list is never cut silently).

Each walk follows the `Link` header to the end and checks that it names `next`; the pages
together are the unpaged answer, in order, nothing twice, also when rows come and go
between pages."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from booking.clock import system_clock
from events.sql import read_transaction
from events.store import head_position
from projections import runner
from tests.conftest import Api, future_weekday, local
from tests.integration.test_allocation_api import round_body
from tests.integration.test_allocation_open_data import _published_round
from tests.integration.test_stats import history

__all__ = ["history"]

SEARCH = "/api/v1/availability"
USAGE = "/api/v1/stats/usage"
BAD_PAGING = ["limit=0", "limit=x", "after=not-a-cursor", "after=W1siaSIsMV1d", "after=%21"]


def cursor(*values: list[Any]) -> str:
    """A hand-made cursor, as a client that builds one would write it."""
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def walk(api: Api, first: str, role: str | None = None, between: Any = None) -> list[Any]:
    """Every page's body, following the `Link` header from `first` to the end; the header
    is there exactly when `next` is, and leads to this list's URL with `after=<next>`.
    `between(n)` runs after page n (rows come and go between pages)."""
    bodies: list[Any] = []
    url: str | None = first
    while url is not None:
        response = api.get(url, role=role)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        bodies.append(body)
        link = response.headers.get("Link")
        if body["next"] is None:
            assert link is None
            url = None
        else:
            assert link is not None and link.endswith('>; rel="next"'), link
            target = urlsplit(link[1 : link.index(">")])
            assert target.path == urlsplit(first).path
            assert f"after={body['next']}" in target.query
            url = f"{target.path}?{target.query}"
            if between is not None:
                between(len(bodies))
        assert len(bodies) < 200
    return bodies


def assert_refused(response: Any, fields: set[str]) -> None:
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) == fields


# --- GET /api/v1/availability ------------------------------------------------------------


@pytest.fixture
def catalogue(api: Api) -> dict[str, Any]:
    """Eight premises made out of order; the middle three are booked over the window (so a
    page must look past a run of busy ones), one is in another district."""
    ids = ["p-g", "p-b", "p-e", "p-a", "p-h", "p-c", "p-f", "p-d"]
    for premises_id in ids:
        api.premises(premises_id, district="urpola" if premises_id == "p-f" else "keskusta")
    day = future_weekday(2)
    for premises_id in ("p-b", "p-c", "p-d"):
        booked = api.book(premises_id, local(day, 12), local(day, 13))
        assert booked.status_code == 201, booked.get_json()
    window = {"start": local(day, 11).isoformat(), "end": local(day, 14).isoformat()}
    return {"day": day, "window": urlencode(window), "free": ["p-a", "p-e", "p-f", "p-g", "p-h"]}


def ids_of(bodies: list[Any], key: str = "premises") -> list[str]:
    return [p["id"] for body in bodies for p in body[key]]


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_the_search_comes_in_pages_that_add_up_to_the_whole_answer(
    api: Api, catalogue: dict[str, Any], limit: int
) -> None:
    whole = api.get(f"{SEARCH}?{catalogue['window']}")
    assert whole.status_code == 200 and "Link" not in whole.headers
    body = whole.get_json()
    # The answer as before, with `next`: null (the default page holds a city's catalogue).
    assert set(body) == {"start", "end", "premises", "next"} and body["next"] is None
    assert [p["id"] for p in body["premises"]] == catalogue["free"]

    bodies = walk(api, f"{SEARCH}?{catalogue['window']}&limit={limit}")

    assert ids_of(bodies) == catalogue["free"]  # by id, nothing twice or left out
    assert all(len(b["premises"]) <= limit for b in bodies)
    assert len(bodies) == -(-len(catalogue["free"]) // limit)  # no empty page at the end
    assert all((b["start"], b["end"]) == (body["start"], body["end"]) for b in bodies)
    by_id = {p["id"]: p for p in body["premises"]}
    assert all(p == by_id[p["id"]] for b in bodies for p in b["premises"])


def test_the_search_keeps_its_filters_across_pages(api: Api, catalogue: dict[str, Any]) -> None:
    bodies = walk(api, f"{SEARCH}?{catalogue['window']}&district=keskusta&limit=1")
    assert ids_of(bodies) == ["p-a", "p-e", "p-g", "p-h"]


def test_the_search_walks_on_past_premises_added_and_booked_between_pages(
    api: Api, catalogue: dict[str, Any]
) -> None:
    day = catalogue["day"]

    def meanwhile(page: int) -> None:
        if page == 1:  # after p-a, p-e: one before the cursor, one after, one taken
            api.premises("p-0")
            api.premises("p-z")
            booked = api.book("p-g", local(day, 11), local(day, 12))
            assert booked.status_code == 201, booked.get_json()

    bodies = walk(api, f"{SEARCH}?{catalogue['window']}&limit=2", between=meanwhile)

    assert ids_of(bodies) == ["p-a", "p-e", "p-f", "p-h", "p-z"]


@pytest.mark.parametrize("query", [*BAD_PAGING, "limit=1001", f"after={cursor(['i', 1])}"])
def test_bad_search_paging_is_422(api: Api, catalogue: dict[str, Any], query: str) -> None:
    response = api.get(f"{SEARCH}?{catalogue['window']}&{query}")
    assert_refused(response, {query.split("=")[0]})


# --- GET /api/v1/allocation-rounds/{id}/result ----------------------------------------------


def result_rows(bodies: list[Any]) -> list[tuple[str, str, str, str]]:
    return [
        (r["premises_id"], r["weekday"], r["start_time"], r["organisation_id"])
        for b in bodies
        for r in b["result"]
    ]


@pytest.fixture
def published(api: Api, clock: Any) -> dict[str, Any]:
    round_ = _published_round(api, clock)
    round_["path"] = f"/api/v1/allocation-rounds/{round_['id']}/result"
    return round_


def test_the_result_comes_in_pages_by_premises_weekday_and_time(
    api: Api, published: dict[str, Any]
) -> None:
    whole = api.client.get(published["path"])
    assert whole.status_code == 200 and "Link" not in whole.headers
    body = whole.get_json()
    assert set(body) == {
        "round_id",
        "name",
        "season_start",
        "season_end",
        "published_at",
        "confirm_by",
        "result",
        "next",
    }
    assert body["next"] is None
    # Monday to Friday, not the weekdays' names in alphabetical order.
    assert [r["weekday"] for r in body["result"]] == ["mon", "tue", "wed", "thu", "fri"]
    for limit in (1, 2, 4):
        bodies = walk(api, f"{published['path']}?limit={limit}")
        assert result_rows(bodies) == result_rows([body]), limit
        assert [len(b["result"]) for b in bodies][:-1] == [limit] * (len(bodies) - 1)
        for page in bodies:  # each page is a whole answer about the round
            assert {k: v for k, v in page.items() if k not in ("result", "next")} == {
                k: v for k, v in body.items() if k not in ("result", "next")
            }


def test_the_result_walks_on_while_offers_are_answered_between_pages(
    api: Api, published: dict[str, Any]
) -> None:
    whole = api.client.get(published["path"]).get_json()["result"]
    allocations = api.get(
        f"/api/v1/allocation-rounds/{published['id']}/allocations", role="staff"
    ).get_json()["allocations"]
    offered = [a for a in allocations if a["status"] == "offered"]

    def meanwhile(page: int) -> None:
        if page == 2:
            for offer in offered:  # every status changes, the order does not
                answered = api.post(f"/api/v1/allocations/{offer['id']}/decline", role="staff")
                assert answered.status_code == 200, answered.get_json()

    bodies = walk(api, f"{published['path']}?limit=2", between=meanwhile)

    assert result_rows(bodies) == result_rows([{"result": whole}])
    assert [r["status"] for r in bodies[-1]["result"]] == ["declined"]


def test_the_result_csv_is_whole_and_refuses_paging(api: Api, published: dict[str, Any]) -> None:
    as_csv = api.client.get(f"{published['path']}?format=csv")
    assert as_csv.status_code == 200 and "Link" not in as_csv.headers
    assert len(as_csv.get_data(as_text=True).strip().splitlines()) == 1 + 5
    page = api.client.get(f"{published['path']}?limit=2").get_json()
    for query in ("limit=2", f"after={page['next']}", "limit=5&after=x"):
        refused = api.client.get(f"{published['path']}?format=csv&{query}")
        assert_refused(refused, {part.split("=")[0] for part in query.split("&")})


@pytest.mark.parametrize(
    "query",
    [
        *BAD_PAGING,
        "limit=1001",
        f"after={cursor(['s', 'gym'])}",
        f"after={cursor(['s', 'a'], ['s', 'b'], ['s', 'c'], ['s', 'd'])}",
    ],
)
def test_bad_result_paging_is_422(api: Api, published: dict[str, Any], query: str) -> None:
    assert_refused(api.client.get(f"{published['path']}?{query}"), {query.split("=")[0]})


# --- GET /api/v1/stats/allocation --------------------------------------------------------

ALLOCATION_STATS = "/api/v1/stats/allocation"


@pytest.mark.parametrize("group_by", ["organisation_type", "age_group", "purpose"])
def test_allocation_statistics_come_in_pages_that_add_up_to_the_whole(
    api: Api, published: dict[str, Any], group_by: str
) -> None:
    whole = api.get(f"{ALLOCATION_STATS}?group_by={group_by}", role="analyst")
    assert whole.status_code == 200 and "Link" not in whole.headers
    body = whole.get_json()
    assert body["next"] is None and len(body["rows"]) >= 2, body
    for limit in (1, 2):
        bodies = walk(api, f"{ALLOCATION_STATS}?group_by={group_by}&limit={limit}", "analyst")
        assert [r for b in bodies for r in b["rows"]] == body["rows"], limit
        assert all(len(b["rows"]) == limit for b in bodies[:-1])
        assert all(b["group_by"] == group_by for b in bodies)


def test_allocation_statistics_csv_is_whole_and_refuses_paging(
    api: Api, published: dict[str, Any]
) -> None:
    url = f"{ALLOCATION_STATS}?group_by=age_group"
    rows = api.get(url, role="analyst").get_json()["rows"]
    as_csv = api.get(f"{url}&format=csv", role="analyst")
    assert as_csv.status_code == 200 and "Link" not in as_csv.headers
    assert len(as_csv.get_data(as_text=True).strip().splitlines()) == 1 + len(rows)
    page = api.get(f"{url}&limit=1", role="analyst").get_json()
    for query in ("limit=1", f"after={page['next']}"):
        refused = api.get(f"{url}&format=csv&{query}", role="analyst")
        assert_refused(refused, {query.split("=")[0]})


@pytest.mark.parametrize(
    "query",
    [
        *BAD_PAGING,
        "limit=1001",
        f"after={cursor(['s', 'no-such-round'], ['s', '7-14'])}",
        f"after={cursor(['s', 'a'])}",
        f"after={cursor(['i', 1], ['s', '7-14'])}",
    ],
)
def test_bad_allocation_statistics_paging_is_422(
    api: Api, published: dict[str, Any], query: str
) -> None:
    refused = api.get(f"{ALLOCATION_STATS}?group_by=age_group&{query}", role="analyst")
    assert_refused(refused, {query.split("=")[0]})


# --- GET /api/v1/stats/usage -------------------------------------------------------------


def usage_url(api: Api, query: str) -> str:
    api.token("analyst")  # a new user is an event too: make it before reading the head
    with read_transaction(api.engine) as conn:
        head = head_position(conn)
    return f"{USAGE}?{query}&min_position={head}"


PERIOD = "from=2025-06-01&to=2025-10-31"  # the previous period: 2024-12-30..2025-05-31
GROUPINGS = [
    "premises",
    "premises,month",
    "month,premises",
    "premises,week",
    "week,premises",
    "premises,weekday",
    "premises,hour",
    "premises,organisation_type",
    "organisation_type,premises",
    "district,weekday",
    "month,organisation_type",
    "weekday,hour",
]


@pytest.mark.parametrize("group_by", GROUPINGS)
def test_usage_pages_add_up_to_both_whole_periods(history: Api, group_by: str) -> None:
    url = usage_url(history, f"{PERIOD}&group_by={group_by}")
    whole = history.get(url, role="analyst")
    assert whole.status_code == 200 and "Link" not in whole.headers
    body = whole.get_json()
    assert body["next"] is None and body["rows"] and body["previous"]["rows"]
    # One row a page where that is few pages; larger pages for the longer lists.
    for limit in (1, 3, 10) if len(body["rows"]) <= 12 else (7, 40):
        bodies = walk(history, f"{url}&limit={limit}", role="analyst")
        assert [r for b in bodies for r in b["rows"]] == body["rows"], (group_by, limit)
        assert [r for b in bodies for r in b["previous"]["rows"]] == body["previous"]["rows"]
        for page in bodies:
            assert len(page["rows"]) <= limit and len(page["previous"]["rows"]) <= limit
            assert page["rows"] or page["previous"]["rows"]  # no empty page
            for key in ("from", "to", "group_by", "premises_id", "log_position"):
                assert page[key] == body[key]
            assert (page["previous"]["from"], page["previous"]["to"]) == (
                body["previous"]["from"],
                body["previous"]["to"],
            )


@pytest.mark.parametrize("group_by", ["premises", "premises,weekday", "premises,hour"])
def test_a_usage_page_holds_the_previous_figures_of_its_own_groups(
    history: Api, group_by: str
) -> None:
    url = usage_url(history, f"{PERIOD}&group_by={group_by}&limit=2")
    for page in walk(history, url, role="analyst"):
        keys = [r["key"] for r in page["rows"]]
        assert keys == [r["key"] for r in page["previous"]["rows"]]


def test_usage_months_are_matched_by_their_place_in_the_period(history: Api) -> None:
    url = usage_url(history, f"{PERIOD}&group_by=month&limit=1")
    bodies = walk(history, url, role="analyst")
    months = [
        ([r["key"]["month"] for r in b["rows"]], [r["key"]["month"] for r in b["previous"]["rows"]])
        for b in bodies
    ]
    assert months == [
        (["2025-06"], ["2024-12"]),
        (["2025-07"], ["2025-01"]),
        (["2025-08"], ["2025-02"]),
        (["2025-09"], ["2025-03"]),
        (["2025-10"], ["2025-04"]),
        ([], ["2025-05"]),  # the previous period reaches into one month more
    ]


def test_usage_walks_on_past_premises_added_between_pages(history: Api) -> None:
    def meanwhile(page: int) -> None:
        if page == 1:  # after "kerho": one premises before the cursor, one after
            history.premises("aaa")
            history.premises("zzz")
            runner.catch_up(history.engine, clock=system_clock)

    url = usage_url(history, f"{PERIOD}&group_by=premises&limit=1")
    bodies = walk(history, url, role="analyst", between=meanwhile)

    assert [r["key"]["premises"] for b in bodies for r in b["rows"]] == ["kerho", "sali", "zzz"]


def test_usage_csv_is_whole_and_refuses_paging(history: Api) -> None:
    url = usage_url(history, f"{PERIOD}&group_by=premises,week")
    as_csv = history.get(f"{url}&format=csv", role="analyst")
    assert as_csv.status_code == 200 and "Link" not in as_csv.headers
    page = history.get(f"{url}&limit=2", role="analyst").get_json()
    lines = as_csv.get_data(as_text=True).strip().splitlines()
    whole = history.get(url, role="analyst").get_json()
    assert len(lines) == 1 + len(whole["rows"]) + len(whole["previous"]["rows"])
    for query in ("limit=2", f"after={page['next']}", "limit=5&after=x"):
        refused = history.get(f"{url}&format=csv&{query}", role="analyst")
        assert_refused(refused, {part.split("=")[0] for part in query.split("&")})


@pytest.mark.parametrize(
    ("group_by", "query"),
    [
        *[("premises", q) for q in BAD_PAGING],
        ("premises", "limit=10001"),
        ("premises", f"after={cursor(['s', 'kerho'], ['i', 1])}"),  # a pair's cursor
        ("premises,weekday", f"after={cursor(['s', 'kerho'], ['s', 'mon'])}"),  # not a number
        ("month", f"after={cursor(['s', '2025-06'])}"),  # months are numbers in a cursor
        ("organisation_type,premises", f"after={cursor(['i', 1], ['s', 'x'])}"),
    ],
)
def test_bad_usage_paging_is_422(history: Api, group_by: str, query: str) -> None:
    response = history.get(f"{USAGE}?{PERIOD}&group_by={group_by}&{query}", role="analyst")
    assert_refused(response, {query.split("=")[0]})


# --- the OpenAPI document -----------------------------------------------------------------


def test_the_openapi_document_shows_the_four_lists_paged(api: Api) -> None:
    spec = api.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    result = "/api/v1/allocation-rounds/{round_id}/result"
    for path in (SEARCH, USAGE, result, ALLOCATION_STATS):
        get = spec["paths"][path]["get"]
        assert {"limit", "after"} <= {p["name"] for p in get["parameters"]}, path
        assert "Link" in get["responses"]["200"]["headers"], path
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert "next" in schemas[ref.rsplit("/", 1)[1]]["properties"], path
    for path in (USAGE, result, ALLOCATION_STATS):
        formats = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "format")
        assert "not paged" in formats["description"], path


def test_a_round_not_yet_published_has_no_result_to_page(api: Api, clock: Any) -> None:
    api.premises("gym")
    api.premises("hall")
    created = api.post("/api/v1/allocation-rounds", round_body(), role="staff")
    assert created.status_code == 201, created.get_json()
    missing = api.client.get(f"/api/v1/allocation-rounds/{created.get_json()['id']}/result?limit=1")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
