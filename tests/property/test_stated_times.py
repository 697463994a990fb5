"""`check_stated_times` refuses exactly the instants written as a local time that never
happens, in an offset the zone has at that wall time — whatever the zone, the offset and
the instant, near the clock changes where it matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.errors import RuleBroken
from booking.usecases.times import check_stated_times, exists

HELSINKI, LONDON, ST_JOHNS = (
    ZoneInfo(n) for n in ("Europe/Helsinki", "Europe/London", "America/St_Johns")
)
# Each zone's spring and autumn changes of 2027, in UTC.
CHANGES = [
    (HELSINKI, datetime(2027, 3, 28, 1, tzinfo=UTC)),
    (HELSINKI, datetime(2027, 10, 31, 1, tzinfo=UTC)),
    (LONDON, datetime(2027, 3, 28, 1, tzinfo=UTC)),
    (LONDON, datetime(2027, 10, 31, 1, tzinfo=UTC)),
    (ST_JOHNS, datetime(2027, 3, 14, 5, 30, tzinfo=UTC)),
    (ST_JOHNS, datetime(2027, 11, 7, 4, 30, tzinfo=UTC)),
]


def refused(instant: datetime, zone: ZoneInfo) -> bool:
    """The rule written out the long way: another offset than the zone's at that instant,
    a wall time that does not exist in the zone, and an offset the zone has at that wall
    time (before or after the change)."""
    offset = instant.utcoffset()
    if offset is None or offset == instant.astimezone(zone).utcoffset():
        return False
    wall = instant.replace(tzinfo=None)
    offsets = {wall.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1)}
    return not exists(wall, zone) and offset in offsets


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(CHANGES),
    st.integers(-16 * 4, 16 * 4),  # quarter hours from the change
    st.sampled_from([-210, -150, 0, 60, 120, 180]),  # offsets in minutes, the zones' among them
    st.sampled_from([0, 1]),  # the fold an instant may carry (astimezone sets it)
)
def test_a_time_is_refused_exactly_when_it_never_happens_in_an_offset_of_the_zone(
    change: tuple[ZoneInfo, datetime], quarters: int, minutes: int, fold: int
) -> None:
    zone, around = change
    written = timezone(timedelta(minutes=minutes)) if minutes else UTC
    instant = (around + timedelta(minutes=15 * quarters)).astimezone(written).replace(fold=fold)
    try:
        check_stated_times({"start": instant}, zone)
    except RuleBroken:
        assert refused(instant, zone)
    else:
        assert not refused(instant, zone)
