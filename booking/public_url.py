"""The service's own absolute addresses: under BOOKING_PUBLIC_URL when it is set (behind a
reverse proxy the request's scheme and host are the proxy's hop, not what people use),
else the request's own scheme and host. Feed links, sign-in links and the OpenID Connect
callback all take their base from here (README: Configuration)."""

from __future__ import annotations

from flask import current_app, request


def base_url() -> str:
    """`https://tilat.example.fi` (no trailing slash)."""
    public = (current_app.config.get("BOOKING_PUBLIC_URL") or "").strip().rstrip("/")
    return public or request.host_url.rstrip("/")


def public_url(path: str) -> str:
    """`path` (as url_for gives it) made absolute on the public base."""
    return base_url() + path


def with_scheme(url: str, scheme: str) -> str:
    """`url` with its scheme replaced (`webcal`, `https`)."""
    return f"{scheme}://{url.split('://', 1)[-1]}"
