"""The set-based part of a rebuild of the inline projections (`projections.shadowing`).

Most of a log is bookings: a `BookingPlaced` and its approval, rejection or cancellation.
Replayed event by event, each is read, decoded, made into rows in Python and sent back to
the database: three rows (`booking_list`, `availability_busy`, `feed_entries`) and a
calendar's move for every booking, most of a rebuild's time. Where their effect on those
tables is a pure function of the booking's own events, the database makes the rows itself,
set-based, from the log's JSON: one INSERT … SELECT per table over all of them. Everything
else goes through the projections' own code, so the rebuilt tables equal the live ones.

What is made set-based: the four booking events (`COVERED`, current schema versions only)
of the premises streams up to the log's head when the rebuild starts (`Plan.head`), for
the premises whose rows depend on nothing but their own bookings (`_fitting`):

- no buffer at registration, and no update of its buffer, spaces, name or address (those
  read or rewrite rows already there: `availability._reblock`, `_respaced`,
  `FeedEntries.updated`);
- no other premises ever occupies one of its spaces (a buffered neighbour's row is blocked
  until the next start on the space, which may be one of these rows);
- every booking event of the stream names the stream's premises, and no booking id of it
  appears in another stream, or twice placed (`_misfits`).

Such a premises' booking rows are then independent of the events replayed in Python (its
registration, closures, pop-ups, offers and every other premises' events), and those
events' rows of theirs. The order is: the rows' source facts are drawn from the log into
temporary tables (`rb_placed`, `rb_changes`) and the premises that do not fit are dropped
from them; the projections replay every other event up to the head in Python; the
set-based statements write the covered bookings' rows, reading the spaces and keys the
replay wrote; the replay goes on from the head as before (catch-up and swap). A calendar
(`feed_calendars`) is touched by both: its position is that of the last event that touched
it, which is the greater of the two sides' (`_CALENDARS`).

A booking's row after its events (the live handlers, in log order):

- `booking_list`: version 1 + the count of its changes, status and `updated_at` of the last
  change, `reason` of the last rejection or cancellation, `reason_code` and `late` of the
  last cancellation;
- `availability_busy`: none once rejected or cancelled; kind `booking` when placed
  confirmed or approved since, else `hold`; blocked until its end (no buffer);
- `feed_entries`: sequence = the count of its changes, status, `last_modified` and
  `position` of the last change (of the placement when none).

A change counts only after its booking's placement (before, the live handler met no row).
`tests/integration/test_runner_rebuild.py` and `tests/property/test_rebuild_equals_live.py`
check the result against the live tables, with old event versions, other offsets, buffers,
spaces, pop-ups and renames in the log.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from events.decoding import event_of
from events.sql import sqlite_instant
from events.store import read_raw
from projections.base import Projection
from projections.batching import CURRENT_SCHEMA, instant
from projections.feed_entries import uid_for

PLACED = "BookingPlaced"
CHANGES = ("BookingApproved", "BookingRejected", "BookingCancelled")
COVERED = (PLACED, *CHANGES)
# The projections whose handling of `COVERED` the statements below reproduce.
KNOWN = frozenset({"bookings", "availability", "feed_entries"})
TEMPORARY = ("rb_streams", "rb_placed", "rb_changes", "rb_outside", "rb_last", "rb_uids")
PREMISES_EVENTS = ["PremisesRegistered", "PremisesUpdated"]
WORK_MEM = "256MB"  # PostgreSQL: work_mem and temp_buffers of the set-based statements
log = logging.getLogger(__name__)


def premises_stream(premises_id: str) -> str:
    """The stream of a premises' events (`booking.service.premises_stream`)."""
    return f"premises-{premises_id}"


@dataclass
class Plan:
    """What the set-based step covers: the booking events of `streams` up to `head`."""

    head: int
    streams: list[str]
    events: int
    tables: frozenset[str]  # the names of the covered projections being rebuilt


def applies(projections: Sequence[Projection]) -> frozenset[str]:
    """The covered projections among `projections`, or none when another of them handles a
    booking event (its statements are not here)."""
    handling = {p.name for p in projections if p.handled_types() & set(COVERED)}
    return frozenset(handling) if handling <= KNOWN else frozenset()


class SQL:
    """The dialect's expressions over the log's JSON `data`."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.temp = "temp" if self.sqlite else "pg_temp"

    def text(self, key: str) -> str:
        return f"json_extract(data, '$.{key}')" if self.sqlite else f"(data->>'{key}')"

    def number(self, key: str) -> str:
        return self.text(key) if self.sqlite else f"{self.text(key)}::int"

    def boolean(self, key: str) -> str:
        return self.text(key) if self.sqlite else f"{self.text(key)}::boolean"

    def instant_of(self, key: str) -> str:
        """PostgreSQL: the instant. SQLite: the log's text, made an instant by `instant`."""
        return self.text(key) if self.sqlite else f"{self.text(key)}::timestamptz"

    def instant(self, column: str) -> str:
        """SQLite: the text `UTCDateTime` stores for the log's RFC 3339 text in `column`, cut
        and pasted where it is in UTC as Python writes it (with or without microseconds),
        else made by Python (`rb_instant`). PostgreSQL: the column, an instant already."""
        if not self.sqlite:
            return column
        c = column
        return (
            f"CASE WHEN length({c}) = 25 AND substr({c}, 20) = '+00:00' "
            f"THEN substr({c}, 1, 10) || ' ' || substr({c}, 12, 8) || '.000000' "
            f"WHEN length({c}) = 32 AND substr({c}, 27) = '+00:00' "
            f"THEN substr({c}, 1, 10) || ' ' || substr({c}, 12, 15) "
            f"ELSE rb_instant({c}) END"
        )

    def canonical_uuid(self, column: str) -> str:
        """Whether the column is a UUID in canonical text (`feed_entries.uid_for`)."""
        if self.sqlite:
            h = "[0-9a-f]"
            pattern = "-".join(h * n for n in (8, 4, 4, 4, 12))
            return f"{column} GLOB '{pattern}'"
        return (
            f"{column} ~ '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'"
        )

    def current_version(self) -> str:
        """Each covered type's current schema version, by the row's `type`."""
        whens = " ".join(f"WHEN '{t}' THEN {CURRENT_SCHEMA[t]}" for t in COVERED)
        return f"CASE type {whens} END"


def _types(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _sqlite_instant(text: str | None) -> str | None:
    return None if text is None else sqlite_instant(instant(text))


def plan(conn: Connection, projections: Sequence[Projection]) -> Plan | None:
    """Draw the covered bookings' facts from the log into temporary tables of this
    connection (kept until `drop`), in the caller's transaction; None when nothing is
    covered."""
    tables = applies(projections)
    if not tables:
        return None
    q = SQL(conn.dialect.name)
    if q.sqlite:
        driver = conn.connection.driver_connection
        driver.create_function("rb_instant", 1, _sqlite_instant, deterministic=True)  # type: ignore[union-attr]
    head = int(_run(conn, "SELECT coalesce(max(position), 0) FROM events").scalar_one())
    fitting = _fitting(conn, head)
    if not fitting:
        return None
    drop(conn)
    t = q.temp
    if not q.sqlite:
        # Memory for the joins and sums over every booking (the default 4 MB made them spill
        # to disk in many batches), and for the temporary tables: the local buffers are
        # sized at their first use in the session (`rebuild_inline` closes the connection
        # afterwards, so that no pooled backend keeps them).
        _run(conn, f"SET LOCAL work_mem = '{WORK_MEM}'")
        try:
            with conn.begin_nested():  # refused once the session has used temporary tables
                _run(conn, f"SET LOCAL temp_buffers = '{WORK_MEM}'")
        except DBAPIError:
            log.info("temp_buffers already set in this session; the set-based step goes on")
    _run(conn, "CREATE TEMP TABLE rb_streams (stream VARCHAR(200) PRIMARY KEY)")
    _insert_streams(conn, q, [premises_stream(p) for p in sorted(fitting)])
    mine = f"position <= {head} AND stream IN (SELECT stream FROM {t}.rb_streams)"
    _run(
        conn,
        f"CREATE TEMP TABLE rb_placed AS SELECT position, stream, schema_version AS sv, "
        f"recorded_at, {q.text('booking_id')} AS booking_id, "
        f"{q.text('premises_id')} AS premises_id, "
        f"{q.text('organisation_id')} AS organisation_id, {q.text('booked_by')} AS booked_by, "
        f"{q.text('series_id')} AS series_id, {q.text('status')} AS status, "
        f'{q.instant_of("start")} AS start, {q.instant_of("end")} AS "end", '
        f"{q.text('title')} AS title, {q.number('attendees')} AS attendees, "
        f"{q.boolean('public')} AS public, {q.text('notes')} AS notes, "
        f"{q.instant_of('placed_at')} AS placed_at "
        # In the order of the tables' keys: the rows are written in it, appended to their
        # indexes rather than scattered over them (beyond the cache at a million rows).
        f"FROM events WHERE type = '{PLACED}' AND {mine} ORDER BY booking_id",
    )
    at = (
        f"CASE type WHEN 'BookingApproved' THEN {q.instant_of('approved_at')} "
        f"WHEN 'BookingRejected' THEN {q.instant_of('rejected_at')} "
        f"ELSE {q.instant_of('cancelled_at')} END"
    )
    _run(
        conn,
        f"CREATE TEMP TABLE rb_changes AS SELECT position, stream, schema_version AS sv, type, "
        f"recorded_at, {q.text('booking_id')} AS booking_id, "
        f"{q.text('premises_id')} AS premises_id, {at} AS at, {q.text('reason')} AS reason, "
        f"{q.text('cause')} AS cause, {q.boolean('late')} AS late "
        f"FROM events WHERE type IN ({_types(CHANGES)}) AND {mine}",
    )
    # The booking ids of the booking events replayed in Python (the other streams').
    _run(
        conn,
        f"CREATE TEMP TABLE rb_outside AS SELECT DISTINCT {q.text('booking_id')} AS booking_id "
        f"FROM events WHERE type IN ({_types(COVERED)}) AND position <= {head} "
        f"AND stream NOT IN (SELECT stream FROM {t}.rb_streams)",
    )
    if q.sqlite:  # its joins go by index; PostgreSQL's hash the (analyzed) tables
        for index in ("rb_placed (booking_id)", "rb_changes (booking_id)", "rb_changes (position)"):
            name = "ix_" + re.sub(r"\W+", "_", index).strip("_")
            _run(conn, f"CREATE INDEX {name} ON {index}")
        _run(conn, "CREATE INDEX ix_rb_outside ON rb_outside (booking_id)")
    else:
        for name in ("rb_placed", "rb_changes", "rb_outside"):
            _run(conn, f"ANALYZE {t}.{name}")
    while misfits := _misfits(conn, q):
        streams = sorted(misfits)
        _delete_streams(conn, q, streams)
    count = sum(
        int(_run(conn, f"SELECT count(*) FROM {t}.{name}").scalar_one())
        for name in ("rb_placed", "rb_changes")
    )
    covered = sorted(_run(conn, f"SELECT stream FROM {t}.rb_streams").scalars())
    if not covered:
        drop(conn)
        return None
    return Plan(head, covered, count, tables)


def _fitting(conn: Connection, head: int) -> set[str]:
    """The premises registered up to `head` whose booking rows depend on their own booking
    events alone, as far as the premises' own events tell (see the module's docstring)."""
    registered: set[str] = set()
    unfit: set[str] = set()
    occupants: dict[str, set[str]] = {}  # space → every premises that ever occupied it
    for recorded in read_raw(conn, 0, head, PREMISES_EVENTS):
        if recorded.position > head:
            break
        e: Any = event_of(recorded)
        pid = e.premises_id
        if recorded.type == "PremisesRegistered":
            if pid in registered or e.rules.get("buffer_minutes", 0):
                unfit.add(pid)
            registered.add(pid)
            spaces = e.spaces or [pid]
        else:
            changes = e.changes
            rules = changes.get("rules")
            if (
                {"spaces", "name", "address"} & set(changes)
                or not isinstance(rules, dict | None)
                or "buffer_minutes" in (rules or {})
            ):
                unfit.add(pid)
            spaces = list(changes.get("spaces") or [])
        for space in spaces:
            occupants.setdefault(space, set()).add(pid)
    shared = {p for owners in occupants.values() if len(owners) > 1 for p in owners}
    return registered - unfit - shared


def _misfits(conn: Connection, q: SQL) -> set[str]:
    """The streams still covered whose booking events do not fit: an old schema version, a
    premises other than the stream's, a booking id placed twice or met in another stream."""
    t = q.temp
    concat = "'premises-' || premises_id"
    both = (
        f"SELECT booking_id, stream, 1 AS placed FROM {t}.rb_placed "
        f"UNION ALL SELECT booking_id, stream, 0 FROM {t}.rb_changes"
    )
    queries = [
        f"SELECT stream FROM {t}.rb_placed WHERE sv <> {CURRENT_SCHEMA[PLACED]} "
        f"OR premises_id IS NULL OR stream <> {concat}",
        f"SELECT stream FROM {t}.rb_changes WHERE sv <> {q.current_version()} "
        f"OR premises_id IS NULL OR stream <> {concat}",
        # A booking id placed twice, or met in two streams: every stream of it.
        f"SELECT x.stream FROM ({both}) AS x JOIN (SELECT booking_id FROM ({both}) AS a "
        "GROUP BY booking_id HAVING min(stream) <> max(stream) OR sum(placed) > 1) AS odd "
        "ON odd.booking_id = x.booking_id",
        f"SELECT stream FROM {t}.rb_placed WHERE booking_id IS NULL OR booking_id IN "
        f"(SELECT booking_id FROM {t}.rb_outside)",
        f"SELECT stream FROM {t}.rb_changes WHERE booking_id IS NULL OR booking_id IN "
        f"(SELECT booking_id FROM {t}.rb_outside)",
    ]
    found: set[str] = set()
    for sql in queries:
        found.update(_run(conn, f"SELECT DISTINCT stream FROM ({sql}) AS s").scalars())
    return found


def _insert_streams(conn: Connection, q: SQL, streams: list[str]) -> None:
    mark = "?" if q.sqlite else "%s"
    if streams:
        _run(
            conn,
            f"INSERT INTO {q.temp}.rb_streams (stream) VALUES ({mark})",
            [(s,) for s in streams],
        )


def _delete_streams(conn: Connection, q: SQL, streams: list[str]) -> None:
    """No longer covered: their booking ids join those replayed in Python."""
    t, mark = q.temp, "?" if q.sqlite else "%s"
    rows = [(s,) for s in streams]
    for name in ("rb_placed", "rb_changes"):
        _run(
            conn,
            f"INSERT INTO {t}.rb_outside (booking_id) SELECT booking_id FROM {t}.{name} "
            f"WHERE stream = {mark} AND booking_id IS NOT NULL",
            rows,
        )
    for name in ("rb_placed", "rb_changes", "rb_streams"):
        _run(conn, f"DELETE FROM {t}.{name} WHERE stream = {mark}", rows)


def skipped(conn: Connection) -> str:
    """The condition (over `events`) of the events the set-based step covers up to the head:
    what the replay before it leaves out."""
    t = SQL(conn.dialect.name).temp
    return f"type IN ({_types(COVERED)}) AND stream IN (SELECT stream FROM {t}.rb_streams)"


def write(conn: Connection, plan: Plan) -> None:
    """The covered bookings' rows, in the caller's transaction (on the shadow tables), once
    the replay has written everything else up to the head."""
    q = SQL(conn.dialect.name)
    t = q.temp
    if not q.sqlite:
        _run(conn, f"SET LOCAL work_mem = '{WORK_MEM}'")
    _run(
        conn,
        f"CREATE TEMP TABLE rb_last AS SELECT c.booking_id, count(*) AS n, "
        "max(c.position) AS last_pos, "
        "max(CASE WHEN c.type <> 'BookingApproved' THEN c.position END) AS reason_pos, "
        "max(CASE WHEN c.type = 'BookingCancelled' THEN c.position END) AS cancel_pos, "
        "max(CASE WHEN c.type = 'BookingApproved' THEN 1 ELSE 0 END) AS approved, "
        "max(CASE WHEN c.type <> 'BookingApproved' THEN 1 ELSE 0 END) AS released "
        f"FROM {t}.rb_changes c JOIN {t}.rb_placed p "
        "ON p.booking_id = c.booking_id AND c.position > p.position GROUP BY c.booking_id",
    )
    _run(conn, "CREATE INDEX ix_rb_last ON rb_last (booking_id)")
    if not q.sqlite:
        _run(conn, f"ANALYZE {t}.rb_last")
    joined = (
        f"FROM {t}.rb_placed p LEFT JOIN {t}.rb_last l ON l.booking_id = p.booking_id "
        f"LEFT JOIN {t}.rb_changes cl ON cl.position = l.last_pos"
    )
    status = (
        "CASE cl.type WHEN 'BookingApproved' THEN 'confirmed' "
        "WHEN 'BookingRejected' THEN 'rejected' WHEN 'BookingCancelled' THEN 'cancelled' "
        "ELSE p.status END"
    )
    start, end = q.instant("p.start"), q.instant('p."end"')
    if "bookings" in plan.tables:
        _run(
            conn,
            "INSERT INTO booking_list (id, premises_id, organisation_id, booked_by, "
            'series_id, status, start, "end", title, attendees, public, notes, created_at, '
            "updated_at, version, late, reason, reason_code) "
            "SELECT p.booking_id, p.premises_id, p.organisation_id, p.booked_by, "
            f"p.series_id, {status}, {start}, {end}, p.title, p.attendees, p.public, p.notes, "
            f"{q.instant('p.placed_at')}, {q.instant('coalesce(cl.at, p.placed_at)')}, "
            "1 + coalesce(l.n, 0), cc.late, cr.reason, nullif(cc.cause, '') "
            f"{joined} LEFT JOIN {t}.rb_changes cr ON cr.position = l.reason_pos "
            f"LEFT JOIN {t}.rb_changes cc ON cc.position = l.cancel_pos ORDER BY p.booking_id",
        )
    if "availability" in plan.tables:
        _run(
            conn,
            "INSERT INTO availability_busy (premises_id, ref_id, space_id, space_key, kind, "
            'start, "end", blocked_until, title, public) '
            "SELECT p.premises_id, p.booking_id, s.space_id, k.space_key, "
            "CASE WHEN p.status = 'confirmed' OR l.approved = 1 THEN 'booking' "
            f"ELSE 'hold' END, {start}, {end}, {end}, "
            "CASE WHEN p.public THEN p.title END, p.public "
            f"FROM {t}.rb_placed p JOIN availability_spaces s ON s.premises_id = p.premises_id "
            "JOIN availability_space_keys k ON k.space_id = s.space_id "
            f"LEFT JOIN {t}.rb_last l ON l.booking_id = p.booking_id "
            "WHERE coalesce(l.released, 0) = 0 ORDER BY p.premises_id, p.booking_id, s.space_id",
        )
    if "feed_entries" in plan.tables:
        _write_feeds(conn, q, joined, status)
    _run(conn, f"DROP TABLE {t}.rb_last")


def _write_feeds(conn: Connection, q: SQL, joined: str, status: str) -> None:
    t = q.temp
    start, end = q.instant("p.start"), q.instant('p."end"')
    odd = _run(
        conn, f"SELECT booking_id FROM {t}.rb_placed WHERE NOT ({q.canonical_uuid('booking_id')})"
    ).scalars()
    _run(
        conn, "CREATE TEMP TABLE rb_uids (ref_id VARCHAR(64) PRIMARY KEY, uid VARCHAR(64) NOT NULL)"
    )
    uids = [(ref, uid_for("booking", ref)) for ref in set(odd)]
    if uids:
        mark = "?" if q.sqlite else "%s"
        _run(conn, f"INSERT INTO {t}.rb_uids VALUES ({mark}, {mark})", uids)
    _run(
        conn,
        "INSERT INTO feed_entries (ref_id, kind, premises_id, organisation_id, booked_by, uid, "
        'sequence, status, start, "end", title, public, attendees, created_at, '
        "last_modified, position) "
        "SELECT p.booking_id, 'booking', p.premises_id, p.organisation_id, p.booked_by, "
        f"coalesce(u.uid, p.booking_id), coalesce(l.n, 0), {status}, {start}, {end}, "
        "p.title, p.public, p.attendees, "
        f"{q.instant('p.placed_at')}, coalesce(cl.recorded_at, p.recorded_at), "
        f"coalesce(cl.position, p.position) {joined} "
        f"LEFT JOIN {t}.rb_uids u ON u.ref_id = p.booking_id ORDER BY p.booking_id",
    )
    # Every calendar a covered event touched moves to the last such event, unless the
    # replay's own touches (registrations, closures, other premises) came later.
    touches = (
        "SELECT 'premises' AS scope, premises_id AS \"key\", position "
        f"FROM {t}.rb_placed "
        "UNION ALL SELECT 'organisation', organisation_id, position "
        f"FROM {t}.rb_placed WHERE organisation_id IS NOT NULL "
        "UNION ALL SELECT 'premises', p.premises_id, c.position "
        f"FROM {t}.rb_changes c JOIN {t}.rb_placed p "
        "ON p.booking_id = c.booking_id AND c.position > p.position "
        "UNION ALL SELECT 'organisation', p.organisation_id, c.position "
        f"FROM {t}.rb_changes c JOIN {t}.rb_placed p "
        "ON p.booking_id = c.booking_id AND c.position > p.position "
        "WHERE p.organisation_id IS NOT NULL"
    )
    _run(
        conn,
        'INSERT INTO feed_calendars (scope, "key", position, changed_at) '
        'SELECT m.scope, m."key", m.position, e.recorded_at FROM (SELECT scope, "key", '
        f'max(position) AS position FROM ({touches}) AS touched GROUP BY scope, "key") AS m '
        "JOIN events e ON e.position = m.position WHERE true "
        'ON CONFLICT (scope, "key") DO UPDATE SET position = excluded.position, '
        "changed_at = excluded.changed_at WHERE excluded.position > feed_calendars.position",
    )
    _run(conn, f"DROP TABLE {t}.rb_uids")


def _run(conn: Connection, sql: str, parameters: Any = None) -> Any:
    """Run a statement, and log (DEBUG) how long it took (`python -m bench.rebuild --parts`)."""
    began = time.monotonic()
    result = (
        conn.exec_driver_sql(sql, parameters)
        if parameters is not None
        else conn.exec_driver_sql(sql)
    )
    log.debug("%.2f s: %s", time.monotonic() - began, " ".join(sql.split())[:120])
    return result


def drop(conn: Connection) -> None:
    """The temporary tables go (they live as long as the connection)."""
    t = SQL(conn.dialect.name).temp
    for name in TEMPORARY:
        _run(conn, f"DROP TABLE IF EXISTS {t}.{name}")
