"""Who books in the demo: Mikkeli associations, companies and other bodies, their bookers, and
the demo accounts (admin, staff, analyst, a booker, a resident) with known passwords.

Each organisation says which kinds of premises it books and, for village and district
associations, its home district, so that a gym is booked by sports clubs and a village hall
mostly by its own village.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from booking.clock import Clock, Ids, random_ids, system_clock
from booking.domain.accounts import OPERATOR
from booking.domain.commands import Actor
from booking.privacy import current_vault
from booking.usecases import accounts as handlers
from events.store import Metadata

ALL_KINDS = ("library", "hall", "youth", "gym", "village_hall", "meeting_place")


@dataclass(frozen=True)
class DemoOrganisation:
    key: str  # the local part of its booker's demo e-mail address
    name: str
    type: str  # association | company | other
    kinds: tuple[str, ...]  # the kinds of premises it books
    district: str | None  # home district; None: city-wide
    activity: float  # how much it books, relative to others
    titles: tuple[str, ...]
    language: str = "fi"
    business_id: str | None = None


def _o(
    key: str,
    name: str,
    kinds: str,
    activity: float,
    titles: str,
    district: str | None = None,
    type_: str = "association",
    business_id: str | None = None,
    language: str = "fi",
) -> DemoOrganisation:
    return DemoOrganisation(
        key,
        name,
        type_,
        tuple(kinds.split()),
        district,
        activity,
        tuple(titles.split("|")),
        language,
        business_id,
    )


def business_id(body: str) -> str:
    """A Finnish business id (Y-tunnus) with its check digit, for demo companies."""
    remainder = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return f"{body}-{0 if remainder == 0 else 11 - remainder}"


ORGANISATIONS: tuple[DemoOrganisation, ...] = (
    _o("palloilijat", "Mikkelin Palloilijat ry", "gym", 3.0,
       "MP P11 futsal|MP T13 salitreeni|Junioreiden talviharjoitus|Edustuksen oheisharjoitus"),
    _o("kampparit", "Mikkelin Kampparit ry", "gym", 2.0,
       "Bandyjuniorit: salitreeni|Kampparien oheisharjoitus|Ikämiesten sählyvuoro"),
    _o("kilpaveikot", "Mikkelin Kilpa-Veikot ry", "gym", 2.0,
       "Yleisurheilukoulu|Aikuisten kuntopiiri|Hyppyharjoitus"),
    _o("mahti", "Salibandyseura Mikkelin Mahti ry", "gym", 3.0,
       "Salibandy, naiset|Salibandy, pojat 2014|Höntsäsäbä|Salibandy, tytöt 2012"),
    _o("naisvoimistelijat", "Mikkelin Naisvoimistelijat ry", "gym meeting_place", 1.5,
       "Lasten jumppakoulu|Kuntojumppa|Senioreiden tuolijumppa"),
    _o("lentopallo", "Mikkelin Lentopalloilijat ry", "gym", 1.5,
       "Lentopallo, harrastesarja|Lentopallo, juniorit|Beach-kauden oheisharjoitus"),
    _o("ristiinan-urheilijat", "Ristiinan Urheilijat ry", "gym", 1.5,
       "RU lentopallo|Iltakuntopiiri|Lasten liikuntakerho", "ristiina"),
    _o("haukivuoren-kisa", "Haukivuoren Kisa ry", "gym village_hall", 1.2,
       "Kisan salivuoro|Lasten liikuntakerho|Kuntonyrkkeily", "haukivuori"),
    _o("anttolan-urheilijat", "Anttolan Urheilijat ry", "gym", 1.0,
       "Sählyvuoro|Kuntopiiri", "anttola"),
    _o("tanssikoulu", "Saimaan Tanssikoulu Oy", "gym village_hall meeting_place", 1.5,
       "Lasten tanssitunti|Lavatanssikurssi|Showtanssi", type_="company",
       business_id=business_id("3124567")),
    _o("jooga", "Joogastudio Mielenrauha Oy", "gym library meeting_place", 1.0,
       "Aamujooga|Iltajooga|Palauttava jooga", type_="company",
       business_id=business_id("2987431")),
    _o("anttolan-kylayhdistys", "Anttolan kyläyhdistys ry", "village_hall library gym", 1.0,
       "Kyläyhdistyksen hallituksen kokous|Kylätanssit|Joulumyyjäiset|Kesäjuhla", "anttola"),
    _o("haukivuoren-kylayhdistys", "Haukivuoren kyläyhdistys ry", "village_hall library", 1.0,
       "Kyläkokous|Haukivuoren markkinat|Bingo-ilta|Juhannustanssit", "haukivuori"),
    _o("ristiina-seura", "Ristiina-Seura ry", "village_hall library", 1.0,
       "Kotiseutuilta|Pien-Saimaan päivät|Hallituksen kokous", "ristiina"),
    _o("suomenniemen-kylayhdistys", "Suomenniemen kyläyhdistys ry", "village_hall library", 1.0,
       "Kyläkahvila|Kylätoimikunnan kokous|Suomenniemen kesäpäivät", "suomenniemi"),
    _o("otavan-kylayhdistys", "Otavan kyläyhdistys ry", "village_hall library gym", 1.0,
       "Kyläilta|Otavan markkinat|Talkoiden suunnittelu", "otava"),
    _o("pitkajarven-kylayhdistys", "Pitkäjärven kyläyhdistys ry", "village_hall", 0.8,
       "Kyläsauna-ilta|Kyläkokous|Pikkujoulut", "pitkäjärvi"),
    _o("nuorisoseura", "Ristiinan Nuorisoseura ry", "village_hall youth", 1.0,
       "Teatteriharjoitus|Nuorisoseuran tanssit|Kesäteatterin ensi-ilta", "ristiina"),
    _o("martat", "Mikkelin Marttayhdistys ry", "library meeting_place village_hall", 1.0,
       "Marttailta|Sienikurssi|Leivontakurssi"),
    _o("elakkeensaajat", "Mikkelin Eläkkeensaajat ry", "library meeting_place gym", 1.5,
       "Kerhotapaaminen|Tuolijumppa|Muistelupiiri|Bingo"),
    _o("shakkikerho", "Mikkelin Shakkikerho ry", "library meeting_place", 1.5,
       "Shakki-ilta|Pikashakkiturnaus|Junioreiden shakkikerho"),
    _o("kamarikuoro", "Mikkelin Kamarikuoro ry", "hall library", 1.0,
       "Kuoroharjoitus|Stemmaharjoitus|Joulukonsertti"),
    _o("taideyhdistys", "Mikkelin Taideyhdistys ry", "hall library meeting_place", 0.8,
       "Taiteilijatapaaminen|Kuvataidekurssi|Näyttelyn avajaiset"),
    _o("kirjoittajat", "Mikkelin Seudun Kirjoittajat ry", "library", 0.8,
       "Kirjoituspiiri|Runoilta|Kirjoittajakurssi"),
    _o("kameraseura", "Kameraseura Mikkeli ry", "library meeting_place", 0.7,
       "Kuvailta|Kuvankäsittelyn työpaja"),
    _o("nakovammaiset", "Mikkelin Seudun Näkövammaiset ry", "library meeting_place", 0.6,
       "Vertaistukiryhmä|Äänikirjapiiri|Jäsenilta"),
    _o("mll", "MLL:n Mikkelin yhdistys ry", "library meeting_place youth", 1.2,
       "Perhekahvila|Vauvaryhmä|Isä-lapsi-kerho"),
    _o("partio", "Mikkelin Metsäveikot ry", "youth gym village_hall meeting_place", 1.0,
       "Partiokokous|Sudenpentujen kokous|Johtajakoulutus|Partion kevätjuhla"),
    _o("4h", "Mikkelin 4H-yhdistys ry", "youth meeting_place", 0.8,
       "Kokkikerho|Askartelukerho|Nuorten työvalmennus"),
    _o("saro", "Nuorten bändiyhdistys Särö ry", "youth", 1.2,
       "Bändiharjoitus|Keikka-ilta|Open mic"),
    _o("lautapelaajat", "Mikkelin Lautapelaajat ry", "library youth meeting_place", 1.2,
       "Lautapeli-ilta|Roolipelikampanja|Korttipeliturnaus"),
    _o("urpola-peitsari", "Urpola-Peitsarin asukasyhdistys ry", "meeting_place library", 1.0,
       "Asukasilta|Kirpputori|Pihatalkoiden suunnittelu", "urpola"),
    _o("kalevankangas", "Kalevankankaan Kyläyhdistys ry", "meeting_place gym", 0.8,
       "Asukaskahvila|Hallituksen kokous", "kalevankangas"),
    _o("tuukkala", "Tuukkalan Omakotiyhdistys ry", "meeting_place", 0.7,
       "Omakotiyhdistyksen kokous|Puutarhailta", "tuukkala"),
    _o("international", "Mikkeli International Club ry", "library meeting_place", 0.8,
       "Language café|Board games night|Newcomers' meetup", language="en"),
    _o("kaiku", "Kulttuuritoimisto Kaiku Oy", "hall meeting_place library", 0.8,
       "Yleisötilaisuus|Työpaja|Kirjailijavierailu", type_="company",
       business_id=business_id("2456781")),
    _o("taitoakatemia", "Savon Taitoakatemia Oy", "library", 0.8,
       "Koulutustilaisuus|Tiimipalaveri|Asiakastilaisuus", type_="company",
       business_id=business_id("3012345")),
    _o("seurakunta", "Mikkelin tuomiokirkkoseurakunta", "village_hall youth meeting_place", 0.8,
       "Nuorten ilta|Diakonian kahvila|Rippikoulun tapaaminen", type_="other"),
    _o("nuorisovaltuusto", "Mikkelin nuorisovaltuusto", "library youth meeting_place", 0.6,
       "Nuorisovaltuuston kokous|Nuorten vaikuttamisilta", type_="other"),
    _o("neuvostot", "Mikkelin vanhus- ja vammaisneuvosto", "library meeting_place", 0.4,
       "Neuvoston kokous|Kuulemistilaisuus", type_="other"),
    _o("perhekeskus", "Etelä-Savon hyvinvointialue, perhekeskus", "meeting_place library", 0.6,
       "Neuvolan vertaisryhmä|Perhevalmennus", type_="other"),
)  # fmt: skip

FIRST_NAMES = (
    "Aino", "Eero", "Helmi", "Juha", "Kaisa", "Lauri", "Maija", "Mikko", "Noora", "Olli",
    "Pirjo", "Risto", "Sanna", "Tapio", "Ulla", "Veikko", "Elina", "Antti", "Hanna", "Jari",
)  # fmt: skip
LAST_NAMES = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Savolainen", "Tuominen", "Pesonen", "Hyvönen",
)  # fmt: skip

DEMO_DOMAIN = "demo.mikkeli.fi"


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str
    user_id: str
    token: str
    organisation: str | None = None


@dataclass
class People:
    organisation_ids: list[str]  # in the order of ORGANISATIONS
    bookers: list[Actor]  # the booker of each organisation, same order
    staff: Actor
    accounts: list[DemoAccount]


def _person(index: int) -> str:
    return f"{FIRST_NAMES[index % len(FIRST_NAMES)]} {LAST_NAMES[index * 7 % len(LAST_NAMES)]}"


def create(conn: Connection, clock: Clock = system_clock, ids: Ids = random_ids) -> People:
    """Every demo organisation with one booker each, and the demo accounts, made by the
    account handlers as the operator would (times from `clock`, ids from `ids`)."""
    organisation_ids: list[str] = []
    bookers: list[Actor] = []
    demo_accounts: list[DemoAccount] = []
    vault, metadata = current_vault(), Metadata(actor=None, correlation_id="demo")

    def new_user(given: handlers.NewAccount) -> handlers.UserCreated:
        return handlers.create_user(conn, vault, OPERATOR, given, clock(), ids(), metadata)

    def account(role: str, local: str, password: str, organisation: int | None) -> Actor:
        organisation_id = None if organisation is None else organisation_ids[organisation]
        created = new_user(
            handlers.NewAccount(
                email=f"{local}@{DEMO_DOMAIN}",
                name=f"Demo {role}",
                role=role,
                organisation_id=organisation_id,
                password=password,
            )
        )
        demo_accounts.append(
            DemoAccount(
                role,
                f"{local}@{DEMO_DOMAIN}",
                password,
                created.user_id,
                created.token,
                None if organisation is None else ORGANISATIONS[organisation].name,
            )
        )
        return Actor(created.user_id, role, organisation_id)

    for index, org in enumerate(ORGANISATIONS):
        given = handlers.NewOrganisation(org.name, org.type, org.business_id)
        made = handlers.create_organisation(conn, OPERATOR, given, clock(), ids(), metadata)
        organisation_ids.append(made.id)
        if index == 0:
            # The first club's booker is the demo booker, so its bookings can be tried out.
            bookers.append(account("booker", "booker", "demo-booker", 0))
            continue
        created = new_user(
            handlers.NewAccount(
                email=f"{org.key}@{DEMO_DOMAIN}",
                name=_person(index),
                role="booker",
                organisation_id=organisation_ids[-1],
                language=org.language,
            )
        )
        bookers.append(Actor(created.user_id, "booker", organisation_ids[-1]))
    staff = account("staff", "staff", "demo-staff", None)
    account("admin", "admin", "demo-admin", None)
    account("analyst", "analyst", "demo-analyst", None)
    account("resident", "asukas", "demo-resident", None)
    return People(organisation_ids, bookers, staff, demo_accounts)
