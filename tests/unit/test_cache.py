"""booking/cache.py's bounded caches: found only under the version they were made for,
and the least recently used dropped first once over their size in bytes."""

from __future__ import annotations

from booking.cache import Memo, Versioned


def test_versioned_finds_a_value_only_under_its_version() -> None:
    kept: Versioned[bytes] = Versioned(max_bytes=100)
    kept.put("room", 7, b"seven", 5)
    assert kept.get("room", 7) == b"seven"
    assert kept.get("room", 8) is None  # a reader that has seen a newer version misses
    kept.put("room", 8, b"eight", 5)
    assert kept.get("room", 7) is None  # one value per name: the old one is gone
    assert (kept.hits, kept.misses) == (1, 2)


def test_versioned_drops_the_least_recently_used_over_its_size() -> None:
    kept: Versioned[str] = Versioned(max_bytes=10)
    kept.put("a", 1, "a", 4)
    kept.put("b", 1, "b", 4)
    assert kept.get("a", 1) == "a"  # now b is the least recently used
    kept.put("c", 1, "c", 4)
    assert kept.get("b", 1) is None
    assert (kept.get("a", 1), kept.get("c", 1)) == ("a", "c")
    kept.put("huge", 1, "x", 11)  # larger than the whole cache: not kept
    assert kept.get("huge", 1) is None and len(kept) == 2


def test_memo_drops_the_least_recently_used_over_its_size() -> None:
    kept: Memo[int] = Memo(max_bytes=8)
    kept.put(("x", 1), 1, 4)
    kept.put(("y", 2), 2, 4)
    kept.put(("y", 2), 2, 4)  # replacing does not count twice
    assert len(kept) == 2
    kept.put(("z", 3), 3, 4)
    assert kept.get(("x", 1)) is None
    assert (kept.get(("y", 2)), kept.get(("z", 3))) == (2, 3)
