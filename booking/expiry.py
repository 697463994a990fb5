"""The mails of a pop-up expiry run, composed in one pass over thousands of expiries.

`booking.notifications.mails_for` makes the same mails, event by event: for 10,000
`PopupExpired` that is about half a second of Python (whole pop-up rows read back, the local
time of every slot formatted again, a `match` and a dict per mail). Here the pop-ups, their
requesters' languages and the premises are read with a few queries and each distinct slot's
local time is formatted once. The texts, the time format and the dedupe keys are
`booking.notifications`' own; `tests/integration/test_jobs.py` checks that the mails equal
what `mails_for` makes of the same events, so the two cannot drift apart unnoticed.

A stopgap until `booking.notifications` has a batch path of its own
(requested in /work/notes/requests.md): then the job calls it and this module goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, select, type_coerce
from sqlalchemy.engine import Connection

from booking.notifications import TEXTS, local_time
from booking.outbox import Mail
from booking.tables import users
from events.catalog import Event, PopupExpired
from events.sql import chunks
from events.store import RecordedEvent
from projections.catalogue import premises_table
from projections.popups import popups_table

LANGUAGES = ("fi", "en")  # what Notifier.language accepts; anything else gets Finnish


def only_expiries(
    appended: Sequence[tuple[Event, RecordedEvent]],
) -> list[tuple[PopupExpired, RecordedEvent]] | None:
    """The pairs, if every event is a `PopupExpired` (else None: use the general path)."""
    found = [(e, r) for e, r in appended if isinstance(e, PopupExpired)]
    return found if len(found) == len(appended) else None


def due_requests(conn: Connection, premises_ids: Sequence[str], now: datetime) -> dict[str, Any]:
    """What the mails need of the requests of these premises that expire at `now`, read with
    one query before the projections change them (instead of 10,000 ids in `IN` lists)."""
    p = popups_table
    found: dict[str, Any] = {}
    for chunk in chunks(premises_ids):
        query = _REQUESTS.where(
            p.c.premises_id.in_(chunk),
            p.c.status == "pending",
            p.c.decision_deadline <= now,
        )
        found.update((row.id, row) for row in conn.execute(query))
    return found


def expiry_mails(
    conn: Connection,
    expired: Sequence[tuple[PopupExpired, RecordedEvent]],
    known: dict[str, Any] | None = None,
) -> list[Mail]:
    """One "pop-up expired" mail to each request's requester, as `mails_for` writes it.
    `known` is `due_requests`' answer; requests missing from it are read by id."""
    requests = dict(known or {})
    missing = [e.request_id for e, _ in expired if e.request_id not in requests]
    requests.update(_requests(conn, missing))
    premises = _premises(conn, {row.premises_id for row in requests.values()})
    # The slot's instants come as stored; only each distinct slot is read and formatted.
    instant = popups_table.c.start.type.dialect_impl(conn.dialect).result_processor(
        conn.dialect, None
    )
    subjects_bodies = TEXTS["popup_expired"]
    whens: dict[tuple[Any, Any, ZoneInfo, str], str] = {}
    mails = []
    for event, recorded in expired:
        row = requests[event.request_id]
        language = row.language if row.language in LANGUAGES else "fi"
        names, zone = premises[row.premises_id]
        when_key = (row.start, row.end, zone, language)
        when = whens.get(when_key)
        if when is None:
            start, end = (instant(row.start), instant(row.end)) if instant else (row.start, row.end)
            when = whens[when_key] = local_time(start, end, zone, language)
        fields = {
            "title": row.title,
            "premises": names.get(language) or names.get("fi") or row.premises_id,
            "when": when,
            "reason": "",
        }
        subject, body = subjects_bodies[language]
        mails.append(
            Mail(
                dedupe_key=f"{recorded.stream}:{recorded.version}:{row.requested_by}",
                recipient_id=row.requested_by,
                language=language,
                subject=subject.format(**fields),
                body=body.format(**fields),
            )
        )
    return mails


_POPUPS = popups_table
_REQUESTS = select(
    _POPUPS.c.id,
    _POPUPS.c.requested_by,
    _POPUPS.c.premises_id,
    _POPUPS.c.title,
    # The instants as the driver gives them (see `expiry_mails`).
    type_coerce(_POPUPS.c.start, String).label("start"),
    type_coerce(_POPUPS.c.end, String).label("end"),
    users.c.language,
).select_from(_POPUPS.outerjoin(users, users.c.id == _POPUPS.c.requested_by))


def _requests(conn: Connection, request_ids: list[str]) -> dict[str, Any]:
    """What the mail needs of each request, with the requester's language."""
    found: dict[str, Any] = {}
    for chunk in chunks(request_ids):
        query = _REQUESTS.where(_POPUPS.c.id.in_(chunk))
        found.update((row.id, row) for row in conn.execute(query))
    return found


def _premises(conn: Connection, ids: set[str]) -> dict[str, tuple[dict[str, Any], ZoneInfo]]:
    t = premises_table
    ordered = sorted(ids)
    found = {}
    for chunk in chunks(ordered):
        query = select(t.c.id, t.c.name, t.c.timezone).where(t.c.id.in_(chunk))
        found.update((row.id, (row.name, ZoneInfo(row.timezone))) for row in conn.execute(query))
    return found
