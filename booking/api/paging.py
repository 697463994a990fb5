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


def limit_field(default: int = 100, most: int = MAX_LIMIT) -> fields.Integer:
    """A list's `limit`: rows per page, 1 to `most`, `default` when not given."""
    return fields.Integer(
        load_default=default,
        validate=validate.Range(1, most),
        metadata={"description": f"Rows per page (1–{most}, default {default})."},
    )


class PageQuery(ma.Schema):
    """`limit` and `after`: a list's query schema inherits it (and adds its filters)."""

    limit = limit_field()
    after = fields.String(validate=validate.Length(1, 500), metadata={"description": AFTER_DOC})


def page_request(query: dict[str, Any]) -> PageRequest:
    return PageRequest.of(query.get("limit"), query.get("after"))


def page_headers(page: Page[Any]) -> dict[str, str]:
    """The `Link` header for a page answered to the current request."""
    return link_header(request.url, page.next)


CSV_IS_WHOLE = "A CSV download is one whole file: `limit` and `after` page the JSON only."


def csv_format_field(what: str) -> fields.String:
    """`format`: `json` (paged) or `csv`, `what` as one whole file (`csv_is_whole`)."""
    return fields.String(
        load_default="json",
        validate=validate.OneOf(["json", "csv"]),
        metadata={
            "description": f"`csv`: {what} as one CSV file (UTF-8, header row), not paged; "
            "`limit` and `after` are then refused (422)."
        },
    )


def csv_is_whole(query: dict[str, Any]) -> bool:
    """Whether the request asks for CSV (`format=csv`): a CSV download is one whole file, so
    `limit` or `after` with it is a 422 on that field rather than ignored."""
    if query.get("format") != "csv":
        return False
    if paging := [k for k in ("limit", "after") if k in request.args]:
        raise RuleBroken({k: [CSV_IS_WHOLE] for k in paging})
    return True
