"""Shared set-up for the page tests (no tests here): people with passwords, premises, and a
test client that fills in forms with the CSRF token the page gave it, as a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from booking import accounts
from booking.pages import signin
from events.sql import write_transaction
from tests.conftest import Api

PASSWORD = "salasana-123"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = _CSRF.search(page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def post_form(client: FlaskClient, path: str, data: dict[str, Any], page: str = "/login") -> Any:
    """POST a form the way a browser does: with the token from a page of the same session."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    response = post_form(client, "/login", {"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


class Site:
    """People (one per role) with known e-mail addresses, and the Api helper for set-up."""

    def __init__(self, app: Flask, api: Api) -> None:
        self.app, self.api = app, api
        self.emails: dict[str, str] = {}
        for role in ("booker", "staff", "analyst", "resident", "other_booker"):
            organisation = {
                "booker": api.organisation_id,
                "other_booker": api.other_organisation_id,
            }.get(role)
            email = f"{role.replace('_', '-')}@example.fi"
            with write_transaction(api.engine) as conn:
                created = accounts.create_user(
                    conn,
                    email=email,
                    name=f"Test {role}",
                    role="booker" if role == "other_booker" else role,
                    organisation_id=organisation,
                    password=PASSWORD,
                )
            self.emails[role] = email
            setattr(self, f"{role}_id", created.user_id)

    def client(self, role: str | None = None, lang: str | None = None) -> FlaskClient:
        client = self.app.test_client()
        if lang:
            client.get(f"/?lang={lang}")
        if role:
            sign_in(client, self.emails[role])
        return client


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """The sign-in limiter counts per process: every test starts from zero."""
    for limiter in (
        signin.failures_per_email,
        signin.failures_per_client,
        signin.links_per_client,
    ):
        limiter._hits.clear()
    yield


@pytest.fixture
def site(app: Flask, api: Api) -> Site:
    return Site(app, api)
