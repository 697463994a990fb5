"""Who is asking: bearer tokens for the API (sessions for pages come with the pages)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from booking.accounts import User, user_by_token
from booking.http import runtime, statement_reads

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User | None:
    if "user" not in g:
        g.user = None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            # Its own read, before the request's work: without BEGIN and COMMIT on PostgreSQL.
            with statement_reads(runtime().engine) as conn:
                g.user = user_by_token(conn, token.strip())
    user: User | None = g.user
    return user


def signed_in() -> User:
    user = current_user()
    if user is None:
        raise Unauthorized(
            "Sign in: send Authorization: Bearer <token>.",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "tilavaraus"}),
        )
    return user


def require(*roles: str) -> Callable[[F], F]:
    """401 without a valid token; 403 when the token's role is not one of `roles`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = signed_in()
            if roles and user.role not in roles:
                raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
