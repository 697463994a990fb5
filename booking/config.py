"""Configuration from the environment, with the defaults the README documents."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULT_INSTANCE = Path.cwd() / "instance"


def from_environment() -> dict[str, Any]:
    instance = Path(os.environ.get("BOOKING_INSTANCE_PATH", DEFAULT_INSTANCE))
    return {
        "BOOKING_DATABASE_URL": os.environ.get(
            "BOOKING_DATABASE_URL", f"sqlite:///{instance / 'tilavaraus.sqlite'}"
        ),
        "SECRET_KEY": os.environ.get("BOOKING_SECRET_KEY") or _instance_secret(instance),
        "BOOKING_TIMEZONE": os.environ.get("BOOKING_TIMEZONE", "Europe/Helsinki"),
        "BOOKING_SMTP_URL": os.environ.get("BOOKING_SMTP_URL"),
        "BOOKING_MAIL_FROM": os.environ.get("BOOKING_MAIL_FROM", "tilavaraus@localhost"),
        "BOOKING_RUN_SCHEDULER": os.environ.get("BOOKING_RUN_SCHEDULER", "1") == "1",
        "BOOKING_INSTANCE_PATH": str(instance),
        # How many reverse proxies stand in front and append to X-Forwarded-For: sign-in
        # rate limits then count the client's address, not the proxy's.
        "BOOKING_TRUSTED_PROXIES": int(os.environ.get("BOOKING_TRUSTED_PROXIES", "0")),
        # OpenID Connect sign-in (booking.oidc); unset issuer or client id: passwords only.
        "BOOKING_OIDC_ISSUER": os.environ.get("BOOKING_OIDC_ISSUER", ""),
        "BOOKING_OIDC_CLIENT_ID": os.environ.get("BOOKING_OIDC_CLIENT_ID", ""),
        "BOOKING_OIDC_CLIENT_SECRET": os.environ.get("BOOKING_OIDC_CLIENT_SECRET", ""),
        "BOOKING_OIDC_STRONG_ACR": os.environ.get("BOOKING_OIDC_STRONG_ACR", ""),
        # A provider claim that maps to roles, and how (`value=role,…`); both unset: an
        # admin assigns every role (booking.oidc.Settings).
        "BOOKING_OIDC_ROLE_CLAIM": os.environ.get("BOOKING_OIDC_ROLE_CLAIM", ""),
        "BOOKING_OIDC_ROLE_MAP": os.environ.get("BOOKING_OIDC_ROLE_MAP", ""),
        "BOOKING_PUBLIC_URL": os.environ.get("BOOKING_PUBLIC_URL", ""),
    }


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so sessions survive a restart."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
