"""Pop-up requests: ask, approve, reject, withdraw — and the job that expires them.

Every handler: seal personal data (the description, under the requester's key) → load the
request → decide (booking.domain.popups, through `record`) → record; and returns the
request as it now reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from booking import strong_identity
from booking.domain.commands import Actor
from booking.domain.errors import RuleBroken, StaleVersion
from booking.domain.popups import DecidePopup, ExpirePopups, RequestPopup, WithdrawPopup
from booking.notifications import Popup
from booking.queries.access import may_see
from booking.queries.popups import popup_row
from booking.recording import record as record_many
from booking.service import (
    PremisesRepository,
    lock_premises,
    premises_locks_ahead,
    premises_stream,
)
from booking.usecases.times import check_stated_times
from booking.usecases.unit import Unit, known_zone, record
from events import pipeline
from events.bulk import StreamAppend
from events.slot import Slot
from events.store import Metadata


@dataclass(frozen=True)
class PopupInput:
    """What a person asks for; `start`/`end` aware in the offset the person wrote,
    `description` in clear (sealed by the handler)."""

    premises_id: str
    start: datetime
    end: datetime
    title: str
    description: str = ""
    expected_attendees: int = 1


@dataclass(frozen=True)
class PopupResult:
    """The request's row as it now reads (with its premises' zone; description sealed)."""

    row: Any

    @property
    def approved(self) -> bool:
        return bool(self.row.status == "approved")


def request_popup(
    unit: Unit,
    actor: Actor,
    given: PopupInput,
    request_id: str,
    booking_id: str,
    now: datetime,
    strong: bool = True,
) -> PopupResult:
    """Ask for a short slot: `pending` (it holds the slot), or `approved` at once where the
    premises approves free slots by itself (`booking_id` is then placed). `strong` says the
    person signed in with strong identification (booking.strong_identity; the API and the
    pages pass the session's)."""
    strong_identity.check(unit.conn, given.premises_id, actor, strong)
    if given.end <= given.start:
        raise RuleBroken({"end": ["The end must be after the start."]})
    zone = known_zone(unit, given.premises_id)
    if zone is not None:
        check_stated_times({"start": given.start, "end": given.end}, zone)
    unit.vault.ensure_key(unit.conn, actor.user_id)
    description = given.description
    sealed = unit.vault.reader(unit.conn).seal(actor.user_id, description) if description else ""
    command = RequestPopup(
        actor,
        request_id,
        booking_id,
        given.premises_id,
        Slot(given.start, given.end),
        given.title.strip(),
        sealed,
        given.expected_attendees,
        now,
    )
    record(unit, given.premises_id, command)
    return PopupResult(popup_row(unit.conn, request_id))


def decide_popup(
    unit: Unit,
    actor: Actor,
    request_id: str,
    approve: bool,
    reason: str,
    booking_id: str,
    now: datetime,
    expected_version: int | None = None,
) -> PopupResult:
    """Staff approve (placing `booking_id`) or reject (with `reason`) a pending request."""
    command = DecidePopup(actor, request_id, approve, booking_id, reason, now)
    return _change(unit, actor, request_id, command, expected_version)


def withdraw_popup(
    unit: Unit, actor: Actor, request_id: str, now: datetime, expected_version: int | None = None
) -> PopupResult:
    """The requester withdraws: a pending request lets its slot go, an approved one also
    cancels its booking."""
    return _change(unit, actor, request_id, WithdrawPopup(actor, request_id, now), expected_version)


def _change(
    unit: Unit,
    actor: Actor,
    request_id: str,
    command: DecidePopup | WithdrawPopup,
    expected_version: int | None,
) -> PopupResult:
    """If-Match is checked here, as the domain's decision takes no version; someone else's
    request is refused by the domain first (403, not 412)."""
    row = popup_row(unit.conn, request_id)
    seen = may_see(actor, "popup", row)
    if expected_version is not None and seen and row.version != expected_version:
        raise StaleVersion(row.version)
    record(unit, row.premises_id, command)
    after = popup_row(unit.conn, request_id)
    if expected_version is not None and after.version != expected_version + 1:
        raise StaleVersion(after.version - 1)  # another write came between: roll back
    return PopupResult(after)


# --- the expiry job ---------------------------------------------------------------------

SCHEDULER = Metadata(actor="scheduler")


def expire_popups(
    conn: Connection,
    repository: PremisesRepository,
    premises_ids: list[str],
    now: datetime,
    recorded_at: datetime,
) -> int:
    """Expire the pending requests past their decision deadline on these premises, in one
    transaction; returns how many (`now` is the instant they expire at, `recorded_at` the
    clock's). Decided per premises under its lock, then projected, mailed and appended all
    at once through `booking.recording.record` (one statement per table and chunk of ids,
    not one per event: the projections' batch handlers, `notifications.mails_for`'s reads
    of many rows at once, one outbox INSERT, `events.bulk`'s one INSERT).

    As in `booking.service.run_premises_command`, what needs no position (the inline
    projections that read only the events, the mails) is written before the append, so
    that on PostgreSQL the append lock — which every writer of every premises queues
    for — is held only for the INSERT and the position-stamped projections. Each premises
    still appends to its own stream at the version it decided on, so a racing scheduler
    or booking makes the whole chunk retry; the retry decides on the events the other
    appended and finds nothing left to expire.
    """
    if pipeline.holding(conn):
        # The locks, then every loaded premises' stream tail, in one round trip (they were
        # two round trips per premises: 100 of a chunk's ~110); on SQLite (no locks: BEGIN
        # IMMEDIATE) the tails on the driver, compiled once, not through SQLAlchemy.
        postgres = conn.dialect.name == "postgresql"
        locks = premises_locks_ahead(premises_ids) if postgres else []
        pipeline.read_ahead(conn, locks + repository.tails_ahead(premises_ids))
    else:
        lock_premises(conn, premises_ids)  # all at once, in order: no deadlock with bookings
    appends = []
    # What the mails say of each request, from the state decided on: the requests'
    # rows need not be read again (10,000 of them, a fifth of a run's SQL on SQLite).
    # Its requester, title and slot are the `PopupRequested`'s, as the row's are.
    known: dict[str, Popup] = {}
    for premises_id in premises_ids:
        expire = ExpirePopups(premises_id, now)
        state, events = repository.decide_on_state(conn, premises_id, expire)
        if events:
            appends.append(StreamAppend(premises_stream(premises_id), events, state.version))
            popups = state.popups
            for event in events:
                asked = popups[event.request_id]
                slot = asked.slot
                known[event.request_id] = Popup(
                    asked.requested_by, premises_id, asked.title, slot.start, slot.end
                )
    if not appends:
        return 0
    recorded = record_many(conn, appends, SCHEDULER, recorded_at, popups=known, positions=False)
    return sum(len(mine) for mine in recorded)
