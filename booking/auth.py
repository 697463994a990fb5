"""Who is asking: a bearer token (API clients) or a server-side session (browsers).

A session is found by its cookie (booking.sessions keeps it in the database). Pages and
same-origin scripts may call /api/v1 with the cookie; a write made that way must carry the
page's CSRF token in `X-CSRF-Token`, so another site cannot make the browser write.
The cookie is HttpOnly, SameSite=Lax, Secure over https, and a new one is made at every
sign-in (the old session, if any, ends: no fixation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from booking import sessions
from booking.accounts import User, user_by_id, user_by_token
from booking.http import new_id, now, runtime, statement_reads
from events.sql import write_transaction

F = TypeVar("F", bound=Callable[..., Any])
COOKIE = "tilavaraus_sid"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Identity:
    user: User
    session: sessions.Session | None  # None for a bearer token


def _from_cookie() -> Identity | None:
    secret = request.cookies.get(COOKIE)
    if not secret or len(secret) > 200:
        return None
    instant = now()
    engine = runtime().engine
    with statement_reads(engine) as conn:
        found = sessions.find(conn, secret, instant)
        if found is None:
            g.forget_session_cookie = True
            return None
        user = user_by_id(conn, found.user_id)
    if sessions.due_for_touch(found, instant):
        with write_transaction(engine) as conn:
            sessions.touch(conn, found.id, instant)
    return Identity(user, found)


def identity() -> Identity | None:
    """The caller: a bearer token wins over the cookie (API clients send no cookie)."""
    if "identity" not in g:
        g.identity = None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            # Its own read, before the request's work: without BEGIN and COMMIT on PostgreSQL.
            with statement_reads(runtime().engine) as conn:
                user = user_by_token(conn, token.strip())
            g.identity = Identity(user, None) if user else None
        elif COOKIE in request.cookies:
            g.identity = _from_cookie()
            if g.identity is not None and request.path.startswith("/api/"):
                _check_csrf_for_cookie_write()
    found: Identity | None = g.identity
    return found


def _check_csrf_for_cookie_write() -> None:
    if request.method in UNSAFE_METHODS:
        from booking.security import csrf  # the pages' CSRF protection, one token for both

        csrf.protect()


def current_user() -> User | None:
    found = identity()
    return None if found is None else found.user


def current_session() -> sessions.Session | None:
    found = identity()
    return None if found is None else found.session


def signed_in_strongly() -> bool:
    """Whether the current session began with a strong sign-in (never for a bearer token)."""
    session = current_session()
    return session is not None and session.strong


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


# --- beginning and ending a browser's session ---------------------------------------------


def begin_session(user: User, method: str, strong: bool = False, acr: str | None = None) -> None:
    """Sign the browser in as `user`: a new session and a new cookie (set after the view);
    the browser's previous session, if any, ends (rotation at sign-in)."""
    instant = now()
    previous = current_session()
    with write_transaction(runtime().engine) as conn:
        if previous is not None:
            sessions.end(conn, previous.id, instant)
        made = sessions.start(conn, user.id, instant, new_id(), method, strong, acr)
    g.identity = Identity(user, made.session)
    g.new_session_cookie = made.secret
    g.pop("forget_session_cookie", None)


def end_session() -> None:
    """Sign the browser out: its session ends now, and the cookie is removed."""
    session = current_session()
    if session is not None:
        with write_transaction(runtime().engine) as conn:
            sessions.end(conn, session.id, now())
    g.identity = None
    g.forget_session_cookie = True


def _cookie_secure(app: Flask) -> bool:
    return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def _set_cookie(response: Response) -> Response:
    app = current_app
    secret = g.get("new_session_cookie")
    if secret:
        # Max-Age (not an Expires computed from our clock) so the browser's own clock decides.
        response.set_cookie(
            COOKIE,
            secret,
            max_age=int(sessions.LIFETIME.total_seconds()),
            httponly=True,
            secure=_cookie_secure(app),
            samesite="Lax",
            path="/",
        )
    elif g.get("forget_session_cookie"):
        response.delete_cookie(
            COOKIE, httponly=True, secure=_cookie_secure(app), samesite="Lax", path="/"
        )
    return response


def init_app(app: Flask) -> None:
    app.after_request(_set_cookie)
