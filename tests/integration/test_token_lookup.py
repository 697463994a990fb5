"""The API token lookup (booking/accounts.py `user_by_token` through booking/http/
`statement_reads`), on SQLite and PostgreSQL: one statement outside any transaction on
PostgreSQL, which refuses a revoked token or an erased person from the very next request,
and which hands its connection back to the pool as it found it (never left in autocommit,
where a later write transaction would commit statement by statement)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text, update

from booking.accounts import erase_user, user_by_token
from booking.http import statement_reads
from booking.tables import api_tokens
from events.sql import write_transaction
from tests.conftest import Api, future_weekday, local


def lookup(api: Api, token: str) -> object:
    with api.app.app_context(), statement_reads(api.engine) as conn:
        return user_by_token(conn, token)


def me(api: Api, token: str) -> int:
    response = api.client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"})
    return int(response.status_code)


def test_a_token_names_its_user_until_revoked(api: Api) -> None:
    token = api.token("booker")
    found = lookup(api, token)
    assert found is not None
    assert found.role == "booker"  # type: ignore[attr-defined]
    assert "@" in found.email  # type: ignore[attr-defined]  (opened with the key joined)
    assert me(api, token) == 200

    with write_transaction(api.engine) as conn:
        conn.execute(update(api_tokens).values(revoked_at=datetime.now(UTC)))

    assert lookup(api, token) is None
    assert me(api, token) == 401
    assert lookup(api, "no-such-token") is None


def test_a_write_with_a_token_revoked_a_moment_ago_is_refused(api: Api) -> None:
    """The lookup of a write (its own round trip, straight on the driver on PostgreSQL)
    sees a revocation committed just before: no booking, 401 — nothing keeps a token."""
    api.premises("room")
    day = future_weekday(2)
    assert api.book("room", local(day, 10), local(day, 11)).status_code == 201
    with write_transaction(api.engine) as conn:
        conn.execute(update(api_tokens).values(revoked_at=datetime.now(UTC)))

    refused = api.book("room", local(day, 12), local(day, 13))

    assert refused.status_code == 401
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM booking_list")).scalar_one() == 1


def test_an_erased_person_is_refused_at_once(api: Api) -> None:
    token = api.token("booker")
    user = lookup(api, token)
    assert user is not None and me(api, token) == 200

    with api.app.app_context(), write_transaction(api.engine) as conn:
        erase_user(conn, user.id)  # type: ignore[attr-defined]

    assert me(api, token) == 401


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_connection_goes_back_to_the_pool_out_of_autocommit(api: Api) -> None:
    token = api.token("booker")
    for _ in range(3):
        assert lookup(api, token) is not None
    # Every pooled connection: a transaction begun on it holds until rolled back.
    with api.engine.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
        conn.execute(text("CREATE TEMPORARY TABLE probe (n integer)"))
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('pg_temp.probe')")).scalar() is None
