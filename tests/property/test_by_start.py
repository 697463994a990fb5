"""The premises state finds bookings and holds near a slot through an index by start
(`ByStart`): what it finds must be exactly what looking at every record finds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.premises import ByStart
from events.slot import Slot

ORIGIN = datetime(2027, 3, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None)


@dataclass(frozen=True)
class Held:
    number: int
    slot: Slot


def slots(longest_minutes: int) -> st.SearchStrategy[Slot]:
    return st.builds(
        lambda start, minutes: Slot(
            ORIGIN + timedelta(minutes=15 * start),
            ORIGIN + timedelta(minutes=15 * start + minutes),
        ),
        st.integers(0, 2000),
        st.integers(1, longest_minutes),
    )


@SETTINGS
@given(
    st.lists(st.one_of(slots(240), slots(7 * 24 * 60)), max_size=60),
    st.lists(slots(60 * 24 * 40), min_size=1, max_size=10),
)
def test_meeting_holds_every_record_that_meets_and_keeps_the_order(
    added: list[Slot], windows: list[Slot]
) -> None:
    index: ByStart[Held] = ByStart()
    records = [Held(n, slot) for n, slot in enumerate(added)]
    for record in records:
        index.add(record)
    for window in windows:
        found = index.meeting(window)
        meeting = [r for r in records if r.slot.overlaps(window)]
        assert set(meeting) <= set(found)
        # In order of start, equal starts in the order they were added.
        assert found == sorted(found, key=lambda r: (r.slot.start, r.number))
        # Nothing that starts after the window ends is ever a candidate.
        assert all(r.slot.start < window.end for r in found)


@SETTINGS
@given(st.lists(slots(600), min_size=1, max_size=30), slots(600))
def test_a_copy_is_independent(added: list[Slot], extra: Slot) -> None:
    index: ByStart[Held] = ByStart()
    for n, slot in enumerate(added):
        index.add(Held(n, slot))
    everything = Slot(ORIGIN - timedelta(days=1), ORIGIN + timedelta(days=400))
    before = index.meeting(everything)
    twin = index.copy()
    twin.add(Held(-1, extra))
    assert index.meeting(everything) == before
    assert len(twin.meeting(everything)) == len(before) + 1
