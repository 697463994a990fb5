"""Post a message to a booking's or a pop-up request's thread.

Seal (the body, under the author's key) → load the thread → decide
(booking.domain.messages) → record on the thread's own stream, with its inline
projection and the e-mails to the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking.domain.commands import Actor
from booking.domain.messages import PostMessage, decide_post
from booking.notifications import notify
from booking.queries.messages import message_row, thread
from booking.usecases.unit import Unit
from events.store import append, stream_version
from projections.runner import project_inline


@dataclass(frozen=True)
class Posted:
    """The message as its thread now lists it (body sealed; open it with the vault)."""

    row: Any


def post_message(
    unit: Unit,
    actor: Actor,
    kind: str,
    thread_id: str,
    text: str,
    message_id: str,
    now: datetime,
) -> Posted:
    """Post `text` to the thread of booking or pop-up request `thread_id` (`kind`)."""
    text = text.strip()
    unit.vault.ensure_key(unit.conn, actor.user_id)
    sealed = unit.vault.reader(unit.conn).seal(actor.user_id, text) if text else ""
    on = thread(unit.conn, kind, thread_id)
    events = decide_post(PostMessage(actor, message_id, text, sealed, now), on)
    version = stream_version(unit.conn, on.stream)
    recorded = append(unit.conn, on.stream, events, version, unit.metadata, now=now)
    pairs = list(zip(events, recorded, strict=True))
    project_inline(unit.conn, pairs)
    if unit.notify:
        notify(unit.conn, pairs, now)
    return Posted(message_row(unit.conn, message_id))
