"""Who may write to a thread, and what a message must be (booking/domain/messages.py), and
the one visibility rule built on it (booking/queries/access.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, RuleBroken
from booking.domain.messages import PostMessage, Thread, decide_post
from booking.queries.access import may_see

NOW = datetime(2026, 11, 18, 8, tzinfo=UTC)
BOOKING = Thread("booking", "b1", owner_id="u1", organisation_id="org1")
POPUP = Thread("popup", "p1", owner_id="u1", organisation_id=None)


def post(actor: Actor, text: str = "Hei", thread: Thread = BOOKING) -> list[object]:
    return list(decide_post(PostMessage(actor, "m1", text, "sealed", NOW), thread))


def test_the_booker_the_organisation_and_staff_post_to_a_booking_thread() -> None:
    for actor in (
        Actor("u1", "booker", "org1"),
        Actor("u2", "booker", "org1"),
        Actor("s", "staff"),
    ):
        (event,) = post(actor)
        assert event.body == "sealed" and event.author_id == actor.user_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("actor", "thread"),
    [
        (Actor("u3", "booker", "org2"), BOOKING),
        (Actor("u2", "resident", "org1"), POPUP),  # no organisation side on a pop-up
        (Actor("u9", "resident"), POPUP),
    ],
)
def test_anyone_else_is_refused(actor: Actor, thread: Thread) -> None:
    with pytest.raises(NotAllowed):
        post(actor, thread=thread)


@pytest.mark.parametrize("text", ["", "   \n", "x" * 5001])
def test_an_empty_or_overlong_body_is_refused(text: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        post(Actor("u1", "booker", "org1"), text)
    assert list(refused.value.problems) == ["body"]


def test_may_see_follows_the_thread_rule_for_rows() -> None:
    booking = SimpleNamespace(id="b1", booked_by="u1", organisation_id="org1")
    popup = SimpleNamespace(id="p1", requested_by="u1")
    assert may_see(Actor("u2", "booker", "org1"), "booking", booking)
    assert not may_see(Actor("u2", "booker", "org2"), "booking", booking)
    assert not may_see(Actor("u2", "booker", "org1"), "popup", popup)
    assert may_see(Actor("u1", "resident"), "popup", popup)
    assert may_see(Actor("a", "admin"), "popup", popup)
