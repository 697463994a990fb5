"""Reads from asynchronous projections: `X-Log-Position` and `?min_position=N` (API.md).

A response says which log position its projection reflected when it was read; a client that
has just written (and got the position of its write, e.g. from /api/v1/events) can ask the
read to wait until the projection has caught up that far. A position the log has not reached
is the client's mistake, not a wait: 422 at once (issue 14.1: such reads used to hold a
thread for the whole wait and answer 503, so clients retried forever) -- on every read of
the API, also those of inline projections, which are always current and so have nothing
else to wait for (`refuse_unreached_position`). A position the log
has reached but the projection not yet is waited for, boundedly: past `MAX_WAIT_SECONDS` the
answer is 503 with Retry-After rather than silently older data.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response, request

from booking.api.blueprint import Blueprint
from booking.domain.errors import RuleBroken
from booking.http import problem, runtime
from events.sql import read_transaction
from events.store import head_position
from projections import runner

MAX_WAIT_SECONDS = 3.0
# Positions are 64-bit signed integers in both databases: a larger number names none.
MAX_POSITION = 2**63 - 1


def min_position_field() -> ma.fields.Integer:
    """The `?min_position=` query field, bounded as the log's positions are."""
    return ma.fields.Integer(
        validate=ma.validate.Range(0, MAX_POSITION),
        metadata={
            "description": "Wait (at most 3 s) until the answer reflects this log position; "
            "a position beyond the log's head is 422 at once."
        },
    )


class NotCaughtUp(Exception):
    def __init__(self, projection: str, wanted: int, reached: int) -> None:
        super().__init__(f"{projection} reflects the log up to {reached}, not yet {wanted}")
        self.reached = reached


def reflected_position(projection: str, min_position: int | None) -> int:
    """The position projection `projection` reflects, after waiting for `min_position`."""
    engine = runtime().engine
    if min_position is None:
        return runner.position_of(engine, projection)
    with read_transaction(engine) as conn:
        head = head_position(conn)
    if min_position > head:
        raise RuleBroken(
            {"min_position": [f"The log has reached position {head}; ask for at most that."]}
        )
    reached = runner.wait_for(engine, projection, min_position, MAX_WAIT_SECONDS)
    if reached < min_position:
        raise NotCaughtUp(projection, min_position, reached)
    return reached


def refuse_unreached_position() -> None:
    """Before any API read that does not itself wait (`reflected_position`): a `min_position`
    that is no position, or one the log has not reached, is 422 at once; one it has reached
    is met already (the read is always current)."""
    given = request.args.get("min_position")
    if given is None or request.method not in ("GET", "HEAD"):
        return
    if not given.isascii() or not given.isdigit() or int(given) > MAX_POSITION:
        raise RuleBroken({"min_position": [f"A log position: 0 to {MAX_POSITION}."]})
    with read_transaction(runtime().engine) as conn:
        head = head_position(conn)
    if int(given) > head:
        raise RuleBroken(
            {"min_position": [f"The log has reached position {head}; ask for at most that."]}
        )


def handle_not_caught_up(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(NotCaughtUp)
    def _not_yet(error: NotCaughtUp) -> Response:
        return problem(
            503,
            "Not caught up yet",
            f"{error} Try again shortly.",
            headers={"Retry-After": "1", "X-Log-Position": str(error.reached)},
        )
