"""A key's stored outcome (booking.service): the row `_store_outcome` writes, held or not,
is the one SQLAlchemy's INSERT writes, and a repeated key is answered from it on both
databases (a reused key with another request refused), the handler going no further."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from booking.service import (
    IdempotencyKey,
    IdempotencyKeyReused,
    Outcome,
    _store_outcome,
    execute,
)
from booking.tables import idempotency_keys
from events.sql import write_transaction

NOW = datetime(2026, 11, 18, 8, 0, 0, 123456, tzinfo=UTC)
BODY = {"id": "b-1", "title": "Kerhoilta ä \u2603", "attendees": 5, "nested": {"a": [1, None]}}
HEADERS = {"ETag": '"1"', "Location": "/api/v1/bookings/b-1"}


def _key(key: str, body: object = None) -> IdempotencyKey:
    return IdempotencyKey.of("actor-1", key, "POST", "/x", body or {"k": key}, NOW)


def _reading(outcome: Outcome) -> Callable[[Connection], Outcome]:
    """A handler that reads before it answers, as every real one does (on PostgreSQL the
    key's lookup goes with the handler's first read)."""

    def handle(conn: Connection) -> Outcome:
        conn.execute(select(idempotency_keys.c.key).limit(1)).all()
        return outcome

    return handle


def _raw_row(engine: Engine, key: str) -> tuple[object, ...]:
    """The row as stored, each column's text as the database holds it."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT actor, request_hash, status, CAST(body AS TEXT), CAST(headers AS TEXT), "
            "CAST(created_at AS TEXT) FROM idempotency_keys WHERE key = ?"
            if engine.dialect.name == "sqlite"
            else "SELECT actor, request_hash, status, body::text, headers::text, "
            "created_at::text FROM idempotency_keys WHERE key = %s",
            (key,),
        ).one()
    return tuple(row)


def test_a_stored_outcome_is_the_row_sqlalchemys_insert_writes(engine: Engine) -> None:
    held = _key("held")
    outcome = execute(engine, _reading(Outcome(201, BODY, HEADERS)), held)
    assert outcome == Outcome(201, BODY, HEADERS)
    plain = _key("plain")
    with write_transaction(engine) as conn:  # not held: written at once
        _store_outcome(conn, plain, Outcome(201, BODY, HEADERS))
    reference = _key("reference")
    with write_transaction(engine) as conn:
        conn.execute(
            insert(idempotency_keys).values(
                actor=reference.actor,
                key=reference.key,
                request_hash=reference.request_hash,
                status=201,
                body=BODY,
                headers=HEADERS,
                created_at=NOW,
            )
        )
    expected = _raw_row(engine, "reference")[2:]
    assert _raw_row(engine, "held")[2:] == expected
    assert _raw_row(engine, "plain")[2:] == expected
    with engine.connect() as conn:
        rows = conn.execute(select(idempotency_keys).order_by(idempotency_keys.c.key)).all()
    assert [(r.key, r.body, r.headers, r.created_at) for r in rows] == [
        (k, BODY, HEADERS, NOW) for k in ("held", "plain", "reference")
    ]


def test_a_repeated_key_is_answered_from_its_row_and_the_handler_goes_no_further(
    engine: Engine,
) -> None:
    ran: list[int] = []

    def handler(n: int) -> Callable[[Connection], Outcome]:
        def handle(conn: Connection) -> Outcome:
            outcome = _reading(Outcome(201, {**BODY, "n": n}, HEADERS))(conn)
            ran.append(n)  # past the first read, where PostgreSQL's lookup is answered
            return outcome

        return handle

    first = execute(engine, handler(1), _key("k"))
    again = execute(engine, handler(2), _key("k"))
    assert ran == [1]
    assert again == first == Outcome(201, {**BODY, "n": 1}, HEADERS)
    with pytest.raises(IdempotencyKeyReused):
        execute(engine, handler(3), _key("k", {"other": "request"}))
    assert ran == [1]
    with engine.connect() as conn:
        assert conn.execute(select(idempotency_keys.c.key)).scalars().all() == ["k"]
