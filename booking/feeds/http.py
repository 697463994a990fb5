"""/feeds/...: the feeds over HTTP.

- `/feeds/premises/<id>.ics` — public: every booking as busy time, titled only when the
  booking is public ("Varattu / Booked" otherwise), closures as
  "Suljettu / Stängd / Closed" (fixed words in Finnish, Swedish and English).
- `/feeds/private/<token>.ics` — a feed token's scope: staff see their premises' bookings
  with details (title, organisation, attendees, notes, contact unless erased) and closures
  with the reason; an organisation sees its own bookings with details.
- Premises made of spaces: a premises feed (public or staff) also shows the bookings and
  closures of the other premises that share a space with it now (a half shows the whole
  hall's, the whole both halves'), as busy time only — "Varattu / Booked (<their
  name>)", LOCATION theirs, never a title, reason, organisation or contact.

The ETag is the scope's log position (the latest of its premises and of those sharing a
space with them) plus what else shapes the body (the window asked for, the premises sharing
its spaces, the rendering format, and for a details feed the latest erasure of anyone, which
empties contacts and notes), so it is stable while nothing changes. Last-Modified is the
scope's last change (or that erasure), or the local midnight that moved the window if later.
A client that takes gzip gets the same text gzipped, under an ETag of its own (`-gzip` after
the identity's), with `Vary: Accept-Encoding`; either ETag in If-None-Match names the same
data.
Every answer says the local days it covers in `X-Feed-Window` (`first/last`), and
`X-Feed-Narrowed: true` when that is less than asked (the 1 MB cap, booking/feeds/cap.py).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from sqlalchemy.engine import Connection
from werkzeug.exceptions import NotFound
from werkzeug.http import http_date

from booking.cache import caches
from booking.feeds.bodies import Body, private_body, public_bodies, public_body
from booking.feeds.cap import LIMIT, Reach
from booking.feeds.query import Resolved, Scope, Window, premises_scope, token_scope, window_of
from booking.http import now, runtime, statement_reads

blp = Blueprint("feeds", __name__, url_prefix="/feeds")

FORMAT = "3"  # part of every ETag: change it when the rendering changes
GZIP_LEVEL = 6
# Within this long after a change, If-Modified-Since never gives 304 and Last-Modified is
# sent a second early: a change in the same second, or one committing late, must not hide.
SETTLE = timedelta(seconds=10)


@dataclass(frozen=True)
class Validators:
    etag: str  # without quotes, of the identity (uncompressed) body
    position: int  # the scope's last change: what the body shows
    last_modified: datetime
    settled: bool  # the last change is older than SETTLE

    @property
    def last_modified_header(self) -> str:
        whole = self.last_modified.replace(microsecond=0)
        return http_date(whole if self.settled else whole - timedelta(seconds=1))

    def etag_for(self, gzipped: bool) -> str:
        return f"{self.etag}-gzip" if gzipped else self.etag

    def not_modified(self, now: datetime) -> bool:
        """If-None-Match when sent (it wins, RFC 9110 13.2.2), else a truthful
        If-Modified-Since: one not in the future, for a change that has settled."""
        if request.headers.get("If-None-Match") is not None:
            sent = request.if_none_match
            return sent.contains_weak(self.etag) or sent.contains_weak(self.etag_for(True))
        since = request.if_modified_since
        if since is None or since > now or not self.settled:
            return False
        return self.last_modified.replace(microsecond=0) <= since


def validators(
    scope: Scope, heads: list[Any], window: Window, now: datetime, limit: int = LIMIT
) -> Validators:
    position = max((h.position for h in heads), default=0)
    changed = max((h.changed_at for h in heads), default=window.epoch)
    if scope.erased is not None:  # a details feed, emptied of an erased person's data
        changed = max(changed, scope.erased)
    shaped_by = f"{FORMAT}|{scope.ident}|{window.key}|{limit}"
    digest = hashlib.sha256(shaped_by.encode()).hexdigest()[:16]
    return Validators(
        etag=f"{position}-{digest}",
        position=position,
        last_modified=max(changed, window.epoch),
        settled=now - changed >= SETTLE,
    )


def limit_of_feeds() -> int:
    """The cap of a feed answer's octets: 1 MB, or the app's BOOKING_FEED_LIMIT (which
    tests set lower to see a feed narrow without making a thousand bookings)."""
    return int(current_app.config.get("BOOKING_FEED_LIMIT", LIMIT))


def takes_gzip() -> bool:
    """Whether the client accepts gzip (a q=0 refuses it)."""
    return request.accept_encodings["gzip"] > 0


def compressed(text: bytes) -> bytes:
    # mtime 0: the same text gives the same bytes, as a strong ETag promises.
    return gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0)


def serve(resolve: Callable[[Connection, Window], Resolved]) -> Response:
    """The feed `resolve` finds with its `feed_calendars` heads (404 without one), or 304
    when the client's copy is current; the 304 path is one read of the heads."""
    instant = now()
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    window = window_of(
        instant.astimezone(zone).date(), zone, request.args.get("from"), request.args.get("to")
    )
    gzipped = takes_gzip()
    with statement_reads(runtime().engine) as conn:
        # The heads are read before the entries, so the body is never older than its ETag.
        found = resolve(conn, window)
        if found is None:
            raise NotFound("No such feed.")
        scope, heads = found
        limit = limit_of_feeds()
        checks = validators(scope, heads, window, instant, limit)
        headers = {
            "ETag": f'"{checks.etag_for(gzipped)}"',
            "Last-Modified": checks.last_modified_header,
            "Cache-Control": ("private" if scope.details else "public") + ", no-cache",
            "Vary": "Accept-Encoding",
        }
        if scope.details:
            headers["X-Robots-Tag"] = "noindex"
        if checks.not_modified(instant):
            return Response(status=304, headers=headers)
        if scope.details:
            personal = runtime().vault.reader(conn)
            body = private_body(conn, scope, heads, window, personal, limit)
            text = compressed(body.text) if gzipped else body.text
        else:
            body, text = _public(conn, scope, heads, window, checks, gzipped, limit)
    headers["X-Feed-Window"] = body.reach.header
    if body.reach.narrowed:
        headers["X-Feed-Narrowed"] = "true"
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(text, mimetype="text/calendar", headers=headers)


def _public(
    conn: Connection,
    scope: Scope,
    heads: list[Any],
    window: Window,
    checks: Validators,
    gzipped: bool,
    limit: int,
) -> tuple[Body, bytes]:
    """A public feed's body and the text to send. The ETag names everything a public body
    shows (entries, names, addresses, window): the body made for it, and its gzip, serve
    every request that reads it."""
    bodies, name = caches().feed_bodies, (scope.ident, window.key, gzipped)
    found: tuple[Body, bytes] | None = bodies.get(name, checks.etag)
    if found is None:
        body = public_body(conn, scope, heads, window, checks.position, limit)
        found = (body, compressed(body.text) if gzipped else body.text)
        bodies.put(name, checks.etag, found, len(found[1]))
    return found


def reach_of_token(token: str) -> Reach | None:
    """How far the default window of a feed token's feed reaches now (None for no such
    feed): what the /feeds page tells whoever just made one. Renders it, as a request would."""
    instant = now()
    zone = ZoneInfo(current_app.config["BOOKING_TIMEZONE"])
    window = window_of(instant.astimezone(zone).date(), zone, None, None)
    with statement_reads(runtime().engine) as conn:
        found = token_scope(conn, token)
        if found is None:
            return None
        scope, heads = found
        personal = runtime().vault.reader(conn)
        return private_body(conn, scope, heads, window, personal, limit_of_feeds()).reach


@blp.route("/premises/<premises_id>.ics")
def premises_feed(premises_id: str) -> Response:
    """A premises' public busy times: no names of people or organisations, titles only for
    public bookings."""

    def resolve(conn: Connection, window: Window) -> Resolved:
        # The body made last of this feed (none when premises share its spaces): the
        # entries changed since go with the heads' read.
        base = public_bodies().get((f"public:{premises_id}", window.key))
        return premises_scope(conn, premises_id, None if base is None else base.position)

    return serve(resolve)


@blp.route("/private/<token>.ics")
def private_feed(token: str) -> Response:
    """A feed token's bookings with details; 404 for a revoked or unknown token."""
    if len(token) > 100:
        raise NotFound("No such feed.")
    return serve(lambda conn, _window: token_scope(conn, token))
