"""Per-process caches of rendered responses and fragments, bounded in bytes.

Each gunicorn worker (each app) keeps its own, so nothing here is shared between processes
and nothing needs invalidating from outside: a value is only ever found under the version
it was made for, and that version is read from the database in the request that asks. A
write the client has seen acknowledged has committed, so the version a later request reads
is at least that write's, and a cached value for an older version is never found.

Only public, non-personal renderings are kept (public feeds, availability): a private feed
opens personal data, which must become unreadable the moment a person is erased.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from flask import Flask, current_app

V = TypeVar("V")

EXTENSION = "tilavaraus.caches"


class Versioned(Generic[V]):
    """The latest value per name with the version it was made for, least recently used
    names dropped first once the values' sizes pass `max_bytes`. `get` finds a value only
    under the version asked for, so a reader that has seen a newer version misses."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Hashable, V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, name: Hashable, version: Hashable) -> V | None:
        with self._lock:
            found = self._items.get(name)
            if found is None or found[0] != version:
                self.misses += 1
                return None
            self._items.move_to_end(name)
            self.hits += 1
            return found[1]

    def put(self, name: Hashable, version: Hashable, value: V, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(name, None)
            if old is not None:
                self._size -= old[2]
            self._items[name] = (version, value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, _, dropped) = self._items.popitem(last=False)
                self._size -= dropped

    def __len__(self) -> int:
        return len(self._items)


class Memo(Generic[V]):
    """Values by a key that holds everything they are made from (so never stale), least
    recently used dropped first once their sizes pass `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._size -= dropped

    def __len__(self) -> int:
        return len(self._items)


class Caches:
    """One app's caches (sizes in bytes of the rendered values, per process)."""

    def __init__(self) -> None:
        # A public feed's body and the bytes sent (booking/feeds/http.py), by feed and ETag.
        self.feed_bodies: Versioned[Any] = Versioned(16 * 2**20)
        self.feed_events: Memo[bytes] = Memo(16 * 2**20)
        # A premises' availability body by everything it is made of (booking/api/premises.py).
        self.availability: Memo[bytes] = Memo(8 * 2**20)


def caches(app: Flask | None = None) -> Caches:
    """The caches of `app` (default: the current one), made on first use."""
    extensions = (app or current_app).extensions
    found: Caches | None = extensions.get(EXTENSION)
    if found is None:
        found = extensions.setdefault(EXTENSION, Caches())
    return found
