"""Which events of an allocation round become which e-mails, in each recipient's language.

- `AllocationApplicationSubmitted`: "application received" to whoever applied (to the
  organisation's members when staff applied on its behalf).
- `AllocationRoundPublished`: one mail per organisation that applied, to its applicants:
  each offered weekly slot and `confirm_by` in local time, and for each section that got
  fewer slots than it asked the reason (booking.allocation.explain's sentences, said in the
  reader's language, naming the organisations and times that hold its wishes).
- `AllocationOfferDeclined`: a confirmation to the organisation's applicants and the person
  who declined, with their own words.
- `AllocationOfferLapsed`: a notice to the applicants.
- `offer_reminders`: a reminder a day before `confirm_by` for each offer still unanswered
  (the scheduler's `remind_offers`); its dedupe key makes it once per offer and recipient
  however often, and by however many schedulers, the job runs.

Like every mail (booking/notifications.py) they name premises, organisations and local
times, never a person; the address is looked up only when a mail is sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import get_day_names
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from booking.allocation import explain
from booking.i18n import translations
from booking.mail_texts import clock_time, local_date, local_instant
from booking.memberships import memberships
from booking.outbox import Mail
from booking.tables import organisations, users
from events.catalog import (
    AllocationApplicationSubmitted,
    AllocationOfferDeclined,
    AllocationOfferLapsed,
    AllocationRoundPublished,
    Event,
)
from projections.allocation import allocations_table, applications_table, rounds_table

if TYPE_CHECKING:  # booking.notifications calls this module: imported at run time below
    from booking.notifications import Notifier

ROUND_MAIL_EVENTS = (
    AllocationApplicationSubmitted,
    AllocationRoundPublished,
    AllocationOfferDeclined,
    AllocationOfferLapsed,
)
STAFF = ("staff", "admin")
REMINDER_AHEAD = timedelta(hours=24)
WEEKDAY_INDEX = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


class RoundMails:
    """What a round's mails need, read once per transaction."""

    def __init__(self, notifier: Notifier) -> None:
        self.n = notifier
        self.conn: Connection = notifier.conn
        self._rounds: dict[str, Any] = {}
        self._organisations: dict[str, str] = {}

    # --- reading ------------------------------------------------------------------------

    def round(self, round_id: str) -> Any:
        if round_id not in self._rounds:
            t = rounds_table
            self._rounds[round_id] = self.conn.execute(select(t).where(t.c.id == round_id)).one()
        return self._rounds[round_id]

    def organisation(self, organisation_id: str) -> str:
        if organisation_id not in self._organisations:
            found = self.conn.execute(
                select(organisations.c.name).where(organisations.c.id == organisation_id)
            ).scalar()
            self._organisations[organisation_id] = found or organisation_id
        return self._organisations[organisation_id]

    def members(self, organisation_id: str) -> list[str]:
        """The organisation's people who are not staff (its bookers), by id."""
        u, m = users, memberships
        joined = select(m.c.user_id).where(m.c.organisation_id == organisation_id)
        rows = self.conn.execute(
            select(u.c.id)
            .where(
                or_(u.c.organisation_id == organisation_id, u.c.id.in_(joined)),
                u.c.role.not_in(STAFF),
                u.c.erased_at.is_(None),
            )
            .order_by(u.c.id)
        )
        return list(rows.scalars())

    def applicants(self, round_id: str, organisation_id: str) -> list[str]:
        """Who applied for the organisation in this round (not staff on its behalf); its
        members when only staff did."""
        a = applications_table
        rows = self.conn.execute(
            select(a.c.submitted_by)
            .join(users, users.c.id == a.c.submitted_by)
            .where(
                a.c.round_id == round_id,
                a.c.organisation_id == organisation_id,
                users.c.role.not_in(STAFF),
            )
            .distinct()
        )
        found = sorted(rows.scalars())
        return found or self.members(organisation_id)

    def is_staff(self, user_id: str) -> bool:
        role = self.conn.execute(select(users.c.role).where(users.c.id == user_id)).scalar()
        return role is None or role in STAFF

    def zone(self, row: Any) -> ZoneInfo:
        premises = list(row.premises or [])
        return self.n.premises(premises[0])[1] if premises else ZoneInfo("Europe/Helsinki")

    # --- saying -----------------------------------------------------------------------------

    def fields(self, round_id: str, organisation_id: str, language: str) -> dict[str, object]:
        row = self.round(round_id)
        names = row.name or {}
        start, end = (date.fromisoformat(d) for d in (row.season_start, row.season_end))
        fields: dict[str, object] = {
            "round": names.get(language) or names.get("fi") or names.get("en") or round_id,
            "organisation": self.organisation(organisation_id),
            "season": f"{local_date(start, language)}–{local_date(end, language)}",
            "confirm_by": "",
        }
        if row.confirm_by is not None:
            fields["confirm_by"] = local_instant(row.confirm_by, self.zone(row), language)
        return fields

    def slot(self, allocation: Any, language: str) -> str:
        """`P10 — Koulun sali, maanantai 17.00–18.30`: a weekly slot in the reader's words."""
        return f"{allocation.section} — {self.where(allocation, language)}"

    def where(self, allocation: Any, language: str) -> str:
        premises = self.premises_name(allocation.premises_id, language)
        when = self.weekly_time(
            allocation.weekday, allocation.start_time, allocation.end_time, language
        )
        return f"{premises}, {when}"

    def premises_name(self, premises_id: str, language: str) -> str:
        names = self.n.premises(premises_id)[0]
        return str(names.get(language) or names.get("fi") or premises_id)

    def weekly_time(self, weekday: str, start: str, end: str, language: str) -> str:
        """`maanantai 17.00–18.30`: a weekday and wall-clock times in the reader's words."""
        day = get_day_names("wide", context="stand-alone", locale=language)[WEEKDAY_INDEX[weekday]]
        return f"{day} {clock_time(start, language)}–{clock_time(end, language)}"

    def mail(
        self,
        kind: str,
        key: str,
        recipient: str,
        round_id: str,
        organisation_id: str,
        **extra: Any,
    ) -> Mail:
        language = self.n.language(recipient)
        fields: dict[str, Any] = dict(self.fields(round_id, organisation_id, language))
        for name, value in extra.items():  # a value may depend on the reader's language
            fields[name] = value(language) if callable(value) else value
        title = str(fields.pop("title", ""))
        reason = fields.pop("reason", None)
        return self.n.mail(
            kind,
            key,
            recipient,
            None,
            title,
            reason=None if reason is None else ("", str(reason)),
            **fields,
        )

    # --- the events ----------------------------------------------------------------------

    def received(self, e: AllocationApplicationSubmitted, key: str) -> Iterable[Mail]:
        if self.is_staff(e.submitted_by):
            recipients = self.members(e.organisation_id)
        else:
            recipients = [e.submitted_by]

        self.n.prefetch_premises(p for s in e.sections for p in s.get("premises", []))

        def sections(language: str) -> list[str]:
            return [self.section_line(s, language) for s in e.sections]

        for recipient in recipients:
            yield self.mail(
                "application_received",
                key,
                recipient,
                e.round_id,
                e.organisation_id,
                title=e.purpose,
                sections=sections,
            )

    def section_line(self, section: dict[str, Any], language: str) -> str:
        """`P10: 2 × 90 min viikossa — Koulun sali, Lyseon sali; maanantai 17.00–20.00`: a
        section and what it wishes, the premises (most wanted first) and the local times
        (API.md: every e-mail names the premises and the local time)."""
        _ = translations(language).gettext
        asked = _("%(name)s: %(slots)d × %(minutes)d min a week") % {
            "name": section.get("name", ""),
            "slots": int(section.get("slots_per_week", 0)),
            "minutes": int(section.get("duration_minutes", 0)),
        }
        premises = [self.premises_name(p, language) for p in section.get("premises", [])]
        times = [
            self.weekly_time(t["weekday"], t["from"], t["to"], language)
            for t in section.get("times", [])
        ]
        return f"{asked} — {', '.join(premises)}; {', '.join(times)}"

    def published(self, e: AllocationRoundPublished, key: str) -> Iterable[Mail]:
        a, p = allocations_table, applications_table
        offers = self.conn.execute(
            select(a)
            .where(a.c.round_id == e.round_id, a.c.id.in_(sorted(e.offer_ids)))
            .order_by(a.c.organisation_id, a.c.weekday, a.c.start_time, a.c.id)
        ).all()
        applications = self.conn.execute(
            select(p)
            .where(p.c.round_id == e.round_id, p.c.status == "submitted")
            .order_by(p.c.organisation_id, p.c.id)
        ).all()
        by_organisation: dict[str, list[Any]] = defaultdict(list)
        for offer in offers:
            by_organisation[offer.organisation_id].append(offer)
        wanting: dict[str, list[Any]] = defaultdict(list)
        for application in applications:
            wanting[application.organisation_id].append(application)
        self.n.prefetch_premises(o.premises_id for o in offers)
        unallocated = {
            (u["application_id"], u["section"]): u for u in self.round(e.round_id).unallocated or []
        }
        for organisation_id in sorted(set(by_organisation) | set(wanting)):
            mine = by_organisation.get(organisation_id, [])
            left = self._left_out(wanting.get(organisation_id, []), mine, unallocated, offers)

            def offer_lines(language: str, mine: list[Any] = mine) -> list[str]:
                return [self.slot(o, language) for o in mine]

            for recipient in self.applicants(e.round_id, organisation_id):
                yield self.mail(
                    "offer" if mine else "offer_none",
                    f"{key}:{organisation_id}",
                    recipient,
                    e.round_id,
                    organisation_id,
                    offers=offer_lines,
                    unallocated=left,
                )

    def _left_out(
        self,
        applications: Sequence[Any],
        offered: Sequence[Any],
        unallocated: dict[tuple[str, str], dict[str, Any]],
        every_offer: Sequence[Any],
    ) -> Any:
        """Per section with fewer slots than asked: a line saying why, in any language."""
        got: dict[tuple[str, str], int] = defaultdict(int)
        for offer in offered:
            got[(offer.application_id, offer.section)] += 1
        organisation_of = {o.id: o.organisation_id for o in every_offer}
        missing: list[tuple[dict[str, Any], int, dict[str, Any] | None]] = []
        for application in applications:
            for section in application.sections:
                key = (application.id, section["name"])
                if int(section["slots_per_week"]) > got[key]:
                    missing.append((section, got[key], unallocated.get(key)))

        def lines(language: str) -> list[str]:
            _ = translations(language).gettext
            said = []
            for section, days, entry in missing:
                if entry is None:
                    why = _("Staff changed the proposal.")
                else:
                    holders = [
                        self._holder(h, organisation_of, language)
                        for h in entry.get("blocked_by") or []
                    ]
                    why = explain.sentence(explain.code_of(entry), holders, days, _)
                said.append(
                    _("%(name)s, %(missing)d of %(slots)d a week: %(reason)s")
                    % {
                        "name": section["name"],
                        "missing": int(section["slots_per_week"]) - days,
                        "slots": int(section["slots_per_week"]),
                        "reason": why,
                    }
                )
            return said

        return lines

    def _holder(
        self, holder: dict[str, Any], organisation_of: dict[str, str], language: str
    ) -> str:
        """`Seura ry (P10), Koulun sali, maanantai 17.00–18.30`: what holds a wished time."""
        organisation_id = organisation_of.get(str(holder.get("allocation_id")))
        if organisation_id is None:
            p = applications_table
            organisation_id = self.conn.execute(
                select(p.c.organisation_id).where(p.c.id == holder.get("application_id"))
            ).scalar()
        who = self.organisation(organisation_id) if organisation_id else ""
        allocation = _Slot(
            str(holder.get("section", "")),
            str(holder["premises_id"]),
            str(holder["weekday"]),
            str(holder["start_time"]),
            str(holder["end_time"]),
        )
        return f"{who} ({allocation.section}), {self.where(allocation, language)}"

    def answered(
        self, e: AllocationOfferDeclined | AllocationOfferLapsed, key: str
    ) -> Iterable[Mail]:
        a = allocations_table
        offer = self.conn.execute(select(a).where(a.c.id == e.allocation_id)).one()
        recipients = self.applicants(e.round_id, offer.organisation_id)
        extra: dict[str, Any] = {}
        if isinstance(e, AllocationOfferDeclined):
            kind = "offer_declined"
            extra["reason"] = e.reason
            if not self.is_staff(e.declined_by) and e.declined_by not in recipients:
                recipients = [*recipients, e.declined_by]
        else:
            kind = "offer_lapsed"
        for recipient in recipients:
            yield self.mail(
                kind,
                key,
                recipient,
                e.round_id,
                offer.organisation_id,
                slot=lambda language, offer=offer: self.slot(offer, language),
                **extra,
            )


class _Slot:
    """A weekly slot as `RoundMails.where` reads it (an allocation row or a `blocked_by`)."""

    def __init__(
        self, section: str, premises_id: str, weekday: str, start_time: str, end_time: str
    ) -> None:
        self.section = section
        self.premises_id = premises_id
        self.weekday = weekday
        self.start_time = start_time
        self.end_time = end_time


def round_mails(notifier: Notifier, event: Event, key: str) -> list[Mail]:
    """The mails of one of `ROUND_MAIL_EVENTS` (read after the inline projections ran)."""
    mails = RoundMails(notifier)
    match event:
        case AllocationApplicationSubmitted():
            return list(mails.received(event, key))
        case AllocationRoundPublished():
            return list(mails.published(event, key))
        case AllocationOfferDeclined() | AllocationOfferLapsed():
            return list(mails.answered(event, key))
    return []


def offer_reminders(conn: Connection, now: datetime) -> list[Mail]:
    """A reminder for every offer still unanswered whose `confirm_by` is within a day, when
    it was published more than a day before it (a shorter offer gets none)."""
    a, r = allocations_table, rounds_table
    rows = conn.execute(
        select(a)
        .join(r, r.c.id == a.c.round_id)
        .where(
            a.c.status == "offered",
            a.c.confirm_by > now,
            a.c.confirm_by <= now + REMINDER_AHEAD,
        )
        .order_by(a.c.round_id, a.c.organisation_id, a.c.id)
    ).all()
    if not rows:
        return []
    from booking.notifications import Notifier

    mails = RoundMails(Notifier(conn))
    due = [
        row
        for row in rows
        if (published := mails.round(row.round_id).published_at) is not None
        and published <= row.confirm_by - REMINDER_AHEAD
    ]
    found = []
    for offer in due:
        for recipient in mails.applicants(offer.round_id, offer.organisation_id):
            found.append(
                mails.mail(
                    "offer_reminder",
                    f"offer-reminder:{offer.id}",
                    recipient,
                    offer.round_id,
                    offer.organisation_id,
                    slot=lambda language, offer=offer: mails.slot(offer, language),
                )
            )
    return found
