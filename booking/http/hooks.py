"""Hooks the app registers: domain errors and HTTP errors as problems, hostile input refused."""

from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy.exc import OperationalError

from booking.domain.errors import (
    DomainError,
)
from booking.http.guards import refuse_nul_characters, refuse_unreadable_json
from booking.http.problems import log, outcome_of_error, problem
from booking.http.writes import respond
from booking.service import (
    Busy,
    IdempotencyKeyReused,
)


def register_error_handlers(app: Flask) -> None:
    app.before_request(refuse_unreadable_json)
    app.before_request(refuse_nul_characters)

    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        return respond(outcome_of_error(error))

    @app.errorhandler(IdempotencyKeyReused)
    def _reused(error: IdempotencyKeyReused) -> Response:
        return problem(
            422,
            "Idempotency-Key reused",
            "This key was already used for a different request.",
            errors={"Idempotency-Key": ["Already used for a different request."]},
        )

    @app.errorhandler(Busy)
    def _busy(error: Busy) -> Response:
        return problem(503, "Busy", str(error), headers={"Retry-After": "1"})

    @app.errorhandler(OverflowError)
    def _out_of_range(error: OverflowError) -> Response:
        # A number or date past what the database or the calendar holds (year 0, 10**30):
        # the request's fault, which a field without bounds let through — never a 500.
        log.warning("out of range on %s %s: %s", request.method, request.path, error)
        return problem(422, "Out of range", "A number or date in the request is out of range.")

    @app.errorhandler(OperationalError)
    def _database_down(error: OperationalError) -> Response:
        log.warning("database unavailable: %s", error.orig)
        return problem(
            503, "Service unavailable", "The database did not answer.", headers={"Retry-After": "2"}
        )
