"""Browser security for the pages: session cookie settings, CSRF tokens, security headers and
a small sign-in rate limiter.

The JSON API under /api/ authenticates with bearer tokens only (never with the session
cookie), so a forged cross-site request cannot act as anyone there: CSRF is checked for every
other state-changing request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import timedelta

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BEARER_ONLY_PREFIXES = ("/api/",)

# No inline script or style anywhere (SVG charts use presentation attributes, not style).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https (or when configured)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_app(app: Flask) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="tilavaraus_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # Checked by hand below, so that bearer-only API calls need no token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=12 * 3600,
    )
    app.config.setdefault("SESSION_COOKIE_SECURE", False)
    app.session_interface = SessionInterface()
    csrf.init_app(app)

    @app.before_request
    def _check_csrf() -> None:
        if request.method in UNSAFE_METHODS and not request.path.startswith(BEARER_ONLY_PREFIXES):
            csrf.protect()

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


class RateLimiter:
    """At most `limit` attempts per key within `window` seconds, counted in this process.

    Enough for one server process; several workers each keep their own count, so the
    effective limit is multiplied by the number of workers.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> float:
        """Seconds to wait before `key` may try again (0 when it may try now)."""
        now = time.monotonic()
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) < self.limit:
                return 0.0
            return max(hits[0] + self.window - now, 1.0)

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
                for stale in [k for k, v in self._hits.items() if not v]:
                    del self._hits[stale]

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
