"""Paging of GET /api/v1/premises and GET /api/v1/feed-tokens (API.md conventions: `limit`,
`after`, `next`, `Link`; a list is never cut silently)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


def pages(api: Api, path: str, key: str, role: str | None = None) -> list[list[str]]:
    """Follow `next` from `path` to the end; each page's ids."""
    found: list[list[str]] = []
    url: str | None = path
    while url is not None:
        response = api.get(url, role=role)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        found.append([item["id"] for item in body[key]])
        if body["next"] is None:
            assert "Link" not in response.headers
            url = None
        else:
            link = response.headers["Link"]
            assert link.endswith('>; rel="next"') and f"after={body['next']}" in link
            url = link[1 : link.index(">")].removeprefix("http://localhost")
        assert len(found) < 10
    return found


def test_premises_are_paged_by_id(api: Api) -> None:
    for premises_id in ("c-room", "a-room", "e-room", "b-room", "d-room"):
        api.premises(premises_id)
    assert pages(api, "/api/v1/premises?limit=2", "premises") == [
        ["a-room", "b-room"],
        ["c-room", "d-room"],
        ["e-room"],
    ]
    # Filters hold across pages; the default page holds a whole city's catalogue.
    assert pages(api, "/api/v1/premises?limit=1&q=room&min_capacity=1", "premises") == [
        ["a-room"],
        ["b-room"],
        ["c-room"],
        ["d-room"],
        ["e-room"],
    ]
    assert pages(api, "/api/v1/premises", "premises") == [
        ["a-room", "b-room", "c-room", "d-room", "e-room"]
    ]


def test_feed_tokens_are_paged_oldest_first(api: Api, clock: Any) -> None:
    api.premises("room")
    made = []
    for _ in range(3):
        created = api.post("/api/v1/feed-tokens", {"scope": {"premises": ["room"]}}, role="staff")
        assert created.status_code == 201
        made.append(created.get_json()["id"])
        clock.shift(60)
    assert pages(api, "/api/v1/feed-tokens?limit=2", "feed_tokens", role="staff") == [
        made[:2],
        made[2:],
    ]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=many", "after=not-a-cursor", "after=W1siaSIsMV1d"],
)
def test_bad_paging_is_422(api: Api, query: str) -> None:
    for path in ("/api/v1/premises", "/api/v1/feed-tokens"):
        response = api.get(f"{path}?{query}", role="staff")
        assert response.status_code == 422, (path, query, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert query.split("=")[0] in response.get_json()["errors"]
