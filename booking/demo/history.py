"""A year of demo bookings, planned as the commands people would have sent, in time order.

The plan is deterministic for (seed, anchor): the anchor is a Monday, the history spans the
40 weeks before it and the 12 weeks after, and every command's `now` is before the anchor
(the simulated present). The planner keeps its own picture of what is taken — bookings with
their buffers, closures, quotas — so that nearly every planned booking is one the rules
accept; a few deliberate attempts (a taken slot, too many people, too late) are refused.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from booking.demo.catalogue import CATALOGUE, DemoPremises
from booking.demo.people import ORGANISATIONS, People
from booking.demo.usage import SERIES_KINDS, USAGE, day_demand, holidays, midsummer_eve
from booking.domain.commands import (
    AddClosure,
    BookingRequest,
    CancelBooking,
    CancelSeries,
    DecideBooking,
    PlaceBooking,
    PlaceSeries,
)
from booking.domain.decide import occurrence_id
from booking.domain.premises import Rules
from booking.domain.recurrence import expand
from events.opening import OpeningHours, days, local_instant
from events.slot import Slot

HISTORY_WEEKS, FUTURE_WEEKS = 40, 12
CANCELLED_SHARE = 0.08
LATE_SHARE = 0.25  # of cancellations, after the premises' cancellation deadline
REFUSED_SHARE = 0.03  # attempts planned to be refused
REJECTED_SHARE = 0.12  # of decided requests
CANCEL_REASONS = (
    "Sairastumisia",
    "Tilaisuus peruttu",
    "Liian vähän osallistujia",
    "Siirretty toiseen ajankohtaan",
    "Valmentaja estynyt",
)
REJECT_REASONS = (
    "Tila on varattu kaupungin omaan käyttöön.",
    "Tilaisuus ei sovi tähän tilaan.",
    "Tilassa on tuolloin huoltotöitä.",
)

QuotaKey = tuple[str, int, str, tuple[int, int]]  # premises, organisation, week|month, period


@dataclass(frozen=True)
class Step:
    """One command at its simulated `now`; `needs` names a booking that must exist first."""

    now: datetime
    premises_id: str
    command: AddClosure | PlaceBooking | PlaceSeries | CancelBooking | CancelSeries | DecideBooking
    needs: str | None = None


@dataclass
class _Premises:
    demo: DemoPremises
    opening: OpeningHours
    rules: Rules
    zone: ZoneInfo
    # Cumulative weights (for bisect) of the planner's days and of ORGANISATIONS.
    day_weights: list[float] = field(default_factory=list)
    org_weights: list[float] = field(default_factory=list)
    taken: defaultdict[date, list[Slot]] = field(default_factory=lambda: defaultdict(list))
    closures: list[Slot] = field(default_factory=list)
    # Premises sharing a space with this one (a hall and its halves): they take its time.
    neighbours: list[_Premises] = field(default_factory=list, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.demo.premises_id


@dataclass
class _Booking:
    booking_id: str
    premises: _Premises
    org: int
    slot: Slot
    placed_at: datetime

    @property
    def pending(self) -> bool:
        return self.premises.rules.requires_approval


@dataclass
class Plan:
    steps: list[Step]
    planned_bookings: int  # bookings the plan expects to be placed (series occurrences too)
    series: int
    attempts_meant_to_fail: int


def _spaces(p: _Premises) -> list[str]:
    return list(p.demo.profile.get("spaces") or [p.id])


def anchor_of(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


class Planner:
    """Plans the history: closures, weekly series, single bookings until the count is
    reached, attempts meant to fail, then staff decisions and cancellations."""

    def __init__(
        self,
        seed: int,
        anchor: date,
        people: People,
        reserved: Sequence[tuple[str, int | None, Slot]] = (),
    ) -> None:
        self.rng = random.Random(seed)
        self.people = people
        self.zone = ZoneInfo("Europe/Helsinki")
        anchor = anchor_of(anchor)
        self.present = local_instant(anchor, time(0), self.zone)
        self.days = list(
            days(
                anchor - timedelta(weeks=HISTORY_WEEKS),
                anchor + timedelta(weeks=FUTURE_WEEKS, days=-1),
            )
        )
        self.end = local_instant(self.days[-1] + timedelta(days=1), time(0), self.zone)
        quiet = set().union(*(holidays(y) for y in {d.year for d in self.days}))
        self.premises = [self._prepare(p, quiet) for p in CATALOGUE]
        for p in self.premises:
            mine = set(_spaces(p))
            p.neighbours = [q for q in self.premises if q is not p and mine & set(_spaces(q))]
        self.premises_weights = list(
            accumulate(
                USAGE[p.demo.kind].weight * (1.3 if p.demo.profile["district"] == "keskusta" else 1)
                for p in self.premises
            )
        )
        self.hours_used: defaultdict[QuotaKey, float] = defaultdict(float)
        # Time taken before the history is planned (the allocation round's weekly series),
        # counted towards its organisation's quotas (`None`: a club outside ORGANISATIONS).
        by_id = {p.id: p for p in self.premises}
        for premises_id, org, slot in reserved:
            if org is None:
                by_id[premises_id].taken[slot.start.astimezone(self.zone).date()].append(slot)
            else:
                self._take(by_id[premises_id], org, slot)
        self.bookings: list[_Booking] = []
        self.steps: list[Step] = []
        self.placed = 0
        self.series = 0
        self.doomed = 0

    def _prepare(self, demo: DemoPremises, quiet: set[date]) -> _Premises:
        zone = ZoneInfo(demo.profile["timezone"])
        p = _Premises(
            demo,
            OpeningHours.parse(demo.profile["opening_hours"]),
            Rules.from_json(demo.profile["rules"]),
            zone,
        )
        p.day_weights = list(
            accumulate(
                day_demand(demo.kind, d, d in quiet) if p.opening.intervals_on(d, zone) else 0.0
                for d in self.days
            )
        )
        district = demo.profile["district"]
        p.org_weights = list(
            accumulate(
                0.0
                if demo.kind not in org.kinds
                else org.activity
                * (1.0 if org.district is None else 3.0 if org.district == district else 0.1)
                for org in ORGANISATIONS
            )
        )
        return p

    # --- random choices -----------------------------------------------------------------

    def _pick(self, cumulative: list[float]) -> int:
        return bisect(cumulative, self.rng.random() * cumulative[-1])

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _slot_on(self, p: _Premises, day: date) -> Slot | None:
        """A start and length on `day` that the usage of its kind makes likely."""
        usage = USAGE[p.demo.kind]
        lengths = [
            (m, w)
            for m, w in usage.durations
            if p.rules.min_duration_minutes <= m <= p.rules.max_duration_minutes
        ]
        minutes = self.rng.choices([m for m, _ in lengths], [w for _, w in lengths])[0]
        length, step = timedelta(minutes=minutes), timedelta(minutes=usage.step_minutes)
        starts, weights = [], []
        for opening in p.opening.intervals_on(day, p.zone):
            start = opening.start
            while start + length <= opening.end:
                starts.append(start)
                weights.append(usage.hour_demand(start.astimezone(p.zone).hour))
                start += step
        if not starts:
            return None
        start = self.rng.choices(starts, weights)[0]
        return Slot(start, start + length)

    def _lead(
        self, p: _Premises, start: datetime, median_days: float, spread: float
    ) -> datetime | None:
        """When a booking starting at `start` was made, or None if not made by the present."""
        shortest = timedelta(minutes=p.rules.min_notice_minutes + 5)
        longest = timedelta(days=p.rules.max_advance_days) - timedelta(hours=1)
        for _ in range(3):
            lead = timedelta(days=self.rng.lognormvariate(math.log(median_days), spread))
            placed_at = start - min(max(lead, shortest), longest)
            if placed_at <= self.present:
                return placed_at
        return None

    # --- what is taken ------------------------------------------------------------------

    def _free(self, p: _Premises, slot: Slot) -> bool:
        day = slot.start.astimezone(p.zone).date()
        for q in (p, *p.neighbours):
            wide = slot.padded(max(p.rules.buffer, q.rules.buffer))
            for near in (day - timedelta(days=1), day, day + timedelta(days=1)):
                if any(other.overlaps(wide) for other in q.taken.get(near, ())):
                    return False
            if any(c.overlaps(slot) for c in q.closures):
                return False
        return True

    def _quotas(self, p: _Premises, org: int, slot: Slot) -> list[tuple[QuotaKey, float]]:
        """The organisation's quota periods on `p` that `slot` counts towards (local time)."""
        local = slot.start.astimezone(p.zone)
        week = local.isocalendar()
        periods = (
            ("week", (week.year, week.week), p.rules.quota_hours_per_week),
            ("month", (local.year, local.month), p.rules.quota_hours_per_month),
        )
        return [
            ((p.id, org, name, key), quota) for name, key, quota in periods if quota is not None
        ]

    def _within_quota(self, p: _Premises, org: int, slots: list[Slot]) -> bool:
        extra: defaultdict[QuotaKey, float] = defaultdict(float)
        for slot in slots:
            for key, quota in self._quotas(p, org, slot):
                extra[key] += slot.duration.total_seconds() / 3600
                if self.hours_used[key] + extra[key] > quota:
                    return False
        return True

    def _take(self, p: _Premises, org: int, slot: Slot) -> None:
        p.taken[slot.start.astimezone(p.zone).date()].append(slot)
        for key, _ in self._quotas(p, org, slot):
            self.hours_used[key] += slot.duration.total_seconds() / 3600

    # --- the plan -----------------------------------------------------------------------

    def plan(self, booking_count: int) -> Plan:
        self._closures()
        series_wanted = max(1, booking_count // 1000)
        for _ in range(series_wanted * 30):
            if self.series == series_wanted:
                break
            self._series()
        attempts = 0
        while self.placed < booking_count and attempts < booking_count * 40:
            attempts += 1
            self._single()
        self._attempts_meant_to_fail(round(booking_count * REFUSED_SHARE))
        self._decisions_and_cancellations()
        self.steps.sort(key=lambda s: s.now)  # stable: same-instant steps keep their order
        return Plan(self.steps, self.placed, self.series, self.doomed)

    def _closures(self) -> None:
        """Libraries close for Christmas and Midsummer, one gym for a floor repair."""
        start = self.present - timedelta(days=400)
        staff = self.people.staff
        wanted: list[tuple[str, date, date, str]] = []
        for year in sorted({d.year for d in self.days}):
            for p in self.premises:
                if p.demo.kind in ("library", "hall"):
                    eve = midsummer_eve(year)
                    wanted.append((p.id, date(year, 12, 24), date(year, 12, 27), "Joulunpyhät"))
                    wanted.append((p.id, eve, eve + timedelta(days=2), "Juhannus"))
            wanted.append(
                ("lyseon-liikuntasali", date(year, 7, 1), date(year, 7, 22), "Lattian kunnostus")
            )
        by_id = {p.id: p for p in self.premises}
        for premises_id, first, after, reason in wanted:
            if not (self.days[0] <= first <= self.days[-1]):
                continue
            slot = Slot(
                local_instant(first, time(0), self.zone), local_instant(after, time(0), self.zone)
            )
            by_id[premises_id].closures.append(slot)
            command = AddClosure(staff, premises_id, self._id(), slot, reason, False, start)
            self.steps.append(Step(start, premises_id, command))

    def _request(
        self, p: _Premises, org: int, slot: Slot, attendees: int | None = None
    ) -> BookingRequest:
        usage = USAGE[p.demo.kind]
        low, high = (max(1, round(p.demo.profile["capacity"] * s)) for s in usage.attendees)
        return BookingRequest(
            premises_id=p.id,
            slot=slot,
            title=self.rng.choice(ORGANISATIONS[org].titles),
            attendees=attendees or self.rng.randint(low, max(low, high)),
            public=self.rng.random() < usage.public,
            notes="",
            organisation_id=self.people.organisation_ids[org],
        )

    def _single(self) -> None:
        p = self.premises[self._pick(self.premises_weights)]
        day = self.days[self._pick(p.day_weights)]
        slot = self._slot_on(p, day)
        org = self._pick(p.org_weights)
        if slot is None or not self._free(p, slot) or not self._within_quota(p, org, [slot]):
            return
        usage = USAGE[p.demo.kind]
        placed_at = self._lead(p, slot.start, *usage.lead_days)
        if placed_at is None:
            return
        self._take(p, org, slot)
        request = self._request(p, org, slot)
        booking = _Booking(self._id(), p, org, slot, placed_at)
        self.bookings.append(booking)
        command = PlaceBooking(self.people.bookers[org], booking.booking_id, request, placed_at)
        self.steps.append(Step(placed_at, p.id, command))
        self.placed += 1

    def _series(self) -> None:
        """A club's weekly slot for a season, booked a few weeks before it starts."""
        p = self.premises[self._pick(self.premises_weights)]
        if p.demo.kind not in SERIES_KINDS or p.rules.requires_approval:
            return
        first = self._slot_on(p, self.days[self._pick(p.day_weights)])
        if first is None:
            return
        placed_at = first.start - timedelta(days=self.rng.uniform(7, 28))
        latest = placed_at + timedelta(days=p.rules.max_advance_days) - timedelta(hours=1)
        slots = expand(first, f"FREQ=WEEKLY;COUNT={self.rng.randint(8, 16)}", p.zone)
        slots = [s for s in slots if s.end <= self.end and s.start <= latest]
        org = self._pick(p.org_weights)
        if (
            placed_at > self.present
            or len(slots) < 6
            or not all(self._free(p, s) for s in slots)
            or not self._within_quota(p, org, slots)
        ):
            return
        for slot in slots:
            self._take(p, org, slot)
        series_id = self._id()
        booker = self.people.bookers[org]
        command = PlaceSeries(
            booker,
            series_id,
            self._request(p, org, first),
            f"FREQ=WEEKLY;COUNT={len(slots)}",
            "skip",
            placed_at,
        )
        self.steps.append(Step(placed_at, p.id, command))
        self.series += 1
        self.placed += len(slots)
        if self.series == 3:
            # One series is given up half way: its remaining occurrences are cancelled.
            middle = slots[len(slots) // 2].start - timedelta(days=2)
            if placed_at < middle <= self.present:
                cancel = CancelSeries(booker, series_id, "Joukkue lopetti kauden kesken", middle)
                self.steps.append(Step(middle, p.id, cancel, needs=occurrence_id(series_id, 0)))

    def _attempts_meant_to_fail(self, count: int) -> None:
        """Someone tries a slot that is taken, brings too many people or books too late."""
        candidates = [b for b in self.bookings if not b.pending and not self._has_quota(b.premises)]
        for _ in range(count):
            if not candidates:
                return
            original = self.rng.choice(candidates)
            p, slot = original.premises, original.slot
            org = self._pick(p.org_weights)
            roll = self.rng.random()
            attendees = None
            if roll < 0.6:  # the slot is taken (unless its booking was cancelled meanwhile)
                latest = min(
                    slot.start - timedelta(minutes=p.rules.min_notice_minutes + 5), self.present
                )
                if latest <= original.placed_at:
                    continue
                now = original.placed_at + (latest - original.placed_at) * self.rng.uniform(0.1, 1)
            elif roll < 0.8:  # more people than the premises holds
                now = min(original.placed_at + timedelta(minutes=1), self.present)
                attendees = p.demo.profile["capacity"] + self.rng.randint(1, 30)
            else:  # later than the premises' notice allows
                now = slot.start - timedelta(minutes=p.rules.min_notice_minutes / 2)
                if now > self.present or now <= original.placed_at:
                    continue
            request = self._request(p, org, slot, attendees)
            command = PlaceBooking(self.people.bookers[org], self._id(), request, now)
            self.steps.append(Step(now, p.id, command))
            self.doomed += 1

    @staticmethod
    def _has_quota(p: _Premises) -> bool:
        return p.rules.quota_hours_per_week is not None or p.rules.quota_hours_per_month is not None

    def _decisions_and_cancellations(self) -> None:
        """Staff decide requests within three days; 8% of bookings are cancelled, never one
        that is rejected; a request cancelled before staff got to it is not decided."""
        decisions: dict[str, tuple[datetime, bool]] = {}
        for b in self.bookings:
            if not b.pending:
                continue
            window = min(timedelta(hours=72), b.slot.start - timedelta(minutes=30) - b.placed_at)
            decided_at = b.placed_at + window * self.rng.uniform(0.1, 1)
            if decided_at <= self.present:
                decisions[b.booking_id] = (decided_at, self.rng.random() >= REJECTED_SHARE)
        cancellable = [b for b in self.bookings if decisions.get(b.booking_id, (None, True))[1]]
        wanted = round(self.placed * CANCELLED_SHARE)
        for b in self.rng.sample(cancellable, min(wanted, len(cancellable))):
            cancelled_at = self._cancel_time(b)
            if cancelled_at is None:
                continue
            if b.booking_id in decisions and decisions[b.booking_id][0] >= cancelled_at:
                del decisions[b.booking_id]
            reason = self.rng.choice(CANCEL_REASONS)
            cancel = CancelBooking(self.people.bookers[b.org], b.booking_id, reason, cancelled_at)
            self.steps.append(Step(cancelled_at, b.premises.id, cancel, needs=b.booking_id))
        for b in self.bookings:
            if b.booking_id in decisions:
                decided_at, approve = decisions[b.booking_id]
                reason = "" if approve else self.rng.choice(REJECT_REASONS)
                decide = DecideBooking(self.people.staff, b.booking_id, approve, reason, decided_at)
                self.steps.append(Step(decided_at, b.premises.id, decide, needs=b.booking_id))

    def _cancel_time(self, b: _Booking) -> datetime | None:
        """Usually well before the deadline; a quarter late, after it (or placed after it)."""
        deadline = b.slot.start - timedelta(minutes=b.premises.rules.cancellation_deadline_minutes)
        earliest = b.placed_at + timedelta(minutes=5)
        if deadline <= earliest or self.rng.random() < LATE_SHARE:
            late_from = max(deadline, earliest)
            at = late_from + (b.slot.start - late_from) * self.rng.uniform(0.1, 0.95)
        else:
            at = earliest + (deadline - earliest) * self.rng.random()
        at = min(at, self.present)
        return at if earliest <= at < b.slot.start else None
