"""The demo's seasonal allocation rounds (API.md, "Seasonal allocation rounds"), so that a
newcomer finds the whole cycle: last autumn's round over the school gyms, published and
answered — its accepted offers are weekly series in the history — and next spring's, closed
for applications, with some 150 of them from Mikkeli's sports clubs and a proposal on the
staff grid (`/staff/rounds/{id}`), waiting for staff to adjust and publish.

Everything runs through the round use cases (booking.usecases.allocation), each at its
simulated `now` relative to the anchor week, with ids drawn from the seed: the same seed
and week give the same rounds. The clubs that accepted in the autumn meet the spring
round's `previous_season` criterion.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from booking.allocation.state import RoundState
from booking.clock import Clock, Ids
from booking.demo.catalogue import CATALOGUE, DemoPremises
from booking.demo.people import DEMO_DOMAIN, ORGANISATIONS, People
from booking.domain.accounts import OPERATOR
from booking.domain.commands import Actor
from booking.domain.errors import DomainError
from booking.privacy import current_vault
from booking.service import PremisesRepository
from booking.usecases import accounts as handlers
from booking.usecases import allocation as rounds
from booking.usecases.unit import Unit
from events.catalog import BookingPlaced
from events.slot import Slot
from events.sql import write_transaction
from events.store import Metadata

ZONE = ZoneInfo("Europe/Helsinki")
T = TypeVar("T")

GYMS = tuple(p for p in CATALOGUE if p.kind == "gym")
# The solver's wall-clock limit: generous, so that a loaded machine (CI, many tests at once)
# still reaches the same optimum and the same seed gives the same demo (a few seconds idle).
SOLVER_SECONDS = 900.0


@dataclass(frozen=True)
class Club:
    """A club that applies for gym time: `teams` are (purpose, age group, group size);
    `key` names an organisation of the history (booking.demo.people) or a club of its own."""

    key: str
    name: str
    district: str | None
    teams: tuple[tuple[str, str, int], ...]
    type: str = "association"


def _teams(spec: str) -> tuple[tuple[str, str, int], ...]:
    """ "Purpose:age group:size|…"."""
    found = []
    for part in spec.split("|"):
        purpose, age_group, size = part.split(":")
        found.append((purpose, age_group, int(size)))
    return tuple(found)


def _c(
    key: str, name: str, teams: str, district: str | None = None, type_: str = "association"
) -> Club:
    return Club(key, name, district, _teams(teams), type_)


# The history's gym users first (by their key), then clubs that only apply for season slots.
CLUBS: tuple[Club, ...] = (
    _c("palloilijat", "", "Futsal P2016:7-14:16|Futsal P2014:7-14:18|Futsal T2014:7-14:14|"
       "Futsal P2012:7-14:18|Futsal P2010:15-19:18|Futsal T2010:15-19:14|"
       "Edustus, oheisharjoitus:20-64:22|Futsal, harrastejoukkue:20-64:16|Futsal T2016:7-14:14|"
       "Futsal P2018:0-6:14"),
    _c("kampparit", "", "Bandy P2015, salitreeni:7-14:18|Bandy P2013, salitreeni:7-14:18|"
       "Bandy P2010, salitreeni:15-19:18|Ikämiesten sähly:20-64:14|"
       "Bandy T2014, salitreeni:7-14:14"),
    _c("kilpaveikot", "", "Yleisurheilukoulu 7–9 v:7-14:20|Yleisurheilukoulu 10–12 v:7-14:20|"
       "Yleisurheilu 13–15 v:7-14:16|Yleisurheilu, nuoret:15-19:14|Aikuisten kuntopiiri:20-64:20"),
    _c("mahti", "", "Salibandy P2016:7-14:18|Salibandy P2014:7-14:18|Salibandy T2014:7-14:16|"
       "Salibandy P2012:7-14:18|Salibandy T2012:7-14:16|Salibandy P2010:15-19:18|"
       "Salibandy T2009:15-19:16|Salibandy, naiset:20-64:18|Salibandy, miehet:20-64:20|"
       "Höntsäsäbä:mixed:20|Salibandy P2018:0-6:14|Salibandy T2016:7-14:14|"
       "Salibandy P2008:15-19:18"),
    _c("naisvoimistelijat", "", "Lasten jumppakoulu:0-6:16|Tyttöjen voimistelu:7-14:20|"
       "Kuntojumppa:20-64:25|Senioreiden tuolijumppa:65+:20"),
    _c("lentopallo", "", "Lentopallo, tytöt 13:7-14:14|Lentopallo, pojat 15:15-19:14|"
       "Lentopallo, naiset:20-64:14|Lentopallo, harrastesarja:20-64:16"),
    _c("ristiinan-urheilijat", "", "RU lentopallo:20-64:14|RU lasten liikuntakerho:7-14:20|"
       "RU iltakuntopiiri:20-64:18|RU sähly, nuoret:15-19:16"),
    _c("haukivuoren-kisa", "", "Kisan lasten liikuntakerho:7-14:18|Kisan kuntonyrkkeily:20-64:14|"
       "Kisan sählyvuoro:mixed:16"),
    _c("anttolan-urheilijat", "", "AU sählyvuoro:20-64:14|AU nuorten sähly:15-19:14|"
       "AU perheliikunta:mixed:20"),
    _c("tanssikoulu", "", "Lasten tanssitunti:0-6:14|Showtanssi, juniorit:7-14:18|"
       "Showtanssi, nuoret:15-19:16", type_="company"),
    _c("jooga", "", "Iltajooga:20-64:20|Seniorijooga:65+:16", type_="company"),
    _c("elakkeensaajat", "", "Eläkeläisten tuolijumppa:65+:25|Seniorisähly:65+:14"),
    _c("partio", "", "Sudenpentujen liikuntailta:7-14:20|Vaeltajien salivuoro:15-19:16"),
    _c("judo", "Mikkelin Judoseura ry", "Judo, lapset 5–6 v:0-6:14|Judo, juniorit:7-14:20|"
       "Judo, kilparyhmä:15-19:12|Judo, aikuiset:20-64:16|Judo, seniorit:65+:12"),
    _c("koripallo", "Mikkelin Koripalloseura ry", "Koripallo P2013:7-14:14|"
       "Koripallo T2012:7-14:12|Koripallo P2010:15-19:14|Koripallo, miehet:20-64:14|"
       "Koripallo, harraste:mixed:16|Koripallo T2010:15-19:12|Koripallo P2015:7-14:14"),
    _c("sulkapallo", "Mikkelin Sulkapalloseura ry", "Sulkapallo, juniorit:7-14:16|"
       "Sulkapallo, kilparyhmä:15-19:12|Sulkapallo, harrastajat:20-64:20|"
       "Sulkapallo, seniorit:65+:12|Sulkapallo, perhevuoro:mixed:16"),
    _c("taekwondo", "Mikkelin Taekwondo ry", "Taekwondo, lapset:7-14:18|"
       "Taekwondo, nuoret ja aikuiset:mixed:16"),
    _c("trampoliini", "Mikkelin Voimistelu- ja Trampoliiniseura ry",
       "Temppukoulu:0-6:16|Trampoliini, alkeet:7-14:14|Telinevoimistelu:7-14:16|"
       "Aikuisten akrobatia:20-64:12|Trampoliini, kilparyhmä:15-19:12"),
    _c("pingis", "Mikkelin Pöytätennisseura ry", "Pöytätennis, juniorit:7-14:12|"
       "Pöytätennis, aikuiset:mixed:14"),
    _c("rantakylan-urheilijat", "Rantakylän Urheilijat ry", "RaU sähly P2015:7-14:16|"
       "RaU sähly T2013:7-14:14|RaU perheliikunta:mixed:24|RaU kuntosähly:20-64:16|"
       "RaU sähly P2011:7-14:16|RaU naisten jumppa:20-64:20",
       "rantakylä"),
    _c("lahemaen-liikunta", "Lähemäen Liikunta ry", "Lasten liikuntakoulu:0-6:16|"
       "Naisten kuntopiiri:20-64:18|Lähemäen sähly:7-14:16|"
       "Lähemäen höntsäsähly:20-64:14", "lähemäki"),
    _c("urpolan-urheilijat", "Urpolan Urheilijat ry", "UU futsal P2013:7-14:16|"
       "UU höntsäfutsal:20-64:16|UU futsal T2015:7-14:14|UU lasten liikuntakerho:0-6:14", "urpola"),
    _c("tuppuralan-pallo", "Tuppuralan Pallo ry", "TuPa sähly T2014:7-14:16|"
       "TuPa lentopallo, harraste:mixed:14|TuPa sähly P2011:7-14:16", "tuppurala"),
    _c("launialan-liikunta", "Launialan Liikuntaseura ry", "Lasten temppukoulu:0-6:14|"
       "Kuntonyrkkeily:20-64:14|Launialan sähly:7-14:14", "launiala"),
    _c("otavan-into", "Otavan Into ry", "Into lasten liikuntakerho:7-14:18|"
       "Into aikuisten sähly:20-64:14", "otava"),
    _c("invalidit", "Mikkelin Seudun Invalidit ry", "Soveltava liikunta:mixed:14|"
       "Boccia:65+:12"),
    _c("sydanyhdistys", "Mikkelin Sydänyhdistys ry", "Sydänjumppa:65+:20"),
    _c("tanssiurheilu", "Mikkelin Tanssiurheiluseura ry", "Kilpatanssi, juniorit:7-14:14|"
       "Kilpatanssi, aikuiset:20-64:14"),
    _c("cheer", "Mikkelin Cheerleaderit ry", "Cheer minit:0-6:16|Cheer juniorit:7-14:18|"
       "Cheer seniorit:15-19:16|Cheer aikuiset:20-64:14"),
    _c("nyrkkeily", "Mikkelin Nyrkkeilyseura ry", "Nyrkkeily, nuoret:15-19:14|"
       "Kuntonyrkkeily, aikuiset:20-64:18"),
    _c("kendo", "Mikkelin Kendoseura ry", "Kendo:mixed:12"),
    _c("futsal-club", "Mikkelin Futsal Club ry", "Futsal, naiset:20-64:14|"
       "Futsal T2012:7-14:14|Futsal P2009:15-19:16|Futsal T2016:7-14:12"),
    _c("kalevankankaan-urheilijat", "Kalevankankaan Urheilijat ry", "KaU sähly P2017:7-14:14|"
       "KaU perhesähly:mixed:18|KaU sähly T2013:7-14:14|KaU kuntojumppa:20-64:16", "kalevankangas"),
    _c("ringette", "Mikkelin Ringette ry", "Ringette, oheisharjoitus juniorit:7-14:18|"
       "Ringette, naisten oheisharjoitus:20-64:14"),
    _c("frisbee", "Mikkelin Frisbeeklubi ry", "Ultimate, sisäkausi:mixed:16"),
    _c("parkour", "Mikkelin Seudun Parkour ry", "Parkour, nuoret:15-19:14|Parkour, lapset:7-14:14"),
    _c("sahlyveikot", "Saimaan Sählyveikot ry", "Sähly, miehet:20-64:16|Sähly, veteraanit:65+:12|"
       "Sähly, juniorit:7-14:16|Sähly, nuoret:15-19:16"),
    _c("kuntoliikkujat", "Mikkelin Kuntoliikkujat ry", "Kuntosähly:20-64:18|"
       "Senioreiden kuntojumppa:65+:20|Kuntosähly, naiset:20-64:14"),
    _c("ristiinan-pallo", "Ristiinan Pallo ry", "RiPa futsal P2014:7-14:16|"
       "RiPa naisten jumppa:20-64:16|RiPa sähly T2013:7-14:14", "ristiina"),
    _c("haukivuoren-nuoret", "Haukivuoren Nuorisoseura ry", "Nuorten salivuoro:15-19:14",
       "haukivuori"),
)  # fmt: skip

# When each age group wants its slots: (weekdays, from, to) primary, then secondary.
WISHES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "0-6": (("sat sun", "09:00", "12:00"), ("mon tue wed thu", "17:00", "18:30")),
    "7-14": (("mon tue wed thu", "17:00", "19:30"), ("fri sat", "17:00", "20:00")),
    "15-19": (("mon tue wed thu", "18:30", "21:00"), ("fri sun", "17:00", "21:00")),
    "20-64": (("mon tue wed thu", "19:30", "22:00"), ("sun", "12:00", "21:00")),
    "65+": (("sat sun", "10:00", "14:00"), ("mon wed fri", "17:00", "18:30")),
    "mixed": (("fri sun", "17:00", "21:00"), ("sat", "12:00", "18:00")),
}
DURATIONS = {"0-6": 60, "7-14": 90, "15-19": 90, "20-64": 90, "65+": 60, "mixed": 120}


@dataclass
class RoundsDone:
    """What the demo's rounds did."""

    past_id: str = ""
    current_id: str = ""
    past_applications: int = 0
    current_applications: int = 0
    refused: int = 0  # applications or answers the rules refused (none expected)
    why: list[str] = field(default_factory=list)  # their reasons
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    unallocated: int = 0  # sections of the current round the proposal left out
    booked: int = 0  # series occurrences placed by accepted offers
    # (premises, organisation index in ORGANISATIONS or None, slot) the series hold.
    reserved: list[tuple[str, int | None, Slot]] = field(default_factory=list)


def _local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), ZONE)


class DemoRounds:
    """Makes the clubs of their own, then runs the autumn round (`past`) and the spring
    round (`current`) around the anchor Monday."""

    def __init__(
        self,
        engine: Engine,
        repository: PremisesRepository,
        people: People,
        anchor: date,
        seed: int,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self.engine, self.repository, self.people = engine, repository, people
        self.anchor, self.clock, self.ids = anchor, clock, ids
        self.rng = random.Random(seed * 31 + 16)
        self.done = RoundsDone()
        self.past_round = RoundState("")  # the autumn round, once `past` has made it
        index = {o.key: n for n, o in enumerate(ORGANISATIONS)}
        self.history_index: dict[str, int | None] = {c.key: index.get(c.key) for c in CLUBS}
        self.members: dict[str, Actor] = {}
        self.opening: dict[str, dict[str, list[list[str]]]] = {
            p.premises_id: p.profile["opening_hours"] for p in GYMS
        }

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with write_transaction(self.engine) as conn:
            return work(conn)

    def _unit(self, conn: Connection, actor: Actor) -> Unit:
        metadata = Metadata(actor=actor.user_id, correlation_id="demo")
        return Unit(conn, self.repository, current_vault(), metadata, self.clock, notify=False)

    # --- the clubs ------------------------------------------------------------------------

    def make_clubs(self) -> None:
        """Each club's booker: the history's own, or a new organisation and its booker."""

        def work(conn: Connection) -> None:
            vault, metadata = current_vault(), Metadata(actor=None, correlation_id="demo")
            for club in CLUBS:
                known = self.history_index[club.key]
                if known is not None:
                    self.members[club.key] = self.people.bookers[known]
                    continue
                given = handlers.NewOrganisation(club.name, club.type, None)
                made = handlers.create_organisation(
                    conn, OPERATOR, given, self.clock(), self.ids(), metadata
                )
                user = handlers.create_user(
                    conn,
                    vault,
                    OPERATOR,
                    handlers.NewAccount(
                        email=f"{club.key}@{DEMO_DOMAIN}",
                        name=f"{club.name}, seuran yhteyshenkilö",
                        role="booker",
                        organisation_id=made.id,
                    ),
                    self.clock(),
                    self.ids(),
                    metadata,
                )
                self.members[club.key] = Actor(user.user_id, "booker", made.id)

        self._transaction(work)

    # --- applications ---------------------------------------------------------------------

    def _gyms_for(self, club: Club, size: int) -> list[str]:
        """Up to three gyms, most wanted first: the club's own district's, else central ones;
        a part of a divided hall for a small group, the whole for a big one."""
        home = [p for p in GYMS if p.profile["district"] == club.district]
        central = [p for p in GYMS if p.profile["district"] not in (
            "ristiina", "haukivuori", "otava", "anttola")]  # fmt: skip
        pool = home + [p for p in central if p not in home] if home else central
        fitting = [p for p in pool if p.profile["capacity"] >= size]
        parts = [p for p in fitting if self._is_part(p)]
        wholes = [p for p in fitting if not self._is_part(p)]
        small = size <= 18 and parts
        first = (parts if small else wholes) or fitting
        ranked: list[DemoPremises] = []
        for candidates in (first[: 2 if home else 6], fitting):
            for p in self.rng.sample(candidates, len(candidates)):
                if p not in ranked and len(ranked) < 3:
                    ranked.append(p)
            if len(ranked) >= 2:
                break
        if home:  # the club's own gym first
            ranked.sort(key=lambda p: p.profile["district"] != club.district)
        return [p.premises_id for p in ranked]

    @staticmethod
    def _is_part(p: DemoPremises) -> bool:
        """A part of a divided hall occupies the one space named after it."""
        return bool(p.profile.get("spaces") == [p.premises_id])

    def _times(self, age_group: str, premises: list[str], minutes: int) -> list[dict[str, Any]]:
        """The age group's windows, on days the first wished gym is open for them."""
        first = self.opening[premises[0]]
        found = []
        for (days, start, end), priority in zip(
            WISHES[age_group], ("primary", "secondary"), strict=True
        ):
            for weekday in days.split():
                windows = first.get(weekday) or ()
                fits = any(
                    o <= start and end <= c and _minutes(end) - _minutes(start) >= minutes
                    for o, c in windows
                )
                if fits:
                    found.append(
                        {"weekday": weekday, "from": start, "to": end, "priority": priority}
                    )
        return found

    def application(self, club: Club, team: tuple[str, str, int]) -> dict[str, Any] | None:
        purpose, age_group, size = team
        premises = self._gyms_for(club, size)
        minutes = DURATIONS[age_group]
        times = self._times(age_group, premises, minutes)
        if not premises or not times:
            return None
        sections = [
            {
                "name": "Harjoitukset",
                "slots_per_week": 1
                if age_group in ("0-6", "65+", "mixed")
                else self.rng.choice((1, 2, 2, 3)),
                "duration_minutes": minutes,
                "premises": premises,
                "times": times,
            }
        ]
        if age_group in ("7-14", "15-19") and self.rng.random() < 0.3:
            weekend = [
                t for t in self._times("mixed", premises, 90) if t["priority"] == "secondary"
            ]
            if weekend:
                sections.append(
                    {
                        "name": "Pelivuoro",
                        "slots_per_week": 1,
                        "duration_minutes": 90,
                        "premises": premises,
                        "times": [{**t, "priority": "primary"} for t in weekend],
                    }
                )
        return {
            "purpose": purpose,
            "age_group": age_group,
            "group_size": size,
            "terms_accepted": True,
            "sections": sections,
        }

    # --- the rounds -----------------------------------------------------------------------

    def _open(
        self, conn: Connection, name: dict[str, str], season: tuple[date, date],
        window: tuple[datetime, datetime], criteria: list[dict[str, Any]], now: datetime,
    ) -> str:  # fmt: skip
        round_id = self._id()
        body = {
            "name": name,
            "season_start": season[0],
            "season_end": season[1],
            "applications_open": window[0],
            "applications_close": window[1],
            "premises": [p.premises_id for p in GYMS],
            "criteria": criteria,
            "confirm_days": 14,
        }
        staff = self.people.staff
        rounds.open_round(self._unit(conn, staff), staff, round_id, body, now)
        return round_id

    def _apply(
        self, conn: Connection, round_id: str, share: float, window: tuple[datetime, datetime]
    ) -> int:
        """Each club's teams apply (a `share` of them), at times spread over the window."""
        span = (window[1] - window[0]).total_seconds()
        wanted = []
        for club in CLUBS:
            for team in club.teams:
                if self.rng.random() < share:
                    at = window[0] + timedelta(seconds=span * (0.05 + 0.9 * self.rng.random()))
                    wanted.append((at, club, team))
        wanted.sort(key=lambda w: w[0])
        applied = 0
        for at, club, team in wanted:
            body = self.application(club, team)
            if body is None:
                continue
            actor = self.members[club.key]
            savepoint = conn.begin_nested()
            try:
                rounds.submit_application(
                    self._unit(conn, actor),
                    actor,
                    round_id,
                    self._id(),
                    actor.organisation_id or "",
                    body,
                    at,
                )
            except DomainError as error:
                savepoint.rollback()
                self.done.refused += 1
                self.done.why.append(f"{club.key} {team[0]}: {error}")
                continue
            savepoint.commit()
            applied += 1
        return applied

    def past(self) -> RoundsDone:
        """Last autumn's round: applied for in spring, published at midsummer, answered;
        its accepted offers are weekly series over the autumn (`reserved` for the history)."""
        monday = self.anchor
        season = (monday - timedelta(weeks=14), monday + timedelta(weeks=4, days=-1))
        window = (_local(monday - timedelta(weeks=30), 8), _local(monday - timedelta(weeks=24), 16))
        year = season[0].year
        name = {
            "fi": f"Syyskausi {year}",
            "sv": f"Höstsäsongen {year}",
            "en": f"Autumn season {year}",
        }
        criteria = [
            {"key": "age_group", "in": ["0-6", "7-14", "15-19"]},
            {"key": "organisation_type", "in": ["association"]},
        ]
        staff = self.people.staff
        proposed_at = _local(monday - timedelta(weeks=22), 9)
        published_at = _local(monday - timedelta(weeks=21), 10)

        def setup(conn: Connection) -> str:
            round_id = self._open(
                conn, name, season, window, criteria, window[0] - timedelta(days=14)
            )
            self.done.past_applications = self._apply(conn, round_id, 0.55, window)
            unit = self._unit(conn, staff)
            rounds.make_proposal(unit, staff, round_id, proposed_at, SOLVER_SECONDS)
            state = rounds.publish(unit, staff, round_id, published_at)
            self.done.offers += sum(
                1 for a in state.allocations.values() if a["status"] == "offered"
            )
            return round_id

        round_id = self._transaction(setup)
        self.done.past_id = round_id
        # Loaded once and kept current by each answer (`run_round_command` folds what it
        # records into it): reloading the round's growing stream twice for every answer was
        # a fifth of the demo's load.
        self.past_round = self._transaction(lambda conn: rounds.load_round(conn, round_id))
        offers = dict(self.past_round.allocations)
        club_of = {self.members[c.key].organisation_id: c for c in CLUBS}
        for offer_id, offer in sorted(offers.items()):
            club = club_of[offer["organisation_id"]]
            actor = self.members[club.key]
            at = published_at + timedelta(days=1 + self.rng.random() * 10)
            accept = self.rng.random() < 0.92
            self._transaction(partial(self._answer, actor=actor, offer_id=offer_id,
                                      accept=accept, at=at, club=club))  # fmt: skip
        return self.done

    def _answer(
        self, conn: Connection, actor: Actor, offer_id: str, accept: bool, at: datetime, club: Club
    ) -> None:
        """The club's booker answers. A club over a gym's weekly quota (the quota binds a
        booker's own bookings) cannot book the series itself: staff accept on its behalf,
        as the city does for the season slots it allocated."""
        series_id = str(uuid.uuid5(uuid.UUID(offer_id), "demo-series"))
        if not accept:
            reason = "Joukkue ei tarvitse vuoroa tällä kaudella."
            rounds.answer_offer(
                self._unit(conn, actor),
                actor,
                offer_id,
                False,
                series_id,
                reason,
                at,
                self.past_round,
            )
            self.done.declined += 1
            return
        # Tried first as a dry run, so that nothing is rolled back (on PostgreSQL a rolled
        # back append still uses up log positions, and the same seed must give the same log).
        state = self.past_round
        plan = rounds.preview_series(
            conn, self.repository, state, state.allocations[offer_id], actor, series_id, at
        )
        answering = actor if plan.booked else self.people.staff
        try:
            _, placed = rounds.answer_offer(
                self._unit(conn, answering), answering, offer_id, True, series_id, "", at, state
            )
        except DomainError as error:
            raise RuntimeError(f"{club.key} could not accept {offer_id}: {error}") from error
        self.done.accepted += 1
        for recorded in placed:
            event = recorded.to_event()
            if isinstance(event, BookingPlaced):
                self.done.booked += 1
                slot = Slot(event.start, event.end)
                self.done.reserved.append((event.premises_id, self.history_index[club.key], slot))

    def current(self) -> RoundsDone:
        """Next spring's round: applications closed last week, the proposal made; staff
        adjust and publish it in `/staff/rounds/{id}`."""
        monday = self.anchor
        season = (monday + timedelta(weeks=7), monday + timedelta(weeks=27, days=-1))
        window = (_local(monday - timedelta(weeks=9), 8), _local(monday - timedelta(days=7), 16))
        year = season[0].year
        name = {
            "fi": f"Kevätkausi {year}",
            "sv": f"Vårsäsongen {year}",
            "en": f"Spring season {year}",
        }
        criteria: list[dict[str, Any]] = [
            {"key": "age_group", "in": ["0-6", "7-14", "15-19"]},
            {"key": "previous_season"},
            {"key": "organisation_type", "in": ["association"]},
        ]
        staff = self.people.staff

        def work(conn: Connection) -> str:
            round_id = self._open(
                conn, name, season, window, criteria, window[0] - timedelta(days=14)
            )
            self.done.current_applications = self._apply(conn, round_id, 1.0, window)
            state = rounds.make_proposal(
                self._unit(conn, staff),
                staff,
                round_id,
                _local(monday - timedelta(days=6), 9),
                SOLVER_SECONDS,
            )
            self.done.unallocated = len(state.unallocated)
            return round_id

        self.done.current_id = self._transaction(work)
        return self.done


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)
