"""Recording decided events: the one sequence that writes them to the log together with
their inline projections (feed entries among them) and the e-mails they cause.

`record` is what every writer of premises streams goes through: a booking command
(`booking.service.run_premises_command`) hands in one stream, the expiry job
(`booking.jobs`) hundreds at once. It composes the three packages in the allowed
direction — the log's store (`events`), the inline projections (`projections`) and the
notifications (`booking`) — so that none of them needs to know the others.

The order is chosen for PostgreSQL's append lock, which every writer of every premises
queues for and which is held from the events' INSERT until commit: whatever does not need
the events' positions — the inline projections that read only the events, and the mails —
is written first, and only the append and the position-stamped projections (the catalogue,
feed entries) run under the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from booking import notifications, outbox
from events import pipeline
from events.bulk import StreamAppend, prepare_many, write_many
from events.catalog import BookingCancelled, BookingPlaced, BookingSeriesCancelled, Event
from events.store import Metadata, RecordedEvent, prepare, write
from projections.runner import BY_EVENT, BY_POSITION, project_inline

__all__ = ["StreamAppend", "record"]


def record(
    conn: Connection,
    appends: Sequence[StreamAppend],
    metadata: Metadata,
    now: datetime,
    *,
    notify: bool = True,
    popups: Mapping[str, notifications.Popup] | None = None,
    positions: bool = True,
) -> list[list[RecordedEvent]]:
    """Append each stream's events at its `expected_version + 1, …`, recorded at `now`,
    with their inline projections and (unless `notify` is False: history nobody should be
    told about, the demo's) their e-mails, all in the caller's transaction; returns the
    recorded events per entry of `appends`. `popups`: what the mails say of pop-up
    requests the caller already holds (the expiry job, from the states it decided on), by
    request id; the others are read. `positions=False`: the caller reads none of the
    returned records' positions (the expiry job counts them), so where no inline projection
    by position takes any of the events, they come back as prepared, at position 0.

    The caller decided on each stream's version in this transaction, holding the
    premises (`booking.service.lock_premises`). A stream that moved on meanwhile raises
    `events.store.ConcurrencyError` and the caller's transaction is retried.
    """
    held = _all_held(conn, appends)
    prepared, append = _prepared(conn, appends, metadata, now, held)
    pending = _pairs(appends, prepared)
    if held:
        # Every write below waits for the commit's round trip (`events.pipeline`): the
        # mails' reads come first (a read sends what is held), and a booking's mail reads
        # nothing the projections write.
        mails = notifications.mails_for(conn, pending, popups) if notify else []
        project_inline(conn, pending, BY_EVENT)
        outbox.enqueue(conn, mails, now)
    else:
        project_inline(conn, pending, BY_EVENT)
        if notify:
            notifications.notify(conn, pending, now, popups)
    if positions or _by_position(appends):
        recorded = append(True)
        project_inline(conn, _pairs(appends, recorded), BY_POSITION)
        return recorded
    return append(False)


def _by_position(appends: Sequence[StreamAppend]) -> bool:
    """Whether an inline projection by position takes any of the events."""
    names = {type(e).__name__ for a in appends for e in a.events}
    return any(not p.handled_types().isdisjoint(names) for p in BY_POSITION)


# The events whose inline projections and mails write without reading anything they write,
# and whose position-stamped rows read their position in SQL (projections.feed_entries).
# (A cancellation's mail reads the booking's title, time and booker, which it leaves as
# they are; a series' cancellation is a mail only.)
HELD = (BookingPlaced, BookingCancelled, BookingSeriesCancelled)


def _all_held(conn: Connection, appends: Sequence[StreamAppend]) -> bool:
    """Whether the whole record can wait for the commit's round trip: the connection
    holds its writes and every event is one of `HELD`, on one stream."""
    return (
        pipeline.holding(conn)
        and len(appends) == 1
        and all(isinstance(e, HELD) for e in appends[0].events)
    )


def _prepared(
    conn: Connection,
    appends: Sequence[StreamAppend],
    metadata: Metadata,
    now: datetime,
    held: bool = False,
) -> tuple[list[list[RecordedEvent]], Callable[[bool], list[list[RecordedEvent]]]]:
    """The events serialised (without positions yet), and the write that appends them
    (given whether the records it returns need their positions)."""
    if len(appends) == 1:
        # One stream: SQLAlchemy's INSERT and no version query (the caller read the stream
        # in this transaction; UNIQUE(stream, version) guards against a racing writer).
        (one,) = appends
        single = prepare(one.stream, one.events, one.expected_version, metadata, now=now)
        return [single], lambda _: [write(conn, single, read_in_transaction=True, held=held)]
    bulk = prepare_many(appends, metadata, now=now)  # many: one INSERT for all
    return bulk.recorded, lambda positioned: write_many(conn, bulk, positioned=positioned)


def _pairs(
    appends: Sequence[StreamAppend], recorded: Sequence[Sequence[RecordedEvent]]
) -> list[tuple[Event, RecordedEvent]]:
    """Each event beside its record, in the order of the appends."""
    return [
        pair
        for a, mine in zip(appends, recorded, strict=True)
        for pair in zip(a.events, mine, strict=True)
    ]
