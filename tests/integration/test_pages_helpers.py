"""Shared set-up for the page tests (no tests here): people with passwords, premises, and a
test client that fills in forms with the CSRF token the page gave it, as a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from booking import accounts
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
    """People with known e-mail addresses (made on first use), and the Api helper."""

    ORGANISATION = {"booker": "organisation_id", "other_booker": "other_organisation_id"}

    def __init__(self, app: Flask, api: Api) -> None:
        self.app, self.api = app, api
        self.ids: dict[str, str] = {}

    def email(self, role: str) -> str:
        return f"{role.replace('_', '-')}@example.fi"

    def user_id(self, role: str) -> str:
        if role not in self.ids:
            organisation = (
                getattr(self.api, self.ORGANISATION[role], None)
                if role in self.ORGANISATION
                else None
            )
            with write_transaction(self.api.engine) as conn:
                created = accounts.create_user(
                    conn,
                    email=self.email(role),
                    name=f"Test {role}",
                    role="booker" if role == "other_booker" else role,
                    organisation_id=organisation,
                    password=PASSWORD,
                )
            self.ids[role] = created.user_id
        return self.ids[role]

    def client(self, role: str | None = None, lang: str | None = None) -> FlaskClient:
        client = self.app.test_client()
        if lang:
            client.get(f"/?lang={lang}")
        if role:
            self.user_id(role)
            sign_in(client, self.email(role))
        return client


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passwords are hashed with the cheapest Argon2 settings here (verification reads them
    from the hash). Sign-in limits live in each test's own fresh database."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    yield


@pytest.fixture
def site(app: Flask, api: Api) -> Site:
    return Site(app, api)
