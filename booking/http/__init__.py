"""HTTP plumbing shared by the blueprints: problem+json, domain errors → statuses, the
runtime (engine and premises cache) and the write helper that makes every write idempotent.

A package along its seams: runtime (the app's runtime and the clock seam), problems
(problem+json), guards (If-Match, hostile input), writes (retried, idempotent transactions)."""

from __future__ import annotations

from booking.http.guards import (
    MAX_JSON_DEPTH,
    check_changed_once,
    check_if_match,
    expected_version,
    json_body,
    refuse_nul_characters,
    refuse_unreadable_json,
)
from booking.http.hooks import register_error_handlers
from booking.http.problems import (
    PROBLEM,
    PROBLEM_TYPE,
    ProblemSchema,
    _flatten_errors,
    conflict_json,
    http_problem,
    log,
    outcome_of_error,
    problem,
    problem_body,
)
from booking.http.runtime import (
    Runtime,
    iso,
    json_response,
    new_id,
    new_request_id,
    now,
    runtime,
    statement_reads,
)
from booking.http.writes import (
    correlation_id,
    replayable_secret,
    request_metadata,
    respond,
    run_write,
    unit_for,
    write,
    write_no_content,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "PROBLEM",
    "PROBLEM_TYPE",
    "ProblemSchema",
    "Runtime",
    "_flatten_errors",
    "check_changed_once",
    "check_if_match",
    "conflict_json",
    "correlation_id",
    "expected_version",
    "http_problem",
    "iso",
    "json_body",
    "json_response",
    "log",
    "new_id",
    "new_request_id",
    "now",
    "outcome_of_error",
    "problem",
    "problem_body",
    "refuse_nul_characters",
    "refuse_unreadable_json",
    "register_error_handlers",
    "replayable_secret",
    "request_metadata",
    "respond",
    "run_write",
    "runtime",
    "statement_reads",
    "unit_for",
    "write",
    "write_no_content",
]
