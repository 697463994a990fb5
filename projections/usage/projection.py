"""Usage statistics: a rollup of bookings and pop-up requests by premises x local date x hour.

What a cell counts (all attributed to the cell where the booking or request *starts*, except
booked seconds, which fall into every cell the booking covers):

- `booked_s`: seconds of confirmed bookings (pending ones count once approved; cancelled
  ones stop counting);
- `bookings`: bookings placed and not rejected; `cancellations`, `late_cancellations`;
- `popup_requests`, `popup_approved`, `popup_rejected`, `popup_expired`;
- `attendance_ppm` / `attendance_n`: the sum and count of attendees / capacity (millionths)
  of confirmed bookings, for the mean;
- `lead_<i>`: bookings by lead time (start - placed_at) in the buckets of `LEAD_EDGES`, from
  which the median is estimated (a year of bookings cannot be read back within a request).

The same measures sit in three tables of different grain, so that a query reads the coarsest
one that answers it: `usage_cells` (premises, date, hour, party), `usage_days` (premises,
date) and `usage_hours` (date, hour, all premises). A party is an organisation or, for
bookings and requests of a person, a hash of the person's id: it is only ever counted
(groups of fewer than 3 are not broken down by organisation) and never shown. No names,
e-mails or titles are kept. Open hours are not stored: see `projections.usage.hours`.

Every count is an integer and every touched cell keeps its row, even at zero, so the live
projection equals a rebuild whatever the batch boundaries.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection

from events.catalog import JSONObject
from events.store import RecordedEvent
from projections.batching import (
    BatchProjection,
    data_of,
    instant,
    paced,
    rows_by_key,
    upsert_replacing,
    upsert_rows,
)
from projections.usage.hours import split_hours
from projections.usage.spreading import spread_by_sql
from projections.usage.tables import (
    INDEX,
    LEADS,
    MEASURES,
    TIME_COLUMNS,
    define,
    lead_bucket,
    time_columns,
)


# Lower edges (hours) of the lead-time buckets; the last bucket ends at LEAD_TOP.
def party_of(organisation_id: str | None, person_id: str) -> str:
    """Who to count distinct: the organisation, or a person by a one-way hash of the id."""
    if organisation_id:
        return organisation_id
    return "p-" + hashlib.sha256(person_id.encode()).hexdigest()[:24]


# What decides the cells a booking's events change: the premises, party and organisation
# type it counts for, its zone and its start and end (epoch seconds).
Shape = tuple[str, str, str, str, int, int]
CellKey = tuple[str, date, int, str]  # premises, local date, local hour, party


class _Batch:
    """What one batch (or a held rebuild) changes, gathered in memory and written at the end.

    A booking's events add counts to the cell it starts in and, while it is confirmed,
    seconds (by sign) to every cell it covers. They are summed per shape of booking first
    (`shapes`: the sum of the signs of its uses, its start cell's changes and when it was
    first touched and first used) and spread into cells once, when written (`cells`):
    spreading every event into its cells, days and hours as it came cost a rebuild a third
    of its time. Pop-up requests, one cell each, go into `direct`.

    A cell keeps the organisation type of whatever touched it first (it is no part of its
    key): each touch carries the number of the event that made it (`seq`), and the
    spreading keeps the type of the earliest, as adding event by event would have.
    """

    def __init__(self) -> None:
        # shape -> [sum of signs, seq of the first touch, seq of the first use or None,
        #           {index in MEASURES: amount} of the start cell]
        self.shapes: dict[Shape, list[Any]] = {}
        # cell -> [org_type, seq of the first touch, values]
        self.direct: dict[CellKey, list[Any]] = {}
        self.seq = 0

    def size(self) -> int:
        return len(self.shapes) + len(self.direct)

    def _shape(self, booking: dict[str, Any]) -> list[Any]:
        shape = (
            booking["premises_id"],
            booking["party"],
            booking["org_type"],
            booking["timezone"],
            booking["start_s"],
            booking["end_s"],
        )
        if (found := self.shapes.get(shape)) is None:
            self.seq += 1
            found = self.shapes[shape] = [0, self.seq, None, {}]
        return found

    def at_start(self, booking: dict[str, Any], changes: Iterable[tuple[int, int]]) -> None:
        """Add `changes`, (index in `MEASURES`, amount) pairs, to the booking's start cell."""
        start = self._shape(booking)[3]
        for i, amount in changes:
            start[i] = start.get(i, 0) + amount

    def use(self, booking: dict[str, Any], sign: int, also: Iterable[tuple[int, int]]) -> None:
        """Add (or take back) a confirmed booking's seconds in every cell it covers, its
        attendance and `also` in its start cell. A booking that covers no time (its end not
        after its start) has no cells, so none of this lands anywhere."""
        if booking["end_s"] <= booking["start_s"]:
            return
        found = self._shape(booking)
        found[0] += sign
        if found[2] is None:
            self.seq += 1
            found[2] = self.seq
        start = found[3]
        for i, amount in (
            *also,
            (ATTENDANCE_PPM, sign * booking["attendance_ppm"]),
            (ATTENDANCE_N, sign),
        ):
            start[i] = start.get(i, 0) + amount

    def add(
        self,
        premises_id: str,
        party: str,
        org_type: str,
        day: date,
        hour: int,
        changes: Iterable[tuple[int, int]],
    ) -> None:
        """Add `changes` to one cell (a pop-up request's)."""
        key = (premises_id, day, hour, party)
        if (found := self.direct.get(key)) is None:
            self.seq += 1
            found = self.direct[key] = [org_type, self.seq, [0] * len(MEASURES)]
        values = found[2]
        for i, amount in changes:
            values[i] += amount

    def direct_cells(self) -> dict[CellKey, list[Any]]:
        """The cells of `direct`, copied: [org_type, seq of its first touch, values]."""
        return {key: [org, seq, list(values)] for key, (org, seq, values) in self.direct.items()}

    def cells(self) -> dict[CellKey, list[Any]]:
        """Every cell touched: [org_type, seq of its first touch, values]."""
        found = self.direct_cells()
        width = len(MEASURES)
        for (premises_id, party, org_type, zone, start_s, end_s), shape in self.shapes.items():
            signs, first, first_use, start = shape
            if first_use is None:
                day, hour = _start_cell(start_s, zone)
                pieces: tuple[tuple[date, int, int], ...] = ((day, hour, 0),)
            else:
                pieces = _cells_of(start_s, end_s, zone)
            seq = first
            for day, hour, seconds in pieces:
                key = (premises_id, day, hour, party)
                if (cell := found.get(key)) is None:
                    cell = found[key] = [org_type, seq, [0] * width]
                elif seq < cell[1]:
                    cell[0], cell[1] = org_type, seq
                values = cell[2]
                if start is not None:
                    for i, amount in start.items():
                        values[i] += amount
                    start = None
                values[BOOKED_S] += signs * seconds
                seq = first_use
        return found


# Where some measures sit in a cell's list.
BOOKED_S, BOOKINGS = INDEX["booked_s"], INDEX["bookings"]
CANCELLATIONS, LATE_CANCELLATIONS = INDEX["cancellations"], INDEX["late_cancellations"]
ATTENDANCE_PPM, ATTENDANCE_N = INDEX["attendance_ppm"], INDEX["attendance_n"]
LEAD_INDEX = tuple(INDEX[name] for name in LEADS)


@lru_cache(maxsize=1 << 14)
def _cells_of(start_s: int, end_s: int, zone_name: str) -> tuple[tuple[date, int, int], ...]:
    """(local date, hour, seconds) of the cells a booking covers: remembered, because many
    bookings share their times (whole hours, the same slots in many premises)."""
    start = datetime.fromtimestamp(start_s, UTC)
    end = datetime.fromtimestamp(end_s, UTC)
    return tuple(split_hours(start, end, ZoneInfo(zone_name)))


@lru_cache(maxsize=1 << 14)
def _start_cell(start_s: int, zone_name: str) -> tuple[date, int]:
    """The local date and hour of the cell a booking starts in."""
    local = datetime.fromtimestamp(start_s, ZoneInfo(zone_name))
    return local.date(), local.hour


log = logging.getLogger(__name__)

ROW_KINDS = ("premises", "organisations", "bookings", "popups")


class _State:
    """The rows a run of events reads and changes (by kind and key), the keys it changed, and
    its new schedules, closures and cell changes: one batch's, or a held rebuild's."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in ROW_KINDS}
        self.changed: dict[str, set[str]] = {kind: set() for kind in ROW_KINDS}
        self.schedules: list[dict[str, Any]] = []
        self.closures: list[dict[str, Any]] = []
        self.out = _Batch()

    def size(self) -> int:
        rows = self.rows
        return len(rows["bookings"]) + len(rows["popups"]) + self.out.size()


# A held rebuild writes what it holds once it holds this many bookings, requests and cells
# together (about 0.5 kB each), between two batches (`spill`), and goes on from the
# database: memory stays bounded.
HELD_ROWS = 1_500_000
# SQLite: a held rebuild's writes go in parts of about this many bookings, requests and
# cells' shapes (a premises' rows never meet another's), each part a write transaction of
# its own followed by a pause, and its days' and hours' sums in runs of `SUM_ROWS`: at
# 1,000,000 events one transaction of it all held the one writer's lock for over 30 s, and
# the inline projections' swap beside it gave up (`database is locked`). Each part spreads
# the times of its own premises again (`spread_by_sql`), so parts of a premises or two
# (25,000) made the 1M rebuild's asynchronous side slower; 100,000 is four or five.
FLUSH_PART_ROWS = 100_000
SUM_ROWS = 20_000
_KEYS = {
    "premises": "premises_id",
    "organisations": "organisation_id",
    "bookings": "booking_id",
    "popups": "request_id",
}


class Usage(BatchProjection):
    name = "usage"
    event_types = frozenset(
        {
            "OrganisationRegistered",
            "PremisesRegistered",
            "PremisesUpdated",
            "PremisesRetired",
            "ClosureAdded",
            "BookingPlaced",
            "BookingApproved",
            "BookingRejected",
            "BookingCancelled",
            "PopupRequested",
            "PopupApproved",
            "PopupRejected",
            "PopupExpired",
        }
    )
    define = staticmethod(define)
    _held: _State | None = None
    # Whether the tables are still empty: a held rebuild's first write then only inserts.
    _fresh = False

    @property
    def t(self) -> dict[str, Table]:
        return {
            table.name.removeprefix("usage_").removesuffix(self.suffix): table
            for table in self.tables
        }

    def hold(self) -> None:
        """Keep rows and sums in memory from one batch to the next (see `BatchProjection`):
        a rebuild then writes each booking, cell, day and hour once, not once per batch
        that touches it (a day's or hour's sums, the most)."""
        self._held = _State()
        self._fresh = True

    def spill(self, conn: Connection) -> None:
        held = self._held
        if held is None or held.size() < HELD_ROWS:
            return
        self._write_held(conn, held)  # and go on from what the database has
        self._held = _State()
        if conn.dialect.name == "postgresql":
            # The server planned the row reads (psycopg prepares a statement it sees
            # often) while these fresh tables were empty, as scans; now they hold a
            # million rows. ANALYZE makes it plan them again, by their keys (a 1M-event
            # rebuild spent minutes scanning usage_bookings per lookup).
            with conn.begin():
                for table in self.tables:
                    conn.exec_driver_sql(f'ANALYZE "{table.name}"')

    def flush(self, conn: Connection) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        self._write_held(conn, held)
        if conn.dialect.name != "sqlite":
            with conn.begin():
                _sum_days_and_hours(conn, self.t)
            return
        _sum_days_and_hours_in_runs(conn, self.t)

    def _write_held(self, conn: Connection, held: _State) -> None:
        """A held rebuild's rows and cells (bookings, requests, cells; not the days and
        hours), in transactions of their own. On PostgreSQL in one: no writer waits for it.
        On SQLite by parts of whole premises, each a short write transaction followed by a
        pause (`paced`): the parts touch distinct keys, so each may insert without looking
        (`fresh`) when the first could."""
        fresh, self._fresh = self._fresh, False
        if conn.dialect.name != "sqlite":
            with conn.begin():
                self._write(conn, held, fresh, cells_only=True)
            return
        started, parts = time.monotonic(), 0
        for part in _parts(held, FLUSH_PART_ROWS):
            with paced(conn):
                self._write(conn, part, fresh, cells_only=True)
            parts += 1
        log.info(
            "usage: %d held rows written in %d parts in %.1f s",
            held.size(),
            parts,
            time.monotonic() - started,
        )

    def apply_batch(self, conn: Connection, batch: Sequence[RecordedEvent]) -> None:
        state = self._held if self._held is not None else _State()
        events = [(r, data_of(r)) for r in batch]
        self._load(conn, state, events)
        premises, organisations = state.rows["premises"], state.rows["organisations"]
        bookings, popups = state.rows["bookings"], state.rows["popups"]
        changed, out = state.changed, state.out
        schedules, closures = state.schedules, state.closures
        for recorded, data in events:
            kind = recorded.type
            if kind == "OrganisationRegistered":
                organisations[data["organisation_id"]] = {
                    "organisation_id": data["organisation_id"],
                    "type": data["type"],
                }
                changed["organisations"].add(data["organisation_id"])
            elif kind == "PremisesRegistered":
                row = {
                    "premises_id": data["premises_id"],
                    "district": data["district"],
                    "timezone": data["timezone"],
                    "capacity": data["capacity"],
                    "opening_hours": data["opening_hours"],
                    "retired_at": None,
                }
                premises[data["premises_id"]] = row
                changed["premises"].add(data["premises_id"])
                schedules.append(_schedule(row, recorded))
            elif kind in ("PremisesUpdated", "PremisesRetired"):
                found = premises.get(data["premises_id"])
                if found is None:
                    continue
                row = found
                if kind == "PremisesRetired":
                    row["retired_at"] = recorded.recorded_at
                else:
                    changes = data["changes"]
                    row.update(
                        {
                            k: changes[k]
                            for k in ("district", "timezone", "capacity", "opening_hours")
                            if k in changes
                        }
                    )
                    if "opening_hours" in changes or "timezone" in changes:
                        schedules.append(_schedule(row, recorded))
                changed["premises"].add(data["premises_id"])
            elif kind == "ClosureAdded":
                closures.append(
                    {
                        "premises_id": data["premises_id"],
                        "closure_id": data["closure_id"],
                        "start": instant(data["start"]),
                        "end": instant(data["end"]),
                    }
                )
            elif kind == "BookingPlaced":
                self._placed(data, premises, organisations, bookings, out)
                changed["bookings"].add(data["booking_id"])
            elif kind.startswith("Booking"):
                booking = bookings.get(data["booking_id"])
                if booking is not None:
                    self._booking_changed(kind, data, booking, out)
                    changed["bookings"].add(data["booking_id"])
            else:
                self._popup(kind, data, premises, popups, out)
                changed["popups"].add(data["request_id"])
        if self._held is None:
            self._write(conn, state, fresh=False, cells_only=False)
        # Held: written at `spill` (between batches) or `flush`, not in this transaction.

    def _load(
        self, conn: Connection, state: _State, events: list[tuple[RecordedEvent, JSONObject]]
    ) -> None:
        """Read the rows the events touch that the state does not have yet."""
        wanted: dict[str, set[str]] = {kind: set() for kind in ROW_KINDS}
        for r, d in events:
            kind = r.type
            if "premises_id" in d:
                wanted["premises"].add(d["premises_id"])
            if kind == "BookingPlaced":
                if d.get("organisation_id"):
                    wanted["organisations"].add(d["organisation_id"])
            elif kind.startswith("Booking"):
                wanted["bookings"].add(d["booking_id"])
            elif kind.startswith("Popup") and kind != "PopupRequested":
                wanted["popups"].add(d["request_id"])
        t = self.t
        for kind, keys in wanted.items():
            have = state.rows[kind]
            if missing := [k for k in keys if k not in have]:
                have.update(rows_by_key(conn, t[kind], _KEYS[kind], missing))

    def _write(self, conn: Connection, state: _State, fresh: bool, cells_only: bool) -> None:
        """`state`'s rows and cells; `fresh`: none of their keys is in the tables yet;
        `cells_only`: a held rebuild's, whose days and hours are summed at its end."""
        t, rows, changed = self.t, state.rows, state.changed
        for kind in ROW_KINDS:
            found = rows[kind]
            written = [found[k] for k in sorted(changed[kind]) if k in found]
            upsert_replacing(conn, t[kind], [_KEYS[kind]], written, fresh=fresh)
        keys = ["premises_id", "position"]
        upsert_replacing(conn, t["schedules"], keys, state.schedules, fresh=fresh)
        keys = ["premises_id", "closure_id"]
        upsert_replacing(conn, t["closures"], keys, state.closures, fresh=fresh)
        # A held rebuild writes cells only: its days and hours are summed from them at the
        # end (`flush`), by the database.
        _write_sums(conn, t, state.out, fresh, cells_only)

    # --- bookings -------------------------------------------------------------------------

    def _placed(
        self,
        data: dict[str, Any],
        premises: dict[str, dict[str, Any]],
        organisations: dict[str, dict[str, Any]],
        bookings: dict[str, dict[str, Any]],
        out: _Batch,
    ) -> None:
        place = premises.get(data["premises_id"])
        zone_name = place["timezone"] if place else "Europe/Helsinki"
        capacity = max(1, int(place["capacity"])) if place else 1
        organisation_id = data.get("organisation_id")
        if organisation_id:
            found = organisations.get(organisation_id)
            org_type = found["type"] if found else "unknown"
        else:
            org_type = "individual"
        start, end = instant(data["start"]), instant(data["end"])
        lead = (start - instant(data["placed_at"])).total_seconds() / 3600
        booking = {
            "booking_id": data["booking_id"],
            "premises_id": data["premises_id"],
            "party": party_of(organisation_id, data["booked_by"]),
            "org_type": org_type,
            "timezone": zone_name,
            "start_s": int(start.timestamp()),
            "end_s": int(end.timestamp()),
            "status": data["status"],
            "lead_bucket": lead_bucket(lead),
            "attendance_ppm": data["attendees"] * 1_000_000 // capacity,
        }
        bookings[data["booking_id"]] = booking
        counted = ((BOOKINGS, 1), (LEAD_INDEX[booking["lead_bucket"]], 1))
        if booking["status"] == "confirmed":
            _use(booking, out, +1, counted)
        else:
            _at_start(booking, out, counted)

    def _booking_changed(
        self, kind: str, data: dict[str, Any], booking: dict[str, Any], out: _Batch
    ) -> None:
        was = booking["status"]
        if kind == "BookingApproved" and was == "pending_approval":
            booking["status"] = "confirmed"
            _use(booking, out, +1)
        elif kind == "BookingRejected" and was == "pending_approval":
            booking["status"] = "rejected"
            _at_start(booking, out, ((BOOKINGS, -1), (LEAD_INDEX[booking["lead_bucket"]], -1)))
        elif kind == "BookingCancelled" and was in ("confirmed", "pending_approval"):
            booking["status"] = "cancelled"
            late = 1 if data.get("late") else 0
            _at_start(booking, out, ((CANCELLATIONS, 1), (LATE_CANCELLATIONS, late)))
            if was == "confirmed":
                _use(booking, out, -1)

    # --- pop-up requests ------------------------------------------------------------------

    def _popup(
        self,
        kind: str,
        data: dict[str, Any],
        premises: dict[str, dict[str, Any]],
        popups: dict[str, dict[str, Any]],
        out: _Batch,
    ) -> None:
        """A request counts where it would start; its outcome in the same cell. The booking
        an approval places arrives as its own BookingPlaced and counts as a booking."""
        if kind == "PopupRequested":
            place = premises.get(data["premises_id"])
            popups[data["request_id"]] = {
                "request_id": data["request_id"],
                "premises_id": data["premises_id"],
                "party": party_of(None, data["requested_by"]),
                "timezone": place["timezone"] if place else "Europe/Helsinki",
                "start": instant(data["start"]),
            }
            counted = "popup_requests"
        else:
            counted = {
                "PopupApproved": "popup_approved",
                "PopupRejected": "popup_rejected",
                "PopupExpired": "popup_expired",
            }[kind]
        popup = popups.get(data["request_id"])
        if popup is None:
            return
        local = popup["start"].astimezone(ZoneInfo(popup["timezone"]))
        out.add(
            popup["premises_id"],
            popup["party"],
            "individual",
            local.date(),
            local.hour,
            ((INDEX[counted], 1),),
        )


def _parts(state: _State, most: int) -> Iterator[_State]:
    """`state` in parts by premises (whole premises, in the order of their ids) of about
    `most` bookings, requests and cells' shapes each; the organisations go with the first.
    What one premises holds meets no other's key, so the parts can be written one by one."""
    by_premises: dict[str, _State] = {}

    def of(premises_id: str) -> _State:
        if (found := by_premises.get(premises_id)) is None:
            found = by_premises[premises_id] = _State()
        return found

    for kind in ("premises", "bookings", "popups"):
        rows = state.rows[kind]
        for key in state.changed[kind]:
            if (row := rows.get(key)) is not None:
                part = of(row["premises_id"])
                part.rows[kind][key] = row
                part.changed[kind].add(key)
    for schedule in state.schedules:
        of(schedule["premises_id"]).schedules.append(schedule)
    for closure in state.closures:
        of(closure["premises_id"]).closures.append(closure)
    for shape, value in state.out.shapes.items():
        of(shape[0]).out.shapes[shape] = value
    for cell, found in state.out.direct.items():
        of(cell[0]).out.direct[cell] = found
    part = _State()
    part.rows["organisations"] = state.rows["organisations"]
    part.changed["organisations"] = state.changed["organisations"]
    for premises_id in sorted(by_premises):
        one = by_premises[premises_id]
        if part.size() and part.size() + one.size() > most:
            yield part
            part = _State()
        for kind in ("premises", "bookings", "popups"):
            part.rows[kind].update(one.rows[kind])
            part.changed[kind].update(one.changed[kind])
        part.schedules.extend(one.schedules)
        part.closures.extend(one.closures)
        part.out.shapes.update(one.out.shapes)
        part.out.direct.update(one.out.direct)
    yield part


def _at_start(booking: dict[str, Any], out: _Batch, changes: Iterable[tuple[int, int]]) -> None:
    out.at_start(booking, changes)


def _use(
    booking: dict[str, Any],
    out: _Batch,
    sign: int,
    also: tuple[tuple[int, int], ...] = (),
) -> None:
    """Add (or take back) a confirmed booking's seconds and its attendance (and `also`, at
    the start)."""
    out.use(booking, sign, also)


def _schedule(row: dict[str, Any], recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "premises_id": row["premises_id"],
        "position": recorded.position,
        "valid_from": recorded.recorded_at,
        "opening_hours": row["opening_hours"],
        "timezone": row["timezone"],
    }


def _write_sums(
    conn: Connection, t: dict[str, Table], out: _Batch, fresh: bool, cells_only: bool
) -> None:
    sqlite = conn.dialect.name == "sqlite"
    times: dict[date, tuple[Any, ...]] = {}

    def day_columns(d: date) -> tuple[Any, ...]:
        # The date as the driver takes it (SQLAlchemy's Date stores ISO text on SQLite),
        # and the time columns derived from it.
        if d not in times:
            derived = time_columns(d)
            times[d] = (d.isoformat() if sqlite else d, *(derived[k] for k in TIME_COLUMNS))
        return times[d]

    found = None
    if cells_only:  # a held rebuild: its bookings' cells spread by the database if it can
        kinds: dict[str, str] | None = {}
        for (_, _, _, party), (org_type, _, _) in out.direct.items():
            if kinds is not None and kinds.setdefault(party, org_type) != org_type:
                kinds = None
        if kinds is not None and spread_by_sql(
            conn, t["cells"], out.shapes, _cells_of, _start_cell, fresh, kinds
        ):
            found = out.direct_cells()
            fresh = False  # the pop-ups' cells may meet the bookings' rows just written
    if found is None:
        found = out.cells()
    cells = []
    for (p, d, h, party), (org_type, _, values) in sorted(found.items()):
        day, *derived = day_columns(d)
        cells.append((p, day, h, party, org_type, *derived, *values))
    upsert_rows(
        conn,
        t["cells"],
        ["premises_id", "day", "hour", "party"],
        ["premises_id", "day", "hour", "party", "org_type", *TIME_COLUMNS, *MEASURES],
        cells,
        fresh=fresh,
    )
    if cells_only:
        return
    days: dict[tuple[str, date], list[int]] = {}
    hours: dict[tuple[date, int], list[int]] = {}
    width = len(MEASURES)
    for (p, d, h, _), (_, _, values) in found.items():
        if (per_day := days.get((p, d))) is None:
            per_day = days[(p, d)] = [0] * width
        if (per_hour := hours.get((d, h))) is None:
            per_hour = hours[(d, h)] = [0] * width
        for i, amount in enumerate(values):
            if amount:
                per_day[i] += amount
                per_hour[i] += amount
    upsert_rows(
        conn,
        t["days"],
        ["premises_id", "day"],
        ["premises_id", "day", *TIME_COLUMNS, *MEASURES],
        [(p, *day_columns(d), *values) for (p, d), values in sorted(days.items())],
        fresh=fresh,
    )
    upsert_rows(
        conn,
        t["hours"],
        ["day", "hour"],
        ["day", *TIME_COLUMNS, "hour", *MEASURES],
        [(*day_columns(d), h, *values) for (d, h), values in sorted(hours.items())],
        fresh=fresh,
    )


def _sums(t: dict[str, Table]) -> Iterator[tuple[Table, Any, list[str]]]:
    """Per table of sums (days, hours): the table, the query of its rows summed from the
    cells, in the order of its key, and its columns in the query's order."""
    cells = t["cells"]
    sums = [func.sum(cells.c[m]).label(m) for m in MEASURES]
    for name, keys in (("days", ["premises_id", "day"]), ("hours", ["day", "hour"])):
        grouped = [cells.c[k] for k in (*keys, *TIME_COLUMNS)]
        query = select(*grouped, *sums).group_by(*grouped).order_by(*grouped)
        yield t[name], query, [*keys, *TIME_COLUMNS, *MEASURES]


def _sum_days_and_hours(conn: Connection, t: dict[str, Table]) -> None:
    """A held rebuild's days and hours, summed from its cells by the database (its tables
    are the rebuild's own and held no days or hours yet): a cell's day and hour rows are
    touched whenever it is, so they are exactly these sums, rows at zero included."""
    for table, query, columns in _sums(t):
        conn.execute(insert(table).from_select(columns, query))


def _sum_days_and_hours_in_runs(conn: Connection, t: dict[str, Table]) -> None:
    """`_sum_days_and_hours` on SQLite without holding the writer's lock for the sums: they
    are summed into TEMP tables in a transaction that writes nothing of the database's own
    (in WAL mode a reader waits for no writer, and no writer for it), then copied into days
    and hours in runs of `SUM_ROWS` rows, each a short write transaction (`paced`)."""
    for table, query, columns in _sums(t):
        stage = f"{table.name}__sums"
        names = ", ".join(f'"{c}"' for c in columns)
        summed = str(query.compile(dialect=conn.dialect))
        conn.execution_options(write=False)  # a plain BEGIN: no writer's lock
        try:
            with conn.begin():
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{stage}"')
                conn.exec_driver_sql(f'CREATE TEMP TABLE "{stage}" AS {summed}')
                last = conn.exec_driver_sql(f'SELECT max(rowid) FROM temp."{stage}"').scalar()
        finally:
            conn.execution_options(write=True)
        try:
            # CREATE TABLE … AS numbers the rows 1, 2, … in the query's order (the key's).
            for first in range(0, last or 0, SUM_ROWS):
                with paced(conn):
                    conn.exec_driver_sql(
                        f'INSERT INTO main."{table.name}" ({names}) SELECT {names} '
                        f'FROM temp."{stage}" WHERE rowid > ? AND rowid <= ?',
                        (first, first + SUM_ROWS),
                    )
        finally:
            with conn.begin():
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{stage}"')
