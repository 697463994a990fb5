"""The app's runtime (engine, premises cache, vault, clock, ids) and how views read it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from flask import Response, current_app
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from booking.clock import Clock, Ids, random_ids, system_clock
from booking.privacy import Vault
from booking.service import (
    PremisesRepository,
)
from events.sql import read_transaction


@dataclass
class Runtime:
    engine: Engine
    premises: PremisesRepository
    vault: Vault
    clock: Clock = system_clock
    ids: Ids = random_ids


def runtime() -> Runtime:
    found: Runtime = current_app.extensions["tilavaraus"]
    return found


def now() -> datetime:
    """The app's clock: what a view hands to a handler as the time."""
    return runtime().clock()


def new_id() -> str:
    """A new id from the app's id source."""
    return runtime().ids()


@contextmanager
def statement_reads(engine: Engine) -> Iterator[Connection]:
    """A connection for reads whose every statement sees what is committed when it runs.

    On PostgreSQL that is what a READ COMMITTED transaction gives as well, so the statements
    run in autocommit: no BEGIN and COMMIT, two round trips per request saved. The
    connection goes back to the pool out of autocommit, or is discarded. Elsewhere (SQLite)
    it is a read transaction.
    """
    if engine.dialect.name != "postgresql":
        with read_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.autocommit = True  # a client-side flag: no round trip
        try:
            yield conn
        finally:
            if driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                driver.autocommit = False
            else:  # lost meanwhile: never hand it out again in autocommit
                conn.invalidate()


def iso(instant: datetime, zone: ZoneInfo | None = None) -> str:
    """`instant` in `zone`'s offset, or without a zone in UTC written with `Z` (API.md:
    instants of a premises in its local offset, every other instant in UTC, `Z`)."""
    return instant.astimezone(zone).isoformat() if zone else utc_iso(instant)


def utc_iso(instant: datetime) -> str:
    """RFC 3339 in UTC with `Z`; a naive instant is one the database keeps in UTC."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def new_request_id() -> str:
    """A request's id for the logs, from the app's id source."""
    return runtime().ids()
