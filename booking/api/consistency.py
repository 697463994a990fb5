"""Reads from asynchronous projections: `X-Log-Position` and `?min_position=N` (API.md).

A response says which log position its projection reflected when it was read; a client that
has just written (and got the position of its write, e.g. from /api/v1/events) can ask the
read to wait until the projection has caught up that far. The wait is bounded: past
`MAX_WAIT_SECONDS` the answer is 503 with Retry-After rather than silently older data.
"""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from booking.http import problem, runtime
from projections import runner

MAX_WAIT_SECONDS = 3.0


class NotCaughtUp(Exception):
    def __init__(self, projection: str, wanted: int, reached: int) -> None:
        super().__init__(f"{projection} reflects the log up to {reached}, not yet {wanted}")
        self.reached = reached


def reflected_position(projection: str, min_position: int | None) -> int:
    """The position projection `projection` reflects, after waiting for `min_position`."""
    engine = runtime().engine
    if min_position is None:
        return runner.position_of(engine, projection)
    reached = runner.wait_for(engine, projection, min_position, MAX_WAIT_SECONDS)
    if reached < min_position:
        raise NotCaughtUp(projection, min_position, reached)
    return reached


def handle_not_caught_up(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(NotCaughtUp)
    def _not_yet(error: NotCaughtUp) -> Response:
        return problem(
            503,
            "Not caught up yet",
            f"{error} Try again shortly.",
            headers={"Retry-After": "1", "X-Log-Position": str(error.reached)},
        )
