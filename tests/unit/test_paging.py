"""The keyset paging helper (booking/queries/paging.py): cursors round-trip, anything else
is a 422 on `after`, and the next page's URL keeps the other parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from booking.domain.errors import RuleBroken
from booking.queries.paging import (
    PageRequest,
    decode_cursor,
    encode_cursor,
    link_header,
    next_url,
)


def test_a_cursor_gives_back_the_values_it_was_made_of() -> None:
    values = (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), "b-1", 7)
    assert decode_cursor(encode_cursor(values)) == values
    assert decode_cursor(encode_cursor(values))[0].tzinfo is not None


@pytest.mark.parametrize(
    "bad",
    ["x", "!!!", encode_cursor([]), "W1sidCIsIjIwMjctMDMtMjhUMDE6MzA6MDAiXV0", "bnVsbA"],
)
def test_anything_but_a_cursor_is_refused_on_after(bad: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        decode_cursor(bad)
    assert list(refused.value.problems) == ["after"]


def test_a_page_request_decodes_its_cursor() -> None:
    cursor = encode_cursor(["a"])
    assert PageRequest.of(5, cursor) == PageRequest(5, ("a",))
    assert PageRequest.of(None, None).after is None


def test_the_next_url_replaces_after_and_keeps_the_rest() -> None:
    url = "http://x/api/v1/bookings?status=confirmed&after=old&limit=2"
    assert next_url(url, "new") == "http://x/api/v1/bookings?status=confirmed&limit=2&after=new"
    assert link_header(url, None) == {}
    assert link_header(url, "c") == {
        "Link": '<http://x/api/v1/bookings?status=confirmed&limit=2&after=c>; rel="next"'
    }
