"""The premises aggregate: its catalogue entry, rules, closures and every booking on it.

One stream per premises holds all of it, so the stream's version is the consistency boundary
for its own bookings. A premises occupies one or more spaces (`spaces`), which others may
share: what those others hold is not in this state but handed to the decider as
`booking.domain.spaces.Shared` (DESIGN.md invariant 2; booking/service.py has the guard).
`evolve` updates a state in place and returns it: the process keeps one state per premises
and copying hundreds of bookings on every event would cost more than it is worth.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    BookingSeriesCancelled,
    BookingSeriesPlaced,
    ClosureAdded,
    Event,
    PopupApproved,
    PopupExpired,
    PopupRejected,
    PopupRequested,
    PopupWithdrawn,
    PremisesRegistered,
    PremisesRetired,
    PremisesUpdated,
)
from events.opening import OpeningHours
from events.slot import Slot

ACTIVE = ("confirmed", "pending_approval")


@dataclass(frozen=True)
class Rules:
    min_duration_minutes: int = 30
    max_duration_minutes: int = 240
    min_notice_minutes: int = 60
    max_advance_days: int = 180
    buffer_minutes: int = 0
    requires_approval: bool = False
    bookable_by: str = "organisations"
    popup_allowed: bool = False
    popup_max_duration_minutes: int = 180
    popup_auto_approve: bool = False
    requires_strong_identity: bool = False  # booking.strong_identity checks it
    cancellation_deadline_minutes: int = 1440
    quota_hours_per_week: float | None = None
    quota_hours_per_month: float | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rules:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.buffer_minutes)


class _HasSlot(Protocol):
    @property
    def slot(self) -> Slot: ...


R = TypeVar("R", bound=_HasSlot)


class ByStart(Generic[R]):
    """Records in order of their slot's start, to find the few that may meet a window
    without looking at every one: a premises keeps years of bookings, and a decision is
    about one slot.

    A record meets [a, b) only if it starts before b and ends after a; no record lasts
    longer than the longest one added, so it also starts after a minus that. `meeting`
    gives every record starting in that range: a superset, which callers test exactly.
    """

    __slots__ = ("_longest", "_records", "_starts")

    def __init__(self) -> None:
        self._starts: list[datetime] = []
        self._records: list[R] = []
        self._longest = timedelta(0)

    def add(self, record: R) -> None:
        slot = record.slot
        at = bisect_right(self._starts, slot.start)  # after equal starts: order of adding
        self._starts.insert(at, slot.start)
        self._records.insert(at, record)
        self._longest = max(self._longest, slot.duration)

    def meeting(self, window: Slot) -> list[R]:
        """Candidates for meeting `window`: every record that does, maybe some that don't."""
        low = bisect_left(self._starts, window.start - self._longest)
        high = bisect_left(self._starts, window.end)
        return self._records[low:high]

    def copy(self) -> ByStart[R]:
        twin: ByStart[R] = ByStart()
        twin._starts, twin._records = list(self._starts), list(self._records)
        twin._longest = self._longest
        return twin


@dataclass
class BookingRecord:
    booking_id: str
    organisation_id: str | None
    booked_by: str
    slot: Slot
    status: str
    title: str
    attendees: int
    public: bool
    placed_at: datetime
    series_id: str | None
    version: int = 1

    @classmethod
    def of(cls, placed: BookingPlaced) -> BookingRecord:
        return cls(
            booking_id=placed.booking_id,
            organisation_id=placed.organisation_id,
            booked_by=placed.booked_by,
            slot=Slot(placed.start, placed.end),
            status=placed.status,
            title=placed.title,
            attendees=placed.attendees,
            public=placed.public,
            placed_at=placed.placed_at,
            series_id=placed.series_id,
        )

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def kind(self) -> str:
        return "booking" if self.status == "confirmed" else "hold"


@dataclass
class PopupRecord:
    request_id: str
    requested_by: str
    slot: Slot
    title: str
    expected_attendees: int
    decision_deadline: datetime
    status: str = "pending"  # pending | approved | rejected | withdrawn | expired
    booking_id: str | None = None
    version: int = 1

    @classmethod
    def of(cls, asked: PopupRequested) -> PopupRecord:
        return cls(
            request_id=asked.request_id,
            requested_by=asked.requested_by,
            slot=Slot(asked.start, asked.end),
            title=asked.title,
            expected_attendees=asked.expected_attendees,
            decision_deadline=asked.decision_deadline,
        )

    @property
    def pending(self) -> bool:
        return self.status == "pending"


@dataclass
class SeriesRecord:
    organisation_id: str | None
    booking_ids: list[str] = field(default_factory=list)
    cancelled: bool = False


@dataclass(frozen=True)
class Closure:
    closure_id: str
    slot: Slot
    reason: str


@dataclass
class PremisesState:
    premises_id: str
    version: int = 0  # the stream's version: every event on the premises counts
    catalogue_version: int = 0  # what clients see as `version`: only catalogue changes count
    profile: dict[str, Any] = field(default_factory=dict)
    opening: OpeningHours = field(default_factory=lambda: OpeningHours({}))
    rules: Rules = field(default_factory=Rules)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Helsinki"))
    retired: bool = False
    # The pieces of floor it occupies; () until registered, then never empty.
    spaces: tuple[str, ...] = ()
    bookings: dict[str, BookingRecord] = field(default_factory=dict)
    closures: list[Closure] = field(default_factory=list)
    series: dict[str, SeriesRecord] = field(default_factory=dict)
    popups: dict[str, PopupRecord] = field(default_factory=dict)
    # The same bookings and pop-up requests by start (`add_booking`, `add_popup` keep both).
    bookings_by_start: ByStart[BookingRecord] = field(default_factory=ByStart, repr=False)
    popups_by_start: ByStart[PopupRecord] = field(default_factory=ByStart, repr=False)

    @property
    def exists(self) -> bool:
        return self.catalogue_version > 0

    @property
    def capacity(self) -> int:
        return int(self.profile.get("capacity", 0))

    def add_booking(self, record: BookingRecord) -> None:
        self.bookings[record.booking_id] = record
        self.bookings_by_start.add(record)

    def add_popup(self, record: PopupRecord) -> None:
        self.popups[record.request_id] = record
        self.popups_by_start.add(record)

    def active_bookings(self) -> Iterator[BookingRecord]:
        return (b for b in self.bookings.values() if b.active)

    def active_bookings_meeting(self, slot: Slot) -> list[BookingRecord]:
        """Active bookings whose slot meets `slot`."""
        return [
            b for b in self.bookings_by_start.meeting(slot) if b.active and b.slot.overlaps(slot)
        ]

    def pending_popups_meeting(self, slot: Slot) -> list[PopupRecord]:
        """Pending pop-up requests (they hold their slot) whose slot meets `slot`."""
        return [
            p for p in self.popups_by_start.meeting(slot) if p.pending and p.slot.overlaps(slot)
        ]

    def bookings_overlapping(self, slot: Slot) -> list[BookingRecord]:
        """Active bookings whose slot, widened by the buffer, meets `slot`."""
        return self.active_bookings_meeting(slot.padded(self.rules.buffer))

    def holds_overlapping(self, slot: Slot) -> list[PopupRecord]:
        """Pending pop-up requests that meet `slot`, buffer included."""
        return self.pending_popups_meeting(slot.padded(self.rules.buffer))

    def closures_overlapping(self, slot: Slot) -> list[Closure]:
        return [c for c in self.closures if c.slot.overlaps(slot)]


def _apply_profile(state: PremisesState, profile: dict[str, Any]) -> None:
    state.profile.update(profile)
    if "opening_hours" in profile:
        state.opening = OpeningHours.parse(profile["opening_hours"])
    if "rules" in profile:
        state.rules = Rules.from_json(state.profile["rules"])
    if "timezone" in profile:
        state.zone = ZoneInfo(profile["timezone"])
    if profile.get("spaces"):
        state.spaces = tuple(profile["spaces"])


def evolve(state: PremisesState, event: Event) -> PremisesState:
    state.version += 1
    match event:
        case PremisesRegistered():
            state.catalogue_version += 1
            profile = asdict(event)
            profile.pop("premises_id")
            profile["spaces"] = profile["spaces"] or [state.premises_id]
            _apply_profile(state, profile)
        case PremisesUpdated(changes=changes):
            state.catalogue_version += 1
            if "rules" in changes:
                changes = {
                    **changes,
                    "rules": {**state.profile.get("rules", {}), **changes["rules"]},
                }
            _apply_profile(state, changes)
        case PremisesRetired():
            state.catalogue_version += 1
            state.retired = True
        case ClosureAdded(closure_id=cid, start=start, end=end, reason=reason):
            state.closures.append(Closure(cid, Slot(start, end), reason))
        case BookingPlaced() as placed:
            state.add_booking(BookingRecord.of(placed))
            if placed.series_id:
                state.series[placed.series_id].booking_ids.append(placed.booking_id)
        case BookingApproved(booking_id=bid):
            _set_status(state, bid, "confirmed")
        case BookingRejected(booking_id=bid):
            _set_status(state, bid, "rejected")
        case BookingCancelled(booking_id=bid):
            _set_status(state, bid, "cancelled")
        case PopupRequested() as asked:
            state.add_popup(PopupRecord.of(asked))
        case PopupApproved(request_id=rid, booking_id=bid):
            _set_popup(state, rid, "approved").booking_id = bid
        case PopupRejected(request_id=rid):
            _set_popup(state, rid, "rejected")
        case PopupWithdrawn(request_id=rid):
            _set_popup(state, rid, "withdrawn")
        case PopupExpired(request_id=rid):
            _set_popup(state, rid, "expired")
        case BookingSeriesPlaced(series_id=sid, organisation_id=org):
            state.series[sid] = SeriesRecord(org)
        case BookingSeriesCancelled(series_id=sid):
            state.series[sid].cancelled = True
    return state


def _set_popup(state: PremisesState, request_id: str, status: str) -> PopupRecord:
    record = state.popups[request_id]
    record.status = status
    record.version += 1
    return record


def _set_status(state: PremisesState, booking_id: str, status: str) -> None:
    record = state.bookings[booking_id]
    record.status = status
    record.version += 1
