"""The organisation-type breakdown of one statistics group (projections.usage.query): whatever
the types and their numbers of organisations, it shows each type at most once, never a type
of fewer than three organisations on its own, and the figures add up to the group's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.usage.query import MIN_PARTIES, Group, _broken_down
from projections.usage.tables import MEASURES

TYPES = ("association", "company", "other")


def group(parties: int, value: int) -> Group:
    found = Group(parties=parties)
    found.add([value] * len(MEASURES))
    return found


parts_strategy = st.dictionaries(
    st.sampled_from(TYPES),
    st.tuples(st.integers(1, 6), st.integers(0, 50)),
    min_size=1,
)


@given(parts_strategy)
def test_each_type_once_none_too_small_and_the_sums_whole(found: dict) -> None:
    parts = {t: group(n, v) for t, (n, v) in found.items()}
    shown = _broken_down(parts)
    keys = [k for k, _ in shown]
    assert len(keys) == len(set(keys)), keys
    for key, g in shown:
        assert key == "all" or g.parties >= MIN_PARTIES, (key, g.parties)
    total = sum(v for _, v in found.values())
    assert sum((g.measures or [0])[0] for _, g in shown) == total


def test_a_pool_of_small_types_joins_a_large_other() -> None:
    # "other" itself has five organisations, association and company two each: the pool of
    # the two small types (four) goes into "other", not into a second row named "other".
    parts = {"other": group(5, 10), "association": group(2, 3), "company": group(2, 4)}
    shown = dict(_broken_down(parts))
    assert list(shown) == ["other"]
    assert shown["other"].parties == 9 and (shown["other"].measures or [])[0] == 17
