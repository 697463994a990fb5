"""HTTP plumbing shared by the blueprints: problem+json, domain errors → statuses, the
runtime (engine and premises cache) and the write helper that makes every write idempotent."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
import psycopg
from flask import Response, current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from booking.clock import Clock, Ids, random_ids, system_clock
from booking.domain.errors import (
    DomainError,
    InvalidState,
    NotAllowed,
    NotFound,
    RuleBroken,
    SlotTaken,
    StaleVersion,
)
from booking.privacy import Vault
from booking.service import (
    Busy,
    IdempotencyKey,
    IdempotencyKeyReused,
    Outcome,
    PremisesRepository,
    execute,
)
from booking.usecases.unit import Unit
from events.sql import read_transaction
from events.store import Metadata

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


@dataclass
class Runtime:
    engine: Engine
    premises: PremisesRepository
    vault: Vault
    clock: Clock = system_clock
    ids: Ids = random_ids


def runtime() -> Runtime:
    found: Runtime = current_app.extensions["tilavaraus"]
    return found


def now() -> datetime:
    """The app's clock: what a view hands to a handler as the time."""
    return runtime().clock()


def new_id() -> str:
    """A new id from the app's id source."""
    return runtime().ids()


@contextmanager
def statement_reads(engine: Engine) -> Iterator[Connection]:
    """A connection for reads whose every statement sees what is committed when it runs.

    On PostgreSQL that is what a READ COMMITTED transaction gives as well, so the statements
    run in autocommit: no BEGIN and COMMIT, two round trips per request saved. The
    connection goes back to the pool out of autocommit, or is discarded. Elsewhere (SQLite)
    it is a read transaction.
    """
    if engine.dialect.name != "postgresql":
        with read_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.autocommit = True  # a client-side flag: no round trip
        try:
            yield conn
        finally:
            if driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                driver.autocommit = False
            else:  # lost meanwhile: never hand it out again in autocommit
                conn.invalidate()


def iso(instant: datetime, zone: ZoneInfo | None = None) -> str:
    return instant.astimezone(zone).isoformat() if zone else instant.isoformat()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


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
                    conflicts=[
                        {
                            "start": iso(c.slot.start, zone),
                            "end": iso(c.slot.end, zone),
                            "kind": c.kind,
                        }
                        for c in conflicts
                    ],
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
        case NotAllowed():
            return Outcome(403, problem_body(403, "Forbidden", str(error)))
        case InvalidState():
            return Outcome(
                409, problem_body(409, "Conflict", str(error), PROBLEM_TYPE + "invalid-state")
            )
    return Outcome(400, problem_body(400, "Bad request", str(error)))


def respond(outcome: Outcome) -> Response:
    response = json_response(outcome.body, outcome.status, outcome.headers)
    if outcome.status >= 400:
        response.mimetype = PROBLEM
    return response


def correlation_id() -> str:
    """The client's X-Request-Id when it is short plain text, else one of ours: it is kept in
    every event's metadata (and PostgreSQL's JSONB refuses a NUL in it)."""
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    if g.get("request_id") in (None, given):
        g.request_id = new_request_id()
    found: str = g.request_id
    return found


def request_metadata(actor: str | None) -> Metadata:
    return Metadata(
        actor=actor,
        correlation_id=correlation_id(),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def unit_for(conn: Connection, actor: str | None) -> Unit:
    """What a use-case handler works in, for this request: the transaction's connection,
    the app's premises cache and vault, and the request's metadata."""
    rt = runtime()
    return Unit(conn, rt.premises, rt.vault, request_metadata(actor), rt.clock)


def write(actor: str, handler: Callable[[Connection], Outcome]) -> Response:
    """Run a command's handler in a retried write transaction; honour Idempotency-Key."""
    outcome = run_write(actor, handler)
    return outcome if isinstance(outcome, Response) else respond(outcome)


def run_write(actor: str, handler: Callable[[Connection], Outcome]) -> Outcome | Response:
    """`write` without the response: the outcome as stored for Idempotency-Key replays, for
    a caller that adds a secret shown only once (a problem response for a bad key)."""
    key = request.headers.get("Idempotency-Key")
    idempotency = None
    if key:
        if len(key) > 200 or not key.isprintable():
            return problem(400, "Bad Idempotency-Key", "At most 200 printable characters.")
        body = request.get_json(silent=True)
        idempotency = IdempotencyKey.of(actor, key, request.method, request.path, body, now())
    return execute(
        runtime().engine, handler, idempotency, outcome_of_error if idempotency else None
    )


def expected_version() -> int | None:
    """The version named by If-Match (`"3"`, `W/"3"` or `3`), or None without one."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise RuleBroken({"If-Match": ['Give the version as a number, e.g. "3".']})
    return int(text)


def check_if_match(expected: int | None, current: int) -> None:
    """412 unless If-Match, when sent, names `current`: for the writes the domain decides
    without a version (API.md: every resource that changes honours If-Match)."""
    if expected is not None and current != expected:
        raise StaleVersion(current)


def check_changed_once(expected: int | None, after: int) -> None:
    """After a command that changed the resource by one version: 412 unless it changed
    version `expected`, i.e. no other write came between the check above and the command
    (raising rolls the command back)."""
    if expected is not None and after != expected + 1:
        raise StaleVersion(after - 1)


def _nul_in(value: Any, where: str) -> str | None:
    """The name of the first field in a JSON value whose text holds a NUL character."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if not isinstance(value, dict | list):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        name = str(key) if where == "_schema" else f"{where}.{key}"
        if "\x00" in str(key):
            return name
        if found := _nul_in(item, name):
            return found
    return None


def refuse_nul_characters() -> Response | None:
    """PostgreSQL text cannot hold NUL, so a NUL anywhere in a request is refused up front
    (on both databases, so that they answer alike) instead of failing in the database."""
    message = ["Must not contain NUL characters."]
    if "\x00" in request.path:
        return problem(404, "Not Found", "No such resource.")
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return problem(422, "Unprocessable Entity", "NUL in the query.", errors={key: message})
    if request.is_json and request.content_length:
        field = _nul_in(request.get_json(silent=True), "_schema")
        if field is not None:
            return problem(422, "Unprocessable Entity", "NUL in the body.", errors={field: message})
    return None


MAX_JSON_DEPTH = 32  # our bodies nest four deep; past this a body is an attack, not data


def _unreadable(value: Any) -> str | None:
    """Why a parsed JSON body cannot be used: nested too deeply, or text with a lone
    surrogate (valid JSON, but not encodable as UTF-8 for either database)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nested deeper than {MAX_JSON_DEPTH} levels."
        texts: list[str] = []
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts.extend(item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        if any(not text.isascii() and _has_surrogate(text) for text in texts):
            return "Text must be valid Unicode (no lone surrogates)."
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_unreadable_json() -> Response | None:
    """Read a JSON body once, safely, before anything else does: the json module raises
    RecursionError on deep nesting and ValueError on numbers of thousands of digits, which
    would otherwise surface as 500s from the first code that parses the body."""
    if not request.is_json or not request.content_length:
        return None
    try:
        parsed = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        return problem(400, "Bad Request", "The body is not readable JSON.")
    reason = _unreadable(parsed)
    if reason is not None:
        return problem(400, "Bad Request", reason)
    return None


def register_error_handlers(app: Any) -> None:
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


def new_request_id() -> str:
    return str(uuid.uuid4())
