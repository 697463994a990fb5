"""Paging over HTTP on both databases (API.md conventions): `?limit=` and `?after=`, `next`
in the body (null at the end) and `Link: <…>; rel="next"`; the pages together are the
whole list in order, and a list is never cut without a `next`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.conftest import Api, future_weekday, local
from tests.integration.test_popups_api import ALWAYS_OPEN, POPUP_RULES, ask


def follow(api: Api, first: str, key: str, role: str) -> list[list[str]]:
    """The ids of each page, following the Link header from `first` to the end."""
    pages: list[list[str]] = []
    url: str | None = first
    while url is not None:
        response = api.get(url, role=role)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        pages.append([item["id"] for item in body[key]])
        link = response.headers.get("Link")
        if body["next"] is None:
            assert link is None
            url = None
        else:
            assert link is not None and link.endswith('>; rel="next"')
            target = urlsplit(link[1 : link.index(">")])
            assert f"after={body['next']}" in target.query
            url = f"{target.path}?{target.query}"
        assert len(pages) < 10
    return pages


def test_bookings_come_in_pages_that_add_up_to_the_whole_list(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    ids = [
        api.book("room", local(day, h), local(day, h + 1)).get_json()["id"] for h in range(9, 14)
    ]

    pages = follow(api, "/api/v1/bookings?limit=2&premises_id=room", "bookings", "booker")

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == ids  # by start, nothing twice or left out
    whole = api.get("/api/v1/bookings", role="booker").get_json()
    assert [b["id"] for b in whole["bookings"]] == ids and whole["next"] is None


def test_a_last_page_that_is_exactly_full_says_there_is_no_more(api: Api) -> None:
    api.premises("room")
    day = future_weekday(2)
    for h in (9, 10):
        api.book("room", local(day, h), local(day, h + 1))
    assert follow(api, "/api/v1/bookings?limit=2", "bookings", "staff") == [
        [b["id"] for b in api.get("/api/v1/bookings", role="staff").get_json()["bookings"]]
    ]


def test_a_cursor_that_is_not_one_is_a_422_on_after(api: Api) -> None:
    for path in (
        "/api/v1/bookings?after=bm90LWEtY3Vyc29y",
        "/api/v1/popup-requests?after=%21%21",
    ):
        response = api.get(path, role="staff")
        assert response.status_code == 422, path
        assert response.mimetype == "application/problem+json"
        assert list(response.get_json()["errors"]) == ["after"]


def test_popup_requests_and_messages_are_paged_too(api: Api) -> None:
    api.premises("room", rules=POPUP_RULES, opening_hours=ALWAYS_OPEN)
    asked = [ask(api, hours=h).get_json()["id"] for h in (30, 33, 36)]
    popup_pages = follow(api, "/api/v1/popup-requests?limit=2", "popup_requests", "staff")
    assert [len(p) for p in popup_pages] == [2, 1]
    assert sorted(i for page in popup_pages for i in page) == sorted(asked)

    thread = f"/api/v1/popup-requests/{asked[0]}/messages"
    posted = []
    for n in range(3):
        reply = api.post(thread, {"body": f"Viesti {n}"}, role="staff")
        assert reply.status_code == 201, reply.get_json()
        posted.append(reply.get_json()["id"])
    message_pages = follow(api, f"{thread}?limit=2", "messages", "resident")
    assert message_pages == [posted[:2], posted[2:]]
