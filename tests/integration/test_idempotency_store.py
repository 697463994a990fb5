"""A key's stored outcome (booking.service): the row `_store_outcome` writes, held or not,
is the one SQLAlchemy's INSERT writes, and a repeated key is answered from it on both
databases (a reused key with another request refused), and nothing a repeat's handler wrote
is kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from booking.domain.errors import InvalidState
from booking.http import outcome_of_error
from booking.service import (
    IdempotencyKey,
    IdempotencyKeyReused,
    Outcome,
    _store_outcome,
    execute,
)
from booking.tables import idempotency_keys
from events import pipeline
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


def _writing(n: int, held: bool = True) -> Callable[[Connection], Outcome]:
    """A handler that reads, writes a row of its own (key `side-n`; held, as a booking's
    writes are, or through SQLAlchemy at once) and answers with `n` in its body."""

    def handle(conn: Connection) -> Outcome:
        conn.execute(select(idempotency_keys.c.key).limit(1)).all()
        row = {
            "actor": "actor-1",
            "key": f"side-{n}",
            "request_hash": "-",
            "status": 200,
            "body": {},
            "headers": {},
            "created_at": NOW,
        }
        if held:
            pipeline.write(conn, insert(idempotency_keys), row)
        else:
            conn.execute(insert(idempotency_keys), row)
        return Outcome(201, {**BODY, "n": n}, HEADERS)

    return handle


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(idempotency_keys.c.key)).scalars())


@pytest.mark.parametrize("held", [True, False], ids=["held", "unheld"])
def test_a_repeated_key_is_answered_from_its_row_and_what_the_repeat_wrote_is_undone(
    engine: Engine, held: bool
) -> None:
    # The key is not looked up before a first attempt: a repeat runs its handler, and the
    # key's primary key refuses its row at the commit, taking the repeat's writes with it.
    first = execute(engine, _writing(1, held), _key("k"))
    again = execute(engine, _writing(2, held), _key("k"))
    assert again == first == Outcome(201, {**BODY, "n": 1}, HEADERS)
    with pytest.raises(IdempotencyKeyReused):
        execute(engine, _writing(3, held), _key("k", {"other": "request"}))
    assert _keys(engine) == ["k", "side-1"]


def test_a_repeat_whose_handler_now_refuses_is_answered_with_the_first_outcome(
    engine: Engine,
) -> None:
    first = execute(engine, _writing(1), _key("k"), outcome_of_error)

    def refusing(conn: Connection) -> Outcome:
        _writing(2)(conn)
        raise InvalidState("cancelled meanwhile")

    assert execute(engine, refusing, _key("k"), outcome_of_error) == first
    assert _keys(engine) == ["k", "side-1"]


def test_a_repeat_whose_handler_now_raises_is_answered_from_the_keys_row(engine: Engine) -> None:
    first = execute(engine, _writing(1), _key("k"), outcome_of_error)

    def failing(conn: Connection) -> Outcome:
        _writing(2)(conn)
        raise LookupError("gone meanwhile")

    assert execute(engine, failing, _key("k"), outcome_of_error) == first
    with pytest.raises(IdempotencyKeyReused):
        execute(engine, failing, _key("k", {"other": "request"}), outcome_of_error)
    # A new key's error goes out as it is, and nothing is stored under it.
    with pytest.raises(LookupError):
        execute(engine, failing, _key("new"), outcome_of_error)
    assert _keys(engine) == ["k", "side-1"]
