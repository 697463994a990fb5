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
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from events.catalog import JSONObject
from events.store import RecordedEvent
from projections.batching import (
    BatchProjection,
    data_of,
    instant,
    rows_by_key,
    upsert_replacing,
    upsert_rows,
)
from projections.usage.hours import split_hours
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


class _Batch:
    """What one batch changes, gathered in memory and written at the end."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, date, int, str], list[Any]] = {}
        self.days: dict[tuple[str, date], list[int]] = {}
        self.hours: dict[tuple[date, int], list[int]] = {}

    def add(
        self,
        premises_id: str,
        party: str,
        org_type: str,
        day: date,
        hour: int,
        changes: Iterable[tuple[int, int]],
    ) -> None:
        """Add `changes`, (index in `MEASURES`, amount) pairs, to a cell and its day and hour."""
        # get before setdefault: a rebuild adds to existing sums far more often than it
        # starts new ones, and setdefault would build a list of zeros every time.
        key = (premises_id, day, hour, party)
        if (found := self.cells.get(key)) is None:
            found = self.cells[key] = [org_type, [0] * len(MEASURES)]
        cell = found[1]
        if (per_day := self.days.get((premises_id, day))) is None:
            per_day = self.days[(premises_id, day)] = [0] * len(MEASURES)
        if (per_hour := self.hours.get((day, hour))) is None:
            per_hour = self.hours[(day, hour)] = [0] * len(MEASURES)
        for i, amount in changes:
            cell[i] += amount
            per_day[i] += amount
            per_hour[i] += amount


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
        return len(rows["bookings"]) + len(rows["popups"]) + len(self.out.cells)


# A held rebuild writes what it holds once it holds this many bookings, requests and cells
# together (about 0.5 kB each), and goes on from the database: memory stays bounded.
HELD_ROWS = 1_500_000
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

    def flush(self, conn: Connection) -> None:
        if self._held is not None:
            self._write(conn, self._held)
            self._held = None

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
            self._write(conn, state)
        elif state.size() >= HELD_ROWS:
            self._write(conn, state)  # and go on with what the database has
            self._held = _State()
            if conn.dialect.name == "postgresql":
                # The server planned the row reads (psycopg prepares a statement it sees
                # often) while these fresh tables were empty, as scans; now they hold a
                # million rows. ANALYZE makes it plan them again, by their keys (a 1M-event
                # rebuild spent minutes scanning usage_bookings per lookup).
                for table in self.tables:
                    conn.exec_driver_sql(f'ANALYZE "{table.name}"')

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

    def _write(self, conn: Connection, state: _State) -> None:
        t, rows, changed = self.t, state.rows, state.changed
        fresh, self._fresh = self._fresh, False
        for kind in ROW_KINDS:
            found = rows[kind]
            written = [found[k] for k in sorted(changed[kind]) if k in found]
            upsert_replacing(conn, t[kind], [_KEYS[kind]], written, fresh=fresh)
        keys = ["premises_id", "position"]
        upsert_replacing(conn, t["schedules"], keys, state.schedules, fresh=fresh)
        keys = ["premises_id", "closure_id"]
        upsert_replacing(conn, t["closures"], keys, state.closures, fresh=fresh)
        _write_sums(conn, t, state.out, fresh)

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


def _at_start(booking: dict[str, Any], out: _Batch, changes: Iterable[tuple[int, int]]) -> None:
    day, hour = _start_cell(booking["start_s"], booking["timezone"])
    out.add(booking["premises_id"], booking["party"], booking["org_type"], day, hour, changes)


def _use(
    booking: dict[str, Any],
    out: _Batch,
    sign: int,
    also: tuple[tuple[int, int], ...] = (),
) -> None:
    """Add (or take back) a confirmed booking's seconds and its attendance (and `also`, at
    the start)."""
    premises_id, party, org_type = booking["premises_id"], booking["party"], booking["org_type"]
    cells = _cells_of(booking["start_s"], booking["end_s"], booking["timezone"])
    for n, (day, hour, seconds) in enumerate(cells):
        changes: tuple[tuple[int, int], ...] = ((BOOKED_S, sign * seconds),)
        if n == 0:
            attendance = ((ATTENDANCE_PPM, sign * booking["attendance_ppm"]), (ATTENDANCE_N, sign))
            changes += also + attendance
        out.add(premises_id, party, org_type, day, hour, changes)


def _schedule(row: dict[str, Any], recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "premises_id": row["premises_id"],
        "position": recorded.position,
        "valid_from": recorded.recorded_at,
        "opening_hours": row["opening_hours"],
        "timezone": row["timezone"],
    }


def _write_sums(conn: Connection, t: dict[str, Table], out: _Batch, fresh: bool) -> None:
    sqlite = conn.dialect.name == "sqlite"
    times: dict[date, tuple[Any, ...]] = {}

    def day_columns(d: date) -> tuple[Any, ...]:
        # The date as the driver takes it (SQLAlchemy's Date stores ISO text on SQLite),
        # and the time columns derived from it.
        if d not in times:
            derived = time_columns(d)
            times[d] = (d.isoformat() if sqlite else d, *(derived[k] for k in TIME_COLUMNS))
        return times[d]

    cells = []
    for (p, d, h, party), (org_type, values) in sorted(out.cells.items()):
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
    upsert_rows(
        conn,
        t["days"],
        ["premises_id", "day"],
        ["premises_id", "day", *TIME_COLUMNS, *MEASURES],
        [(p, *day_columns(d), *values) for (p, d), values in sorted(out.days.items())],
        fresh=fresh,
    )
    upsert_rows(
        conn,
        t["hours"],
        ["day", "hour"],
        ["day", *TIME_COLUMNS, "hour", *MEASURES],
        [(*day_columns(d), h, *values) for (d, h), values in sorted(out.hours.items())],
        fresh=fresh,
    )
