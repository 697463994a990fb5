"""problem+json (RFC 9457): the one place where domain refusals and HTTP errors become statuses."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Response, current_app, has_app_context, request
from werkzeug.exceptions import HTTPException

from booking import oidc
from booking.domain.errors import (
    Conflict,
    DomainError,
    InvalidState,
    NotAllowed,
    NotFound,
    RuleBroken,
    SlotTaken,
    StaleVersion,
    StrongIdentityRequired,
)
from booking.http.runtime import iso, json_response
from booking.service import (
    Outcome,
)

log = logging.getLogger(__name__)


PROBLEM = "application/problem+json"


class ProblemSchema(ma.Schema):
    """What every error body looks like (RFC 9457), for the OpenAPI document only."""

    class Meta:
        unknown = ma.INCLUDE  # problems may carry extension members

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(metadata={"description": "field → messages (422)"})
    conflicts = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "what a booking meets (409)"}
    )


def problem_body(
    status: int, title: str, detail: str = "", type_: str = "about:blank", **extra: Any
) -> dict[str, Any]:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return body


# RFC 9457: with `about:blank` the title is the status phrase; a refusal of our own domain has
# a type of its own, so clients can tell "slot taken" from any other 409.
PROBLEM_TYPE = "urn:tilavaraus:problem:"


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    headers = extra.pop("headers", None)
    response = json_response(problem_body(status, title, detail, **extra), status, headers)
    response.mimetype = PROBLEM
    return response


def conflict_json(conflict: Conflict, zone: ZoneInfo | None = None) -> dict[str, Any]:
    """`{start, end, kind}` in `zone`'s offset, and `via` when another premises sharing a
    space holds it."""
    found = {"start": iso(conflict.slot.start, zone), "end": iso(conflict.slot.end, zone)}
    found["kind"] = conflict.kind
    if conflict.via is not None:
        found["via"] = conflict.via
    return found


def _strong_identity_hint() -> str:
    """What a person refused for want of strong identification can do here: sign in through
    the identification service only where OpenID Connect is configured (API.md), else ask
    staff, who may act on their behalf."""
    if has_app_context() and oidc.Settings.of(current_app.config) is not None:
        return "Sign in through the identification service (/auth/oidc/login) with a strong method."
    return (
        "This service has no identification service configured: ask the city staff to book"
        " on your behalf."
    )


def outcome_of_error(error: DomainError) -> Outcome:
    """The one place where domain refusals become HTTP statuses."""
    match error:
        case RuleBroken(problems=problems):
            return Outcome(
                422,
                problem_body(
                    422,
                    "A rule is broken",
                    str(error),
                    PROBLEM_TYPE + "rule-broken",
                    errors=problems,
                ),
            )
        case SlotTaken(conflicts=conflicts, zone=zone):
            return Outcome(
                409,
                problem_body(
                    409,
                    "The slot is taken",
                    "The time overlaps another booking (buffer included).",
                    PROBLEM_TYPE + "slot-taken",
                    conflicts=[conflict_json(c, zone) for c in conflicts],
                ),
            )
        case StaleVersion(current=current):
            return Outcome(
                412,
                problem_body(
                    412,
                    "Stale version",
                    str(error),
                    PROBLEM_TYPE + "stale-version",
                    current_version=current,
                ),
                {"ETag": f'"{current}"'},
            )
        case NotFound():
            return Outcome(404, problem_body(404, "Not found", str(error)))
        case StrongIdentityRequired():
            return Outcome(
                403,
                problem_body(
                    403,
                    "Strong identification required",
                    f"{error} {_strong_identity_hint()}",
                    PROBLEM_TYPE + "strong-identity-required",
                ),
            )
        case NotAllowed():
            return Outcome(403, problem_body(403, "Forbidden", str(error)))
        case InvalidState():
            return Outcome(
                409, problem_body(409, "Conflict", str(error), PROBLEM_TYPE + "invalid-state")
            )
    return Outcome(400, problem_body(400, "Bad request", str(error)))


def http_problem(error: HTTPException) -> Response:
    """Every HTTP error as problem+json, with webargs' field errors flattened to `errors`."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    extra: dict[str, Any] = {}
    messages = data.get("messages") or data.get("errors")
    if messages:
        flat: dict[str, list[str]] = {}
        for location, found in messages.items():
            # webargs keys messages by location (json, query, …); a field's path says enough.
            _flatten_errors(found if isinstance(found, dict) else {location: found}, flat)
        extra["errors"] = flat
    if status >= 500:
        log.error("server error on %s %s", request.method, request.path, exc_info=error)
        detail = "Something went wrong on our side; it has been logged."
    else:
        detail = data.get("message") or error.description or ""
    # The exception's own headers carry WWW-Authenticate (401) and Allow (405).
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return problem(status, error.name, str(detail), headers=headers or None, **extra)


def _flatten_errors(found: dict[str, Any], into: dict[str, list[str]]) -> None:
    """marshmallow's messages as API.md's `{field: [messages]}`: each top-level field keeps
    its key (the same keys the domain's refusals use, so a client maps every 422 to the
    same form field), and the messages of fields nested inside it lead with their path there,
    as in `{"rules": ["min_duration_minutes: Not a valid integer."], "opening_hours":
    ["mon.0.1: …"]}`. A Dict field's `key` and `value` levels and a nested schema's
    `_schema` name no field and add nothing to the path."""
    for field, inner in found.items():
        into.setdefault(str(field), []).extend(_messages(inner, ""))


def _messages(found: Any, path: str) -> list[str]:
    if not isinstance(found, dict):
        items = found if isinstance(found, list) else [found]
        return [f"{path}: {m}" if path else str(m) for m in items]
    flat: list[str] = []
    for key, inner in found.items():
        same = key in ("_schema", "key", "value")
        flat += _messages(inner, path if same else f"{path}.{key}" if path else str(key))
    return flat
