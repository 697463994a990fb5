"""Paging in the OpenAPI document and on the wire: the `limit`/`after` query fields, the
`next` body field and the `Link` header (the paging itself: booking.queries.paging)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from booking.domain.errors import RuleBroken
from booking.queries.paging import MAX_LIMIT, Page, PageRequest, link_header

AFTER_DOC = (
    "Cursor from the previous page's `next` (opaque: pass it back as it is). "
    "The list is ordered; a page continues right after the cursor's row."
)
NEXT_DOC = (
    "The cursor of the next page (pass it as `after`), or null on the last page. The same "
    'URL is in the `Link: <…>; rel="next"` header.'
)


# The `Link` header as the OpenAPI document declares it on every paged list.
LINK_HEADER = {
    "Link": {
        "description": 'The next page, `<URL>; rel="next"`; absent on the last page.',
        "schema": {"type": "string"},
    }
}


def next_field() -> fields.String:
    return fields.String(allow_none=True, required=True, metadata={"description": NEXT_DOC})


class PageQuery(ma.Schema):
    """`limit` and `after`: a list's query schema inherits it (and adds its filters)."""

    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Rows per page (1–{MAX_LIMIT}, default 100)."},
    )
    after = fields.String(validate=validate.Length(1, 500), metadata={"description": AFTER_DOC})


def page_request(query: dict[str, Any]) -> PageRequest:
    return PageRequest.of(query.get("limit"), query.get("after"))


def page_headers(page: Page[Any]) -> dict[str, str]:
    """The `Link` header for a page answered to the current request."""
    return link_header(request.url, page.next)


def csv_is_whole(query: dict[str, Any], what: str) -> bool:
    """Whether the request asks for CSV (`format=csv`): a CSV download is one whole file, so
    `limit` or `after` with it is a 422 on that field. `what`: the download, for the message."""
    if query.get("format") != "csv":
        return False
    if paging := [k for k in ("limit", "after") if k in request.args]:
        problem = f"The CSV download is {what} whole: `limit` and `after` page the JSON only."
        raise RuleBroken({k: [problem] for k in paging})
    return True
