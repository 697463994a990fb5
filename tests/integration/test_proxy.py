"""Behind a trusted reverse proxy the client's address, not the proxy's, is the client."""

from __future__ import annotations

from flask import request
from sqlalchemy import Engine

from booking.app import create_app


def _remote_addr_seen(engine: Engine, proxies: int) -> str:
    app = create_app({"ENGINE": engine, "SECRET_KEY": "t", "BOOKING_TRUSTED_PROXIES": proxies})

    @app.get("/__whoami")
    def whoami() -> str:
        return str(request.remote_addr)

    response = app.test_client().get(
        "/__whoami",
        headers={"X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    return response.get_data(as_text=True)


def test_forwarded_for_counts_only_with_a_trusted_proxy(engine: Engine) -> None:
    assert _remote_addr_seen(engine, proxies=0) == "127.0.0.1"
    assert _remote_addr_seen(engine, proxies=1) == "203.0.113.7"
