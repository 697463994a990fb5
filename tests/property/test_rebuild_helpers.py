"""The shortcuts a rebuild's writes take give what the long way gives, for any input:
an instant's SQLite text, rows as tuples, a booking's feed UID."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from events.sql import UTCDateTime, sqlite_instant
from projections.batching import _tuples
from projections.feed_entries import UID_NAMESPACE, uid_for

ZONES = st.one_of(
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)


@given(st.datetimes(timezones=ZONES))
def test_the_sqlite_instant_text_is_what_sqlalchemy_stores(value: datetime) -> None:
    # SQLAlchemy's own way: `UTCDateTime`'s conversion, then SQLite DATETIME's text.
    dialect = sqlite.dialect()
    process = sqlite.DATETIME().bind_processor(dialect)
    assert process is not None
    assert sqlite_instant(value) == process(UTCDateTime().process_bind_param(value, dialect))


def test_the_earlier_and_the_later_of_a_repeated_local_time_have_their_own_texts() -> None:
    # Equal as datetimes (one zone: their wall clocks compare), an hour apart as instants.
    helsinki = ZoneInfo("Europe/Helsinki")
    earlier = datetime(2027, 10, 31, 3, 30, tzinfo=helsinki)
    later = datetime(2027, 10, 31, 3, 30, tzinfo=helsinki, fold=1)
    assert sqlite_instant(earlier) == "2027-10-31 00:30:00.000000"
    assert sqlite_instant(later) == "2027-10-31 01:30:00.000000"


NAMES = ["a", "b", "c", "d"]


@given(
    st.lists(
        st.dictionaries(st.sampled_from(NAMES), st.one_of(st.none(), st.integers(), st.text())),
        max_size=8,
    ),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True),
)
def test_rows_as_tuples_leave_none_where_a_row_lacks_a_name(
    rows: list[dict[str, object]], names: list[str]
) -> None:
    assert _tuples(rows, names) == [tuple(row.get(n) for n in names) for row in rows]


@given(st.uuids(), st.booleans())
def test_a_uuid_id_is_its_own_uid_in_canonical_form(value: uuid.UUID, upper: bool) -> None:
    text = str(value).upper() if upper else str(value)
    assert uid_for("booking", text) == str(value)


@given(st.text(max_size=40))
def test_any_other_id_gets_a_name_based_uid(text: str) -> None:
    try:
        expected = str(uuid.UUID(text))
    except ValueError:
        expected = str(uuid.uuid5(UID_NAMESPACE, f"booking:{text}"))
    assert uid_for("booking", text) == expected
