"""`project_inline` hands events only to the projections that handle one of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from events.catalog import BookingCancelled, Event, PopupExpired
from projections.base import Projection, handles
from projections.runner import project_inline


class Spy(Projection):
    name = "spy"
    tables = ()
    inline = True

    def __init__(self) -> None:
        self.given: list[list[str]] = []

    @handles(BookingCancelled)
    def cancelled(self, conn: Any, e: BookingCancelled, rec: Any) -> None:
        raise AssertionError("apply_all is replaced here")

    def apply_all(self, conn: Any, pairs: Sequence[tuple[Event, Any]]) -> None:
        self.given.append([type(e).__name__ for e, _ in pairs])


AT = datetime(2026, 11, 28, tzinfo=UTC)
CANCELLED = BookingCancelled("p", "b", "u", "r", False, AT)
EXPIRED = PopupExpired("p", "q", AT)


def test_a_projection_that_handles_none_of_the_events_is_passed_over() -> None:
    spy = Spy()
    project_inline(None, [(EXPIRED, None), (EXPIRED, None)], [spy])  # type: ignore[arg-type, list-item]
    assert spy.given == []


def test_a_projection_that_handles_one_of_them_gets_them_all_in_order() -> None:
    spy = Spy()
    pairs = [(EXPIRED, None), (CANCELLED, None)]
    project_inline(None, pairs, [spy])  # type: ignore[arg-type]
    assert spy.given == [["PopupExpired", "BookingCancelled"]]
