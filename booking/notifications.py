"""Which events become which e-mails, in the recipient's language.

Called in the transaction of the append, so a mail exists exactly when its cause does.
The sentences are in the Babel catalogues with the pages' (fi, sv, en): a mail is rendered
with its recipient's catalogue (`booking.i18n.translations`), with or without a request;
system reasons are said by `booking.reasons`, around the person's own words.
Mails name the premises and the local time; they carry no personal names, and the address
is looked up only when the mail is sent (an erased person gets nothing).

One path for one event and for thousands (the expiry job mails 10,000 requesters at once):
a `Notifier` reads what many mails need with a few queries — the pop-up requests with their
requesters' languages, then their premises — and formats each distinct slot's local time
once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from babel.support import NullTranslations
from sqlalchemy import JSON, Select, String, bindparam, func, select, type_coerce
from sqlalchemy.engine import Connection

from booking import allocation_mails, reasons
from booking.i18n import translations
from booking.mail_texts import local_time, mail_sentences, texts
from booking.outbox import Mail, enqueue
from booking.tables import users
from events import pipeline
from events.catalog import (
    BookingApproved,
    BookingCancelled,
    BookingPlaced,
    BookingRejected,
    BookingSeriesCancelled,
    BookingSeriesPlaced,
    Event,
    MessagePosted,
    PopupApproved,
    PopupExpired,
    PopupRejected,
    PremisesRetired,
)
from events.sql import ByDialect, one_of, one_of_chunks
from events.store import RecordedEvent
from projections.bookings import bookings_table
from projections.catalogue import premises_table
from projections.popups import popups_table

_LANGUAGE = select(users.c.language).where(users.c.id == bindparam("user"))
_PREMISES = select(
    premises_table.c.name,
    premises_table.c.timezone,
    _LANGUAGE.scalar_subquery().label("language"),
).where(premises_table.c.id == bindparam("premises"))
# Statements for many rows, built once per dialect (`events.sql.one_of`).
_PREMISES_BY_ID = ByDialect(
    lambda dialect: select(
        premises_table.c.id, premises_table.c.name, premises_table.c.timezone
    ).where(one_of(premises_table.c.id, "ids", dialect))
)
_LANGUAGES_BY_ID = ByDialect(
    lambda dialect: select(users.c.id, users.c.language).where(one_of(users.c.id, "ids", dialect))
)
_p = popups_table
# What a pop-up's mails need of the request, with the requester's language. The instants
# come as the driver gives them and are read once per distinct value (`Notifier._instant`):
# an expiry run mails thousands of requests about a few hundred slots.
_POPUP_COLUMNS = (
    _p.c.id,
    _p.c.requested_by,
    _p.c.premises_id,
    _p.c.title,
    type_coerce(_p.c.start, String).label("start"),
    type_coerce(_p.c.end, String).label("end"),
    users.c.language,
)


def _popups_by_id(dialect: str) -> Select[Any]:
    """The requests whose ids are bound as `ids` (no id twice). On SQLite a join from the
    ids' JSON array, each looked up: `IN (SELECT …)` first made an index of them."""
    if dialect == "postgresql":
        found = _p.outerjoin(users, users.c.id == _p.c.requested_by)
        return select(*_POPUP_COLUMNS).select_from(found).where(one_of(_p.c.id, "ids", dialect))
    ids = func.json_each(bindparam("ids", type_=JSON())).table_valued("value")
    found = ids.join(_p, _p.c.id == ids.c.value).outerjoin(users, users.c.id == _p.c.requested_by)
    return select(*_POPUP_COLUMNS).select_from(found)


_POPUPS_BY_ID = ByDialect(_popups_by_id)
LANGUAGES = ("fi", "sv", "en")


class Popup(NamedTuple):
    """What a mail says of a pop-up request."""

    requested_by: str
    premises_id: str
    title: str
    start: datetime
    end: datetime


class Notifier:
    """Collects mails for one transaction's events; reads what it needs once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._premises: dict[str, tuple[dict[str, Any], ZoneInfo]] = {}
        self._languages: dict[str, str] = {}
        self._popups: dict[str, Popup] = {}
        self._whens: dict[tuple[datetime, datetime, ZoneInfo, str], str] = {}
        self._instants: dict[Any, datetime] = {}
        self._catalogues: dict[str, NullTranslations] = {}

    @cached_property
    def _read_instant(self) -> Callable[[Any], Any] | None:
        """How `UTCDateTime` reads a stored instant here: worked out on first use, for the
        pop-ups' mails (a booking's mail has no use for it)."""
        stored = _p.c.start.type.dialect_impl(self.conn.dialect)
        return stored.result_processor(self.conn.dialect, None)

    def language(self, user_id: str) -> str:
        if user_id not in self._languages:
            found = self.conn.execute(_LANGUAGE, {"user": user_id}).scalar()
            self._remember_language(user_id, found)
        return self._languages[user_id]

    def _remember_language(self, user_id: str, found: str | None) -> None:
        self._languages[user_id] = found if found in LANGUAGES else "fi"

    def premises(self, premises_id: str) -> tuple[dict[str, Any], ZoneInfo]:
        if premises_id not in self._premises:
            row = self.conn.execute(_PREMISES, {"premises": premises_id, "user": None}).one()
            self._premises[premises_id] = (row.name, ZoneInfo(row.timezone))
        return self._premises[premises_id]

    def prefetch_premises(self, premises_ids: Iterable[str]) -> None:
        """Read many premises in one query per chunk."""
        missing = sorted(set(premises_ids) - self._premises.keys())
        for chunk in one_of_chunks(missing):
            for row in self.conn.execute(_PREMISES_BY_ID[self.conn], {"ids": chunk}).all():
                self._premises[row.id] = (row.name, ZoneInfo(row.timezone))

    def _prefetch(self, user_id: str, premises_id: str) -> None:
        """The recipient's language and the premises in one round trip (most commands mail
        one person about one premises)."""
        if user_id in self._languages or premises_id in self._premises:
            return
        row = pipeline.remembered(self.conn, (_PREMISES, premises_id, user_id))
        if row is None:  # not read ahead (`read_ahead`)
            row = self.conn.execute(_PREMISES, {"premises": premises_id, "user": user_id}).one()
        name, timezone, language = row
        self._premises[premises_id] = (name, ZoneInfo(timezone))
        self._remember_language(user_id, language)

    def when(self, start: datetime, end: datetime, zone: ZoneInfo, language: str) -> str:
        """`local_time`, formatted once per distinct slot, zone and language."""
        key = (start, end, zone, language)
        found = self._whens.get(key)
        if found is None:
            found = self._whens[key] = local_time(start, end, zone, language)
        return found

    def mail(
        self,
        kind: str,
        key: str,
        recipient: str,
        premises_id: str | None,
        title: str,
        start: datetime | None = None,
        end: datetime | None = None,
        reason: tuple[str, str] | None = None,
        skipped: Sequence[Mapping[str, Any]] = (),
        **extra: object,
    ) -> Mail:
        if premises_id is not None:
            self._prefetch(recipient, premises_id)
        language = self.language(recipient)
        catalogue = self._catalogue(language)
        fields: dict[str, object] = {"title": title, "premises": "", "when": "", **extra}
        zone: ZoneInfo | None = None
        if premises_id is not None:
            names, zone = self.premises(premises_id)
            fields["premises"] = _name_in(names, language, premises_id)
            if start is not None and end is not None:
                fields["when"] = self.when(start, end, zone, language)
        if reason is not None:
            fields["reason"] = reasons.sentence(reason[0], reason[1], catalogue) or "–"
        if skipped and zone is not None:
            fields["skipped"] = [self._skipped(s, zone, language) for s in skipped]
        subject, body = texts(kind, catalogue, fields)
        return Mail(
            dedupe_key=f"{key}:{recipient}",
            recipient_id=recipient,
            language=language,
            subject=subject,
            body=body,
        )

    def popup_mails(self, decided: Sequence[tuple[PopupDecision, str]]) -> list[Mail]:
        """The mail of each decision on a pop-up request (with the decision's key), to its
        requester: what `mail` writes, in fewer steps for many (an expiry run writes 10,000)
        — the requests, their requesters' languages and premises read at once, and each
        kind's sentences looked up once per language."""
        self.prefetch_popups(e.request_id for e, _ in decided)
        popups, languages, premises, when = self._popups, self._languages, self._premises, self.when
        # Per premises, language and kind: its name, zone and sentences, and the subject
        # when it says nothing of the request (it names the premises only).
        fixed: dict[tuple[str, str, str], tuple[str, ZoneInfo, str, str, str | None]] = {}
        kinds = _POPUP_KINDS
        mails: list[Mail] = []
        append = mails.append
        for event, key in decided:
            kind = kinds[type(event)]
            row = popups.get(event.request_id)
            language = None if row is None else languages.get(row.requested_by)
            if row is None or language is None or kind == "popup_rejected":
                append(self._popup_mail(event, key))  # `mail`'s reads, a reason
                continue
            at = (row.premises_id, language, kind)
            found = fixed.get(at)
            if found is None:
                place = premises.get(row.premises_id)
                if place is None:
                    append(self._popup_mail(event, key))
                    continue
                names, zone = place
                name = _name_in(names, language, row.premises_id)
                subject_of, body_of = mail_sentences(kind, self._catalogue(language), 0)
                plain = "%(title)" not in subject_of and "%(when)" not in subject_of
                subject = subject_of % {"num": 0, "premises": name} if plain else None
                found = fixed[at] = (name, zone, subject_of, body_of, subject)
            name, zone, subject_of, body_of, subject = found
            # What `texts` makes of these fields: no count, lists or skipped dates.
            values = {
                "num": 0,
                "title": row.title,
                "premises": name,
                "when": when(row.start, row.end, zone, language),
            }
            requester = row.requested_by
            append(
                Mail(
                    f"{key}:{requester}",
                    requester,
                    language,
                    subject_of % values if subject is None else subject,
                    body_of % values,
                )
            )
        return mails

    def _popup_mail(self, event: PopupDecision, key: str) -> Mail:
        row = self.popup(event.request_id)
        reason = (event.cause, event.reason) if isinstance(event, PopupRejected) else None
        return self.mail(
            _POPUP_KINDS[type(event)],
            key,
            row.requested_by,
            row.premises_id,
            row.title,
            row.start,
            row.end,
            reason=reason,
        )

    def _catalogue(self, language: str) -> NullTranslations:
        """The language's catalogue, looked up once per language (an expiry run makes
        10,000 mails)."""
        catalogue = self._catalogues.get(language)
        if catalogue is None:
            catalogue = self._catalogues[language] = translations(language)
        return catalogue

    def _skipped(self, skipped: Mapping[str, Any], zone: ZoneInfo, language: str) -> str:
        """`ti 8.12.2026 klo 18.00–20.00 (…): Aika on jo varattu.`"""
        start, end = (datetime.fromisoformat(skipped[k]) for k in ("start", "end"))
        why = reasons.skipped_reason(str(skipped.get("reason", "")), language)
        return f"{self.when(start, end, zone, language)}: {why}"

    def popup(self, request_id: str) -> Popup:
        found = self._popups.get(request_id)
        if found is None:
            self.prefetch_popups([request_id])
            found = self._popups[request_id]
        return found

    def prefetch_popups(self, request_ids: Iterable[str]) -> None:
        """Read many pop-up requests, their requesters' languages and their premises with a
        few queries (an expiry run mails thousands)."""
        missing = sorted(set(request_ids) - self._popups.keys())
        if not missing:  # (every booking's mail asks, for the pop-ups it decides: none)
            return
        instant, instants, popups = self._instant, self._instants, self._popups
        for chunk in one_of_chunks(missing):
            rows = self.conn.execute(_POPUPS_BY_ID[self.conn], {"ids": chunk}).all()
            for request_id, requester, premises_id, title, start, end, language in rows:
                start_at = instants.get(start) or instant(start)
                end_at = instants.get(end) or instant(end)
                popups[request_id] = Popup(requester, premises_id, title, start_at, end_at)
                if requester not in self._languages:
                    self._remember_language(requester, language)
        self.prefetch_premises({self._popups[i].premises_id for i in missing if i in self._popups})

    def know_popups(self, popups: Mapping[str, Popup]) -> None:
        """Take what mails say of these requests from the caller (the expiry job holds it
        in the premises' states): only their requesters' languages and premises are read,
        once per requester and premises."""
        self._popups.update(popups)
        requesters = {p.requested_by for p in popups.values()} - self._languages.keys()
        for chunk in one_of_chunks(sorted(requesters)):
            found = dict(self.conn.execute(_LANGUAGES_BY_ID[self.conn], {"ids": chunk}).all())
            for user_id in chunk:
                # As the requests' read finds them: no user row (erased) reads as Finnish.
                self._remember_language(user_id, found.get(user_id))
        self.prefetch_premises({p.premises_id for p in popups.values()})

    def _instant(self, stored: Any) -> datetime:
        """A stored instant as `UTCDateTime` reads it, once per distinct value."""
        found = self._instants.get(stored)
        if found is None:
            read = self._read_instant
            value: datetime = cast(datetime, read(stored) if read else stored)  # NOT NULL
            found = self._instants[stored] = value
        return found

    def booking(self, booking_id: str) -> Any:
        # Read ahead with the command's first reads (`booking.queries.bookings.row_ahead`):
        # a cancellation's mail needs nothing its own writes change.
        found = pipeline.remembered(self.conn, ("booking", booking_id))
        if found is not None:
            return found
        return self.conn.execute(
            select(bookings_table).where(bookings_table.c.id == booking_id)
        ).one()

    def staff(self) -> list[str]:
        return list(
            self.conn.execute(select(users.c.id).where(users.c.role.in_(("staff",)))).scalars()
        )


@dataclass(frozen=True)
class Batch:
    """What one append says as a whole: one mail covers a series, a pop-up approval is
    one mail and not also a booking confirmation."""

    series_counts: dict[str, int]
    cancelled_count: int
    series_cancel: bool
    popup_bookings: frozenset[str]
    retired: bool = False  # the premises is retired in the same append: say so to bookers
    cancelled_ids: frozenset[str] = frozenset()  # a series cancellation's mail names the first

    @classmethod
    def of(cls, events: list[Event]) -> Batch:
        counts: dict[str, int] = {}
        for e in events:
            if isinstance(e, BookingPlaced) and e.series_id:
                counts[e.series_id] = counts.get(e.series_id, 0) + 1
        return cls(
            series_counts=counts,
            cancelled_count=sum(isinstance(e, BookingCancelled) for e in events),
            series_cancel=any(isinstance(e, BookingSeriesCancelled) for e in events),
            popup_bookings=frozenset(e.booking_id for e in events if isinstance(e, PopupApproved)),
            retired=any(isinstance(e, PremisesRetired) for e in events),
            cancelled_ids=frozenset(
                e.booking_id for e in events if isinstance(e, BookingCancelled)
            ),
        )


PopupDecision = PopupApproved | PopupRejected | PopupExpired  # each mails its requester
_POPUP_DECISIONS = (PopupApproved, PopupRejected, PopupExpired)
_POPUP_KINDS: dict[type[Event], str] = {
    PopupApproved: "popup_approved",
    PopupRejected: "popup_rejected",
    PopupExpired: "popup_expired",
}


def _name_in(names: Mapping[str, Any], language: str, premises_id: str) -> str:
    """The premises' name in the language, else in Finnish, else its id."""
    return str(names.get(language) or names.get("fi") or premises_id)


def mails_for(
    conn: Connection,
    appended: Sequence[tuple[Event, RecordedEvent]],
    popups: Mapping[str, Popup] | None = None,
) -> list[Mail]:
    """The mails that `appended` should send (read after the projections by event ran);
    `popups`, what the caller holds of pop-up requests (as `Notifier.know_popups`)."""
    notifier = Notifier(conn)
    if popups:
        notifier.know_popups(popups)
    context: Batch | None = None  # what the whole append says: not needed by pop-up decisions
    notifier.prefetch_popups(e.request_id for e, _ in appended if isinstance(e, PopupDecision))
    mails: list[Mail] = []
    decided: list[tuple[PopupDecision, str]] = []  # a run of them: an expiry run's 10,000
    for event, recorded in appended:
        key = f"{recorded.stream}:{recorded.version}"
        if isinstance(event, _POPUP_DECISIONS):
            decided.append((event, key))
            continue
        if decided:
            mails += notifier.popup_mails(decided)
            decided = []
        if isinstance(event, allocation_mails.ROUND_MAIL_EVENTS):
            mails += allocation_mails.round_mails(notifier, event, key)
        else:
            context = context or Batch.of([event for event, _ in appended])
            mails += _mails_for_event(notifier, event, key, context)
    return mails + notifier.popup_mails(decided) if decided else mails


def _mails_for_event(n: Notifier, event: Event, key: str, context: Batch) -> Iterable[Mail]:
    match event:
        case BookingPlaced(series_id=None, booked_by=who, status=status) if (
            event.booking_id not in context.popup_bookings
        ):
            kind = "confirmed" if status == "confirmed" else "pending"
            yield n.mail(kind, key, who, event.premises_id, event.title, event.start, event.end)
        case BookingSeriesPlaced(series_id=sid, booked_by=who):
            first = n.conn.execute(
                select(bookings_table)
                .where(bookings_table.c.series_id == sid)
                .order_by(bookings_table.c.start)
                .limit(1)
            ).one()
            yield n.mail(
                "series",
                key,
                who,
                event.premises_id,
                first.title,
                first.start,
                first.end,
                count=context.series_counts.get(sid, 0),
                skipped=event.skipped,
            )
        case BookingApproved(booking_id=bid) | BookingRejected(booking_id=bid):
            row = n.booking(bid)
            kind = "approved" if isinstance(event, BookingApproved) else "rejected"
            reason = getattr(event, "reason", "")
            yield n.mail(
                kind,
                key,
                row.booked_by,
                row.premises_id,
                row.title,
                row.start,
                row.end,
                reason=("", reason),
            )
        case BookingCancelled(booking_id=bid, reason=reason) if not context.series_cancel:
            row = n.booking(bid)
            # A retirement's mail says itself that the premises is taken out of use: its
            # reason line gives only the staff's own words.
            yield n.mail(
                "retired" if context.retired else "cancelled",
                key,
                row.booked_by,
                row.premises_id,
                row.title,
                row.start,
                row.end,
                reason=("", reason) if context.retired else (event.cause, reason),
            )
        case BookingSeriesCancelled(series_id=sid, reason=reason):
            # Like every mail it says the local time: of the first occurrence cancelled now
            # (any of the series' when none is: its booker and title are the same).
            b = bookings_table
            first = n.conn.execute(
                select(b)
                .where(b.c.series_id == sid)
                .order_by(b.c.id.not_in(sorted(context.cancelled_ids)), b.c.start)
                .limit(1)
            ).one()
            yield n.mail(
                "series_cancelled",
                key,
                first.booked_by,
                event.premises_id,
                first.title,
                first.start,
                first.end,
                count=context.cancelled_count,
                reason=("", reason),
            )
        case PopupApproved() | PopupRejected() | PopupExpired():
            yield from n.popup_mails([(event, key)])
        case MessagePosted():
            yield from _message_mails(n, event, key)


def _message_mails(n: Notifier, event: MessagePosted, key: str) -> Iterable[Mail]:
    if event.thread_kind == "booking":
        row = n.booking(event.thread_id)
        owner = row.booked_by
    else:
        row = n.popup(event.thread_id)
        owner = row.requested_by
    # Staff's message goes to the booker or requester; theirs goes to staff. Like every
    # mail it names the premises and the local time (API.md, "Messages and notifications").
    recipients = [owner] if event.author_role in ("staff", "admin") else n.staff()
    for recipient in recipients:
        if recipient != event.author_id:
            yield n.mail("message", key, recipient, row.premises_id, row.title, row.start, row.end)


def read_ahead(user_id: str, premises_id: str) -> tuple[Any, dict[str, Any], Any]:
    """The read a mail to `user_id` about `premises_id` needs, for a caller that sends it
    with others in one round trip (`events.pipeline.read_together`) and hands its row on
    with `events.pipeline.remember(conn, key, row)`: (statement, parameters, key)."""
    return _PREMISES, {"premises": premises_id, "user": user_id}, (_PREMISES, premises_id, user_id)


def notify(
    conn: Connection,
    appended: Sequence[tuple[Event, RecordedEvent]],
    now: datetime,
    popups: Mapping[str, Popup] | None = None,
) -> None:
    enqueue(conn, mails_for(conn, appended, popups), now)
