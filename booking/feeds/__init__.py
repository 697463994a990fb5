"""iCalendar subscriptions that calendar apps trust (RFC 5545 and RFC 7986), rendered from
the inline `feed_entries` projection, never by replaying the log.

- `query` — what a feed covers: its scope, its window of local days (30 back to 365 ahead
  by default; `?from=&to=` within a year back and two ahead), the entries in it.
- `render` — the iCalendar text: the calendar's properties and one VEVENT per entry.
- `cap` — no answer over 1 MB: how far a feed reaches when all of its window would not fit.
- `bodies` — a feed's body; public ones kept per process and updated from the changes.
- `http` — the blueprint: ETag, Last-Modified, 304, gzip.
"""

from booking.feeds.bodies import Body, PublicBody, private_body, public_bodies, public_body
from booking.feeds.cap import LIMIT, Reach, fit
from booking.feeds.http import blp, reach_of_token, serve
from booking.feeds.query import (
    Scope,
    Window,
    calendar_name,
    entry_rows,
    heads_of,
    in_window,
    token_scope,
    window_of,
)
from booking.feeds.render import (
    REFRESH,
    STATUSES,
    event_of,
    fold,
    premises_label,
    premises_name,
    private_event,
    public_event,
    reach_text,
    render,
)

__all__ = [
    "LIMIT",
    "REFRESH",
    "STATUSES",
    "Body",
    "PublicBody",
    "Reach",
    "Scope",
    "Window",
    "blp",
    "calendar_name",
    "entry_rows",
    "event_of",
    "fit",
    "fold",
    "heads_of",
    "in_window",
    "premises_label",
    "premises_name",
    "private_body",
    "private_event",
    "public_bodies",
    "public_body",
    "public_event",
    "reach_of_token",
    "reach_text",
    "render",
    "serve",
    "token_scope",
    "window_of",
]
