"""The domain's vocabulary: every event the log can hold, in the past tense.

Events are plain frozen dataclasses. Instants are aware datetimes (UTC in the log). No
event carries a person's name, e-mail address or phone number in clear text: people appear
by id only (DESIGN.md invariant 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

JSONObject = dict[str, Any]
# Brings an event's stored JSON from one schema version to the next.
Upcaster = Callable[[JSONObject], JSONObject]


# Why the system cancelled a booking or turned a request down (`BookingCancelled.cause`,
# `PopupRejected.cause`): codes, so each reader is told in their own language.
PREMISES_CLOSED = "premises_closed"
POPUP_WITHDRAWN = "popup_withdrawn"
PREMISES_RETIRED = "premises_retired"
CAUSES = (PREMISES_CLOSED, POPUP_WITHDRAWN, PREMISES_RETIRED)


@dataclass(frozen=True)
class Event:
    """Base of all events. `schema_version` is the version of the event's current shape;
    `upcasters[v]` brings version v's JSON to v + 1, declared beside the event type, so an
    event's history of shapes reads in one place (`events.serialization` applies them)."""

    schema_version: ClassVar[int] = 1
    upcasters: ClassVar[Mapping[int, Upcaster]] = {}


# --- people and organisations ---------------------------------------------------------


@dataclass(frozen=True)
class OrganisationRegistered(Event):
    organisation_id: str
    name: str
    type: str
    business_id: str | None


@dataclass(frozen=True)
class UserRegistered(Event):
    user_id: str
    role: str
    organisation_id: str | None
    language: str


@dataclass(frozen=True)
class OrganisationContactNamed(Event):
    """Staff named the person who decides the organisation's membership requests beside
    staff (`contact_user_id`), or none any more (None). Ids only."""

    organisation_id: str
    contact_user_id: str | None


@dataclass(frozen=True)
class OrganisationRetired(Event):
    """The organisation takes no new members; bookings and members stay as they are."""

    organisation_id: str


@dataclass(frozen=True)
class UserRoleChanged(Event):
    """A person's role changed: an admin assigned it (`by: "admin"`) or the provider's claim
    mapped it at sign-in (`by: "provider"`, BOOKING_OIDC_ROLE_MAP)."""

    user_id: str
    role: str
    organisation_id: str | None
    by: str


# --- the premises catalogue -------------------------------------------------------------


def upcast_premises_registered_v1_v2(data: JSONObject) -> JSONObject:
    """v1 premises knew no spaces: each occupies one space named after itself."""
    return {**data, "spaces": [data["premises_id"]]}


@dataclass(frozen=True)
class PremisesRegistered(Event):
    """A premises entered the catalogue.

    Version 2 added `spaces`, the pieces of floor the premises occupies (a hall and its
    halves share them); v1 premises occupy one space named after themselves
    (`upcast_premises_registered_v1_v2`). `PremisesUpdated.changes` may name new `spaces`.
    """

    schema_version: ClassVar[int] = 2
    upcasters: ClassVar[Mapping[int, Upcaster]] = {1: upcast_premises_registered_v1_v2}

    premises_id: str
    name: JSONObject
    description: JSONObject
    address: str
    district: str
    capacity: int
    free_of_charge: bool
    hourly_price_cents: int | None
    free_use_conditions: JSONObject
    accessibility: list[str]
    equipment: list[str]
    timezone: str
    opening_hours: JSONObject
    rules: JSONObject
    spaces: list[str] = field(default_factory=list)  # empty: one space, the premises' id


@dataclass(frozen=True)
class PremisesUpdated(Event):
    premises_id: str
    changes: JSONObject


@dataclass(frozen=True)
class PremisesRetired(Event):
    premises_id: str
    reason: str


@dataclass(frozen=True)
class ClosureAdded(Event):
    premises_id: str
    closure_id: str
    start: datetime
    end: datetime
    reason: str


# --- bookings ---------------------------------------------------------------------------


# The English system sentences that version 1 of `BookingCancelled` and `PopupRejected`
# stored in `reason`, and the cause each one means.
_LEGACY_WHOLE = {
    "The pop-up was withdrawn.": POPUP_WITHDRAWN,
    "The premises is closed.": PREMISES_CLOSED,
    "The premises is retired.": PREMISES_RETIRED,
}
_LEGACY_PREFIXES = {
    "The premises is closed: ": PREMISES_CLOSED,
    "The premises is retired: ": PREMISES_RETIRED,
}


def split_legacy_reason(reason: str | None) -> tuple[str, str]:
    """(cause, the person's words) of a reason stored before causes had a field of their
    own; a reason that is no known system sentence is all the person's words."""
    text = reason or ""
    if text in _LEGACY_WHOLE:
        return _LEGACY_WHOLE[text], ""
    for prefix, cause in _LEGACY_PREFIXES.items():
        if text.startswith(prefix):
            return cause, text[len(prefix) :]
    return "", text


def upcast_reason_v1_v2(data: JSONObject) -> JSONObject:
    """v1 wrote system sentences in English into `reason` ("The premises is closed:
    Putkiremontti"); v2 keeps the person's words there and the cause as a code."""
    data = dict(data)
    data["cause"], data["reason"] = split_legacy_reason(data.get("reason"))
    return data


def upcast_booking_placed_v1_v2(data: JSONObject) -> JSONObject:
    """v1 named the head count `attendee_count`; v2 calls it `attendees` like the API."""
    data = dict(data)
    data["attendees"] = data.pop("attendee_count", 0)
    return data


@dataclass(frozen=True)
class BookingPlaced(Event):
    """A booking took its slot: `confirmed`, or `pending_approval` (a hold until decided).

    Version 2 renamed v1's `attendee_count` to `attendees` (`upcast_booking_placed_v1_v2`).
    """

    schema_version: ClassVar[int] = 2
    upcasters: ClassVar[Mapping[int, Upcaster]] = {1: upcast_booking_placed_v1_v2}

    premises_id: str
    booking_id: str
    organisation_id: str | None
    booked_by: str
    start: datetime
    end: datetime
    title: str
    attendees: int
    public: bool
    notes: str
    status: str
    placed_at: datetime
    series_id: str | None


@dataclass(frozen=True)
class BookingApproved(Event):
    premises_id: str
    booking_id: str
    approved_by: str
    approved_at: datetime


@dataclass(frozen=True)
class BookingRejected(Event):
    premises_id: str
    booking_id: str
    rejected_by: str
    reason: str
    rejected_at: datetime


@dataclass(frozen=True)
class BookingCancelled(Event):
    """`reason` is the canceller's own words only ("" when none); `cause` says, as a code,
    what the system knows about why (`CAUSES`; "" when a person just cancelled). Version 1
    kept English system sentences in `reason` (see `upcast_reason_v1_v2`)."""

    schema_version: ClassVar[int] = 2
    upcasters: ClassVar[Mapping[int, Upcaster]] = {1: upcast_reason_v1_v2}

    premises_id: str
    booking_id: str
    cancelled_by: str
    reason: str
    late: bool
    cancelled_at: datetime
    cause: str = ""


@dataclass(frozen=True)
class BookingSeriesPlaced(Event):
    premises_id: str
    series_id: str
    rrule: str
    organisation_id: str | None
    booked_by: str
    placed_at: datetime
    skipped: list[JSONObject]  # [{start, end, reason}] occurrences not booked


@dataclass(frozen=True)
class BookingSeriesCancelled(Event):
    premises_id: str
    series_id: str
    cancelled_by: str
    reason: str
    cancelled_at: datetime


# --- pop-up requests: short slots at short notice, held while pending ----------------------


@dataclass(frozen=True)
class PopupRequested(Event):
    """`description` is an envelope sealed with the requester's key (it may name people)."""

    premises_id: str
    request_id: str
    requested_by: str
    start: datetime
    end: datetime
    title: str
    description: str
    expected_attendees: int
    requested_at: datetime
    decision_deadline: datetime


@dataclass(frozen=True)
class PopupApproved(Event):
    """Followed in the same append by the `BookingPlaced` of `booking_id`."""

    premises_id: str
    request_id: str
    booking_id: str
    approved_by: str  # a staff user id, or "auto" where the premises approves free slots
    approved_at: datetime


@dataclass(frozen=True)
class PopupRejected(Event):
    """`reason` and `cause` as in `BookingCancelled` (version 2; see `upcast_reason_v1_v2`)."""

    schema_version: ClassVar[int] = 2
    upcasters: ClassVar[Mapping[int, Upcaster]] = {1: upcast_reason_v1_v2}

    premises_id: str
    request_id: str
    rejected_by: str
    reason: str
    rejected_at: datetime
    cause: str = ""


@dataclass(frozen=True)
class PopupWithdrawn(Event):
    premises_id: str
    request_id: str
    withdrawn_by: str
    withdrawn_at: datetime


@dataclass(frozen=True)
class PopupExpired(Event):
    premises_id: str
    request_id: str
    expired_at: datetime


# --- messages: the two-way channel between a booker or requester and staff ---------------


@dataclass(frozen=True)
class MessagePosted(Event):
    """`body` is an envelope sealed with the author's key."""

    thread_kind: str  # booking | popup
    thread_id: str
    message_id: str
    author_id: str
    author_role: str
    body: str
    posted_at: datetime


# --- seasonal allocation rounds (vuorojako): one stream per round ---------------------------


@dataclass(frozen=True)
class AllocationRoundOpened(Event):
    """Dates (`season_start`, `season_end`) are `YYYY-MM-DD` in the premises' zone."""

    round_id: str
    name: JSONObject
    season_start: str
    season_end: str
    applications_open: datetime
    applications_close: datetime
    premises: list[str]
    criteria: list[JSONObject]
    confirm_days: int
    opened_by: str
    opened_at: datetime


@dataclass(frozen=True)
class AllocationApplicationSubmitted(Event):
    """`purpose` is what the group does (an organisation's text, like a booking's title)."""

    round_id: str
    application_id: str
    organisation_id: str
    submitted_by: str
    purpose: str
    age_group: str
    group_size: int
    sections: list[JSONObject]
    submitted_at: datetime


@dataclass(frozen=True)
class AllocationApplicationUpdated(Event):
    round_id: str
    application_id: str
    changes: JSONObject
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class AllocationApplicationWithdrawn(Event):
    round_id: str
    application_id: str
    withdrawn_by: str
    withdrawn_at: datetime


@dataclass(frozen=True)
class AllocationProposed(Event):
    """The allocator's whole answer (API.md's proposal); it replaces any earlier one."""

    round_id: str
    allocations: list[JSONObject]
    unallocated: list[JSONObject]
    metrics: JSONObject
    proposed_by: str
    proposed_at: datetime


@dataclass(frozen=True)
class AllocationAdjusted(Event):
    """Staff added (`allocation`) or removed (`removed_id`) one allocation of the proposal;
    `override_reason` is the written reason for breaking a soft rule ("" when none)."""

    round_id: str
    allocation: JSONObject | None
    removed_id: str | None
    override_reason: str
    adjusted_by: str
    adjusted_at: datetime


@dataclass(frozen=True)
class AllocationRoundPublished(Event):
    """Every allocation became an offer (same id) to answer by `confirm_by`."""

    round_id: str
    offer_ids: list[str]
    confirm_by: datetime
    published_by: str
    published_at: datetime


@dataclass(frozen=True)
class AllocationOfferHeld(Event):
    """A published offer holds its weekly time on its premises' spaces until it is accepted,
    declined or lapses (`AllocationHoldReleased`). `held`: the season's occurrences (local
    wall time across DST, as instants `{start, end}`) that were free at publication, each
    blocking bookings and pop-up requests of every premises sharing a space; `skipped`: those
    already taken then (`{start, end, reason}`, like `BookingSeriesPlaced.skipped`)."""

    round_id: str
    allocation_id: str
    premises_id: str
    held: list[JSONObject]
    skipped: list[JSONObject]
    held_at: datetime


@dataclass(frozen=True)
class AllocationHoldReleased(Event):
    """The offer's held time is free again: after its decline or lapse, or at its acceptance
    (then the series placed in the same transaction takes the time over)."""

    round_id: str
    allocation_id: str
    premises_id: str
    released_at: datetime


@dataclass(frozen=True)
class AllocationOfferAccepted(Event):
    """Followed, in the premises' stream, by the `BookingSeriesPlaced` of `series_id`."""

    round_id: str
    allocation_id: str
    series_id: str
    accepted_by: str
    accepted_at: datetime


@dataclass(frozen=True)
class AllocationOfferDeclined(Event):
    round_id: str
    allocation_id: str
    declined_by: str
    reason: str
    declined_at: datetime


@dataclass(frozen=True)
class AllocationOfferLapsed(Event):
    round_id: str
    allocation_id: str
    lapsed_at: datetime


ALL_EVENTS: tuple[type[Event], ...] = (
    OrganisationRegistered,
    UserRegistered,
    OrganisationContactNamed,
    OrganisationRetired,
    UserRoleChanged,
    PremisesRegistered,
    PremisesUpdated,
    PremisesRetired,
    ClosureAdded,
    BookingPlaced,
    BookingApproved,
    BookingRejected,
    BookingCancelled,
    BookingSeriesPlaced,
    BookingSeriesCancelled,
    PopupRequested,
    PopupApproved,
    PopupRejected,
    PopupWithdrawn,
    PopupExpired,
    MessagePosted,
    AllocationRoundOpened,
    AllocationApplicationSubmitted,
    AllocationApplicationUpdated,
    AllocationApplicationWithdrawn,
    AllocationProposed,
    AllocationAdjusted,
    AllocationRoundPublished,
    AllocationOfferAccepted,
    AllocationOfferDeclined,
    AllocationOfferLapsed,
    AllocationOfferHeld,
    AllocationHoldReleased,
)
