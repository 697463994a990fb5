"""A feed's VEVENT written by booking/feeds/render.py `public_event` (and `private_event`,
with details) is byte for byte what the icalendar library's component gives
(`event_of(...).to_ical()`), for any row: titles and locations of any text (escapes, line
breaks, long lines folded at multi-byte characters), every status and kind, public or not,
instants with microseconds. `fold` is the library's folding, for any line."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.feeds import STATUSES, event_of, fold, private_event, public_event
from booking.feeds.render import Opened, _foldline
from booking.privacy import Vault

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
INSTANTS = st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def rows(draw: st.DrawFn) -> SimpleNamespace:
    kind = draw(st.sampled_from(["booking", "closure"]))
    return SimpleNamespace(
        uid=draw(st.uuids()).__str__(),
        kind=kind,
        status=draw(st.sampled_from(sorted(STATUSES))),
        sequence=draw(st.integers(0, 10_000)),
        start=draw(INSTANTS),
        end=draw(INSTANTS),
        title=draw(TEXT),
        public=draw(st.booleans()),
        premises_id=draw(st.sampled_from(["room", "sali-2"])),
        created_at=draw(INSTANTS),
        last_modified=draw(INSTANTS),
    )


@settings(max_examples=500, deadline=None)
@given(row=rows(), location=TEXT)
def test_public_event_is_the_library_rendering(row: SimpleNamespace, location: str) -> None:
    locations = {row.premises_id: location}
    assert public_event(row, location) == event_of(row, locations, None).to_ical()


def test_a_long_title_with_escapes_folds_as_the_library_does() -> None:
    row = SimpleNamespace(
        uid="6f1c7f0e-4a8a-4f43-9d55-8f1d2f0b6a11",
        kind="booking",
        status="cancelled",
        sequence=2,
        start=datetime(2026, 12, 1, 8, tzinfo=UTC),
        end=datetime(2026, 12, 1, 9, tzinfo=UTC),
        title="Kuoro; harjoitus, \\ väli\nrivi " * 3 + "ääää" * 30,
        public=True,
        premises_id="room",
        created_at=datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC),
        last_modified=datetime(2026, 11, 28, 1, 2, 4, tzinfo=UTC),
    )
    location = "Kokoushuone 2 / Meeting room 2, Raatihuoneenkatu 6, 50100 Mikkeli"
    written = public_event(row, location)
    assert written == event_of(row, {"room": location}, None).to_ical()
    assert b"\r\n " in written  # folded


# --- private entries and folding ------------------------------------------------------------


@st.composite
def private_rows(draw: st.DrawFn) -> SimpleNamespace:
    row = draw(rows())
    optional = st.none() | TEXT
    row.attendees = draw(st.none() | st.integers(0, 5000))
    row.notes = draw(optional)
    row.reason = draw(optional)
    row.organisation_name = draw(optional)
    row.contact_name = draw(optional)
    row.contact_email = draw(optional)
    return row


def plain_reader() -> Any:
    """The real privacy layer's reader: texts that are not envelopes open as they are."""
    return Vault("property-tests").reader(cast(Any, None))


@settings(max_examples=500, deadline=None)
@given(row=private_rows(), location=TEXT)
def test_private_event_is_the_library_rendering(row: SimpleNamespace, location: str) -> None:
    personal = plain_reader()
    expected = event_of(row, {row.premises_id: location}, personal).to_ical()
    assert private_event(row, location, Opened(personal)) == expected


@settings(max_examples=1000, deadline=None)
@given(line=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r")))
def test_fold_is_the_library_folding(line: str) -> None:
    assert fold(line) == _foldline(line)


@pytest.mark.parametrize("line", ["A" * 73 + "\\;" + "B" * 80, "Ä" * 37 + "\\" + "x" * 100])
def test_fold_keeps_an_escape_whole_as_the_library_does(line: str) -> None:
    assert fold(line) == _foldline(line)
