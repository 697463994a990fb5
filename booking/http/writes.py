"""Writes: a handler in a retried, idempotent transaction, with the request's metadata."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from flask import Response, current_app, request
from sqlalchemy.engine import Connection

from booking.http.guards import json_body
from booking.http.problems import PROBLEM, outcome_of_error, problem
from booking.http.runtime import json_response, new_request_id, now, runtime
from booking.service import (
    IdempotencyKey,
    Outcome,
    execute,
)
from booking.usecases.unit import Unit
from events.store import Metadata


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
    # Made when a write first asks (reads never do), one per request: in its environ.
    found: str | None = request.environ.get(_REQUEST_ID)
    if found is None:
        found = request.environ[_REQUEST_ID] = new_request_id()
    return found


_REQUEST_ID = "tilavaraus.request_id"


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


def write_no_content(actor: str, handler: Callable[[Connection], Outcome]) -> Response:
    """`write` for a handler that answers 204: a replay of its Idempotency-Key answers the
    same 204 (or the same refusal), not what the write would say now (API.md)."""
    outcome = run_write(actor, handler)
    if isinstance(outcome, Response):
        return outcome
    return Response(status=204) if outcome.status == 204 else respond(outcome)


def run_write(actor: str, handler: Callable[[Connection], Outcome]) -> Outcome | Response:
    """`write` without the response: the outcome as stored for Idempotency-Key replays, for
    a caller that adds a secret shown only once (a problem response for a bad key)."""
    key = request.headers.get("Idempotency-Key")
    idempotency = None
    if key:
        if len(key) > 200 or not key.isprintable():
            return problem(400, "Bad Idempotency-Key", "At most 200 printable characters.")
        body = json_body()
        idempotency = IdempotencyKey.of(actor, key, request.method, request.path, body, now())
    return execute(
        runtime().engine, handler, idempotency, outcome_of_error if idempotency else None
    )


def replayable_secret(purpose: str, actor: str, resource_id: str) -> str:
    """A new secret (a token, a feed link) that a replay of this request's Idempotency-Key
    can show again without keeping it anywhere (API.md: a replay returns the same body).

    Without a key: 32 random bytes. With one: HMAC-SHA256 under the app's secret key of the
    purpose, the actor, the resource's id and the key -- as unguessable as that key, never
    stored; a replay derives it again from the id its stored answer names. The service keeps
    only the secret's hash, as before."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return secrets.token_urlsafe(32)
    server_key = current_app.secret_key
    if isinstance(server_key, str):
        server_key = server_key.encode()
    if not server_key:
        raise RuntimeError("the app has no secret key")
    message = "\0".join((purpose, actor, resource_id, key)).encode()
    digest = hmac.new(server_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
