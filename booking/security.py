"""Browser security for the pages: cookie settings, CSRF tokens and security headers.

Every state-changing page request must carry the CSRF token. Under /api/ a bearer token needs
none (a cross-site request cannot send one); a write made there with the session cookie is
checked by booking.auth, against the same token (header `X-CSRF-Token`).
Sign-in limits are in booking.limits, sessions in booking.sessions.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
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

# Every response carries these unless the view set its own: (lower-case name, name, value).
SECURITY_HEADERS = tuple(
    (name.lower(), name, value)
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    )
)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over https (or when configured)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Without the cookie the session starts empty: no signer made for nothing (API
        # clients send no cookie; Flask's own would build its serializer on every request).
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


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
        present = {name.lower() for name, _ in headers}
        for lower, name, value in SECURITY_HEADERS:
            if lower not in present:  # a view's own value stands
                headers.add(name, value)
        if request.is_secure and "strict-transport-security" not in present:
            headers.add("Strict-Transport-Security", "max-age=31536000")
        if response.status_code == 204:  # no content, so no type (not Flask's text/html)
            headers.remove("Content-Type")
        return response
