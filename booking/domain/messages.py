"""Message threads: who may read and write a thread, and what a message must be.

A thread belongs to one booking or one pop-up request. It is open to staff, to the person
who booked or asked, and — for a booking — to the members of the booking's organisation;
no one else. `Thread.open_to` is that rule, used both for posting here and for every read
(booking.queries.access.may_see). The decider is pure: the handler seals the body first
and hands in both the clear text (for the rules) and the envelope (for the log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, RuleBroken
from events.catalog import MessagePosted

KINDS = ("booking", "popup")
MAX_BODY = 5000


@dataclass(frozen=True)
class Thread:
    kind: str  # booking | popup
    thread_id: str
    owner_id: str  # who booked or asked
    organisation_id: str | None  # the booking's organisation; None for pop-ups

    @property
    def stream(self) -> str:
        return f"thread-{self.kind}-{self.thread_id}"

    def open_to(self, actor: Actor) -> bool:
        if actor.is_staff or actor.user_id == self.owner_id:
            return True
        return self.organisation_id is not None and self.organisation_id == actor.organisation_id


@dataclass(frozen=True)
class PostMessage:
    actor: Actor
    message_id: str
    text: str  # the body in clear: only for the rules, never recorded
    sealed: str  # the same body under the author's key: what the log keeps
    now: datetime


def decide_post(command: PostMessage, thread: Thread) -> list[MessagePosted]:
    """Post to `thread`: only its participants, and only a body with something in it."""
    if not thread.open_to(command.actor):
        raise NotAllowed("Only the booker's side and staff read this thread.")
    text = command.text.strip()
    if not text:
        raise RuleBroken({"body": ["Write a message."]})
    if len(text) > MAX_BODY:
        raise RuleBroken({"body": [f"At most {MAX_BODY} characters."]})
    return [
        MessagePosted(
            thread.kind,
            thread.thread_id,
            command.message_id,
            command.actor.user_id,
            command.actor.role,
            command.sealed,
            command.now,
        )
    ]
