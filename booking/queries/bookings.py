"""Booking rows as the API and the pages read them: with the premises' zone and the notes
opened (sealed under the booker's key; None once the booker is erased)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor
from booking.domain.errors import NotAllowed, NotFound
from booking.privacy import Vault
from booking.queries.access import may_see, visible_bookings
from booking.queries.paging import Page, PageRequest, fetch_page
from booking.tables import organisations
from events import pipeline
from events.catalog import BookingCancelled, BookingPlaced
from projections.bookings import bookings_table, changed_values
from projections.catalogue import premises_table


@dataclass(frozen=True)
class BookingRow:
    """One booking as answered: the bookings projection's row, its premises' zone, notes
    in clear."""

    id: str
    status: str
    premises_id: str
    organisation_id: str | None
    booked_by: str
    series_id: str | None
    start: datetime
    end: datetime
    title: str
    attendees: int
    public: bool
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    late: bool | None
    reason: str | None  # the person's own words
    reason_code: str | None  # the system's cause (events.catalog.CAUSES)
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def of(cls, row: Any, notes: str | None) -> BookingRow:
        values = {f.name: getattr(row, f.name) for f in fields(cls) if f.name != "notes"}
        return cls(notes=notes, **values)

    @classmethod
    def placed(cls, event: BookingPlaced, zone: ZoneInfo, notes: str | None) -> BookingRow:
        """The row a booking just placed has: version 1, nothing late or refused yet."""
        return cls(
            id=event.booking_id,
            status=event.status,
            premises_id=event.premises_id,
            organisation_id=event.organisation_id,
            booked_by=event.booked_by,
            series_id=event.series_id,
            start=event.start,
            end=event.end,
            title=event.title,
            attendees=event.attendees,
            public=event.public,
            notes=notes,
            version=1,
            created_at=event.placed_at,
            updated_at=event.placed_at,
            late=None,
            reason=None,
            reason_code=None,
            timezone=zone.key,
        )

    def after(self, cancelled: BookingCancelled) -> BookingRow:
        """The row once `cancelled` is projected onto it (`projections.bookings`)."""
        return replace(self, version=self.version + 1, **changed_values(cancelled))


def with_zone() -> Select[Any]:
    b, p = bookings_table, premises_table
    return select(b, p.c.timezone).join(p, p.c.id == b.c.premises_id)


_WITH_ZONE_BY_ID = with_zone().where(bookings_table.c.id == bindparam("booking_id"))
_WITH_ZONE_NAMES = tuple(str(c.key) for c in _WITH_ZONE_BY_ID.selected_columns)


def row_ahead(booking_id: str, key: str = "booking") -> pipeline.Ahead:
    """The booking's row with its premises' zone as a read to send with a command's first
    reads (`events.pipeline.read_ahead`), kept under `(key, booking_id)`: a namespace of
    the columns, or None when there is no such booking."""

    def row(rows: list[Any]) -> Any:
        return (
            SimpleNamespace(**dict(zip(_WITH_ZONE_NAMES, rows[0], strict=True))) if rows else None
        )

    return pipeline.Ahead(_WITH_ZONE_BY_ID, {"booking_id": booking_id}, (key, booking_id), row)


def opened(conn: Connection, vault: Vault, rows: Any) -> list[BookingRow]:
    personal = vault.reader(conn)
    return [BookingRow.of(r, personal.open(r.notes)) for r in rows]


def booking_rows(conn: Connection, vault: Vault, ids: list[str]) -> list[BookingRow]:
    """The bookings `ids`, in that order (missing ones left out)."""
    order = {booking_id: n for n, booking_id in enumerate(ids)}
    rows = conn.execute(with_zone().where(bookings_table.c.id.in_(ids))).all()
    return sorted(opened(conn, vault, rows), key=lambda r: order[r.id])


def visible_booking(conn: Connection, vault: Vault, viewer: Actor, booking_id: str) -> BookingRow:
    """One booking the viewer may see: NotFound, or NotAllowed for someone else's."""
    rows = booking_rows(conn, vault, [booking_id])
    if not rows:
        raise NotFound(f"No booking {booking_id!r}.")
    if not may_see(viewer, "booking", rows[0]):
        raise NotAllowed("The booking belongs to another organisation.")
    return rows[0]


@dataclass(frozen=True)
class BookingFilter:
    from_: date | None = None
    to: date | None = None
    premises_id: str | None = None
    status: str | None = None


def list_bookings(
    conn: Connection,
    vault: Vault,
    viewer: Actor,
    wanted: BookingFilter,
    zone: ZoneInfo,
    page: PageRequest,
) -> Page[BookingRow]:
    """A page of the bookings the viewer may see, by start. `from` and `to` are days in
    each booking's premises' zone (API.md, "Conventions"); `zone`, when there are no
    premises yet."""
    b = bookings_table
    sql = with_zone().where(visible_bookings(viewer))
    if wanted.from_ is not None or wanted.to is not None:
        sql = sql.where(_within_days(conn, wanted, zone))
    if wanted.premises_id is not None:
        sql = sql.where(b.c.premises_id == wanted.premises_id)
    if wanted.status is not None:
        sql = sql.where(b.c.status == wanted.status)
    found = fetch_page(conn, sql, [b.c.start, b.c.id], page)
    return Page(opened(conn, vault, found.rows), found.next)


def _within_days(conn: Connection, wanted: BookingFilter, zone: ZoneInfo) -> Any:
    """Bookings that meet the days `wanted.from_` to `wanted.to` (inclusive) as their
    premises' zone counts days: one test per zone in use (a city has one or a few)."""
    b, p = bookings_table, premises_table
    zones = select(p.c.timezone).distinct()
    if wanted.premises_id is not None:
        zones = zones.where(p.c.id == wanted.premises_id)
    names = sorted(conn.execute(zones).scalars()) or [zone.key]

    def meets(name: str) -> Any:
        here = ZoneInfo(name)
        tests = []
        if wanted.from_ is not None:
            tests.append(b.c.end > datetime.combine(wanted.from_, time(), here))
        if wanted.to is not None:
            tests.append(b.c.start < datetime.combine(wanted.to + timedelta(days=1), time(), here))
        return and_(*tests)

    if len(names) == 1:
        return meets(names[0])
    return or_(*(and_(p.c.timezone == name, meets(name)) for name in names))


def member_bookings(
    conn: Connection, viewer: Actor, now: datetime, past: bool, page: PageRequest
) -> Page[Any]:
    """A page of the /my/bookings list: upcoming ones soonest first, or past ones latest
    first, with the premises' name."""
    b, p = bookings_table, premises_table
    sql = (
        select(b, p.c.timezone, p.c.name.label("premises_name"))
        .join(p, p.c.id == b.c.premises_id)
        .where(visible_bookings(viewer), b.c.end <= now if past else b.c.end > now)
    )
    return fetch_page(conn, sql, [b.c.start, b.c.id], page, descending=past)


def pending_bookings(conn: Connection, vault: Vault) -> list[Any]:
    """The staff queue: bookings waiting for approval, soonest first, with names."""
    b, p, o = bookings_table, premises_table, organisations
    rows = conn.execute(
        select(
            b,
            p.c.timezone,
            p.c.name.label("premises_name"),
            o.c.name.label("organisation_name"),
        )
        .join(p, p.c.id == b.c.premises_id)
        .outerjoin(o, o.c.id == b.c.organisation_id)
        .where(b.c.status == "pending_approval")
        .order_by(b.c.start)
    ).all()
    personal = vault.reader(conn)
    return [_with_notes(r, personal.open(r.notes)) for r in rows]


def _with_notes(row: Any, notes: str | None) -> Any:
    return SimpleNamespace(**{**row._asdict(), "notes": notes})


def premises_and_version(conn: Connection, booking_id: str) -> tuple[str, int]:
    """(premises, version) of a booking, before a command on it: NotFound when none."""
    t = bookings_table
    found = conn.execute(select(t.c.premises_id, t.c.version).where(t.c.id == booking_id)).first()
    if found is None:
        raise NotFound(f"No booking {booking_id!r}.")
    return str(found.premises_id), int(found.version)


def premises_of_series(conn: Connection, series_id: str) -> str:
    t = bookings_table
    found = conn.execute(
        select(t.c.premises_id).where(t.c.series_id == series_id).limit(1)
    ).scalar()
    if found is None:
        raise NotFound(f"No booking series {series_id!r}.")
    return str(found)
