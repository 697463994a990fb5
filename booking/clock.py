"""The one seam for time and new ids.

The app, the jobs, the CLI and the demo loader are handed a `Clock` (aware UTC instants) and
`Ids` (new identifiers); nothing else reads the wall clock or mints ids. Production uses the
system's; tests set the time through a fixture (time-machine), and may hand in their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Ids = Callable[[], str]


def system_clock() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def random_ids() -> str:
    """A new random id (UUID 4), as text."""
    return str(uuid.uuid4())
