"""The Mikkeli demo catalogue: 37 premises of the city, in the shape POST /api/v1/premises takes.

Each premises belongs to a kind (library room, youth centre, school gym, village hall, open
meeting place) that gives its usual opening hours, rules, equipment and terms; the entries
below only say what differs. Addresses and details are plausible demo data, not the city's
register.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours(spec: str) -> dict[str, list[list[str]]]:
    """`"mon-thu 08:00-20:00; sat 10:00-16:00"` → opening hours for every weekday."""
    week: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    for part in spec.split(";"):
        days, span = part.split()
        first, _, last = days.partition("-")
        opens, closes = span.split("-")
        for day in DAYS[DAYS.index(first) : DAYS.index(last or first) + 1]:
            week[day].append([opens, closes])
    return week


@dataclass(frozen=True)
class Kind:
    name: str
    opening_hours: str
    rules: dict[str, Any]
    accessibility: tuple[str, ...]
    equipment: tuple[str, ...]
    free_use_conditions: tuple[str, str] | None  # (fi, en); None: the premises is paid for
    description: tuple[str, str]  # (fi, en)


STEP_FREE_WITH_LOOP = ("step_free_access", "accessible_toilet", "induction_loop", "lift")
FREE_OPEN_USE = (
    "Maksuton avoimeen, ei-kaupalliseen toimintaan.",
    "Free of charge for open, non-commercial activities.",
)

LIBRARY = Kind(
    "library",
    "mon-thu 08:00-20:00; fri 08:00-18:00; sat 10:00-16:00",
    {
        "min_duration_minutes": 30,
        "max_duration_minutes": 240,
        "min_notice_minutes": 60,
        "buffer_minutes": 15,
        "popup_allowed": True,
        "popup_max_duration_minutes": 120,
        "quota_hours_per_week": 8,
    },
    STEP_FREE_WITH_LOOP,
    ("projector", "whiteboard", "wifi"),
    FREE_OPEN_USE,
    (
        "Kirjaston kokous- ja ryhmätila yhdistysten ja opintopiirien käyttöön.",
        "A library meeting and group room for associations and study circles.",
    ),
)
HALL = Kind(
    "hall",
    "mon-thu 08:00-20:00; fri 08:00-18:00; sat 10:00-16:00",
    {
        "min_duration_minutes": 60,
        "max_duration_minutes": 480,
        "min_notice_minutes": 2 * 1440,
        "buffer_minutes": 30,
        "requires_approval": True,
        "cancellation_deadline_minutes": 3 * 1440,
    },
    STEP_FREE_WITH_LOOP,
    ("projector", "screen", "sound_system", "microphone", "piano", "stage", "wifi"),
    (
        "Maksuton avoimiin, ei-kaupallisiin tilaisuuksiin; kirjasto hyväksyy varaukset.",
        "Free of charge for open, non-commercial events; the library approves bookings.",
    ),
    (
        "Pääkirjaston tapahtumasali esityksiin, luentoihin ja yleisötilaisuuksiin.",
        "The main library's event hall for performances, talks and public events.",
    ),
)
YOUTH = Kind(
    "youth",
    "tue-thu 14:00-21:00; fri-sat 18:00-02:00",
    {
        "min_duration_minutes": 60,
        "max_duration_minutes": 300,
        "min_notice_minutes": 120,
        "max_advance_days": 90,
        "buffer_minutes": 15,
        "requires_approval": True,
        "popup_allowed": True,
        "popup_max_duration_minutes": 180,
    },
    ("step_free_access", "accessible_toilet"),
    ("sound_system", "game_console", "pool_table", "kitchen", "wifi"),
    (
        "Maksuton nuorten omaan toimintaan ja nuorisoyhdistyksille; nuoriso-ohjaaja hyväksyy.",
        "Free of charge for young people's own activities and youth associations; "
        "a youth worker approves.",
    ),
    (
        "Nuorisotila iltatapahtumiin, kerhoihin ja bändiharjoituksiin; viikonloppuisin auki yöhön.",
        "A youth centre for evening events, clubs and band practice; open late at weekends.",
    ),
)
GYM = Kind(
    "gym",
    "mon-fri 17:00-22:00; sat-sun 09:00-21:00",
    {
        "min_duration_minutes": 60,
        "max_duration_minutes": 180,
        "min_notice_minutes": 1440,
        "buffer_minutes": 0,
        "cancellation_deadline_minutes": 3 * 1440,
    },
    ("step_free_access", "accessible_toilet"),
    ("changing_rooms", "showers", "floorball_goals", "volleyball_net", "gym_mats"),
    None,
    (
        "Koulun liikuntasali iltaisin ja viikonloppuisin seurojen ja harrasteryhmien käyttöön.",
        "A school gym for clubs and hobby groups on evenings and at weekends.",
    ),
)
VILLAGE_HALL = Kind(
    "village_hall",
    "mon-thu 08:00-23:00; fri-sat 08:00-02:00; sun 08:00-22:00",
    {
        "min_duration_minutes": 120,
        "max_duration_minutes": 720,
        "min_notice_minutes": 2 * 1440,
        "max_advance_days": 365,
        "buffer_minutes": 60,
        "requires_approval": True,
        "cancellation_deadline_minutes": 7 * 1440,
    },
    ("accessible_parking",),
    ("kitchen", "coffee_machine", "chairs_tables", "stage", "sound_system", "piano"),
    None,
    (
        "Kylän seurantalo juhliin, kokouksiin, tansseihin ja kylätapahtumiin.",
        "The village's community hall for parties, meetings, dances and village events.",
    ),
)
MEETING_PLACE = Kind(
    "meeting_place",
    "mon-fri 09:00-20:00; sat-sun 10:00-18:00",
    {
        "min_duration_minutes": 30,
        "max_duration_minutes": 180,
        "min_notice_minutes": 30,
        "max_advance_days": 60,
        "bookable_by": "anyone",
        "popup_allowed": True,
        "popup_auto_approve": True,
        "popup_max_duration_minutes": 180,
        "cancellation_deadline_minutes": 120,
    },
    ("step_free_access", "accessible_toilet"),
    ("chairs_tables", "coffee_machine", "wifi"),
    (
        "Maksuton kaikille; myynti ja mainostaminen vain kaupungin luvalla.",
        "Free of charge for everyone; selling or advertising only with the city's permission.",
    ),
    (
        "Avoin kohtaamispaikka asukkaiden tapaamisiin, pop up -toimintaan ja pieniin "
        "tilaisuuksiin.",
        "An open meeting place for residents' get-togethers, pop-up activity and small events.",
    ),
)

KINDS = {k.name: k for k in (LIBRARY, HALL, YOUTH, GYM, VILLAGE_HALL, MEETING_PLACE)}


@dataclass(frozen=True)
class DemoPremises:
    premises_id: str
    kind: str
    profile: dict[str, Any]  # what RegisterPremises takes, as the API builds it


def _premises(
    kind: Kind,
    premises_id: str,
    fi: str,
    en: str,
    address: str,
    district: str,
    capacity: int,
    *,
    price_cents: int | None = None,
    more_equipment: tuple[str, ...] = (),
    accessibility: tuple[str, ...] | None = None,
    opening: str | None = None,
    rules: dict[str, Any] | None = None,
    free_use: tuple[str, str] | None = None,
) -> DemoPremises:
    conditions = free_use or kind.free_use_conditions
    profile = {
        "name": {"fi": fi, "en": en},
        "description": {"fi": kind.description[0], "en": kind.description[1]},
        "address": address,
        "district": district,
        "capacity": capacity,
        "free_of_charge": conditions is not None,
        "hourly_price_cents": None if conditions else price_cents,
        "free_use_conditions": {"fi": conditions[0], "en": conditions[1]} if conditions else {},
        "accessibility": list(kind.accessibility if accessibility is None else accessibility),
        "equipment": [*kind.equipment, *more_equipment],
        "timezone": "Europe/Helsinki",
        "opening_hours": hours(opening or kind.opening_hours),
        "rules": {**kind.rules, **(rules or {})},
    }
    return DemoPremises(premises_id, kind.name, profile)


def divided(
    whole: DemoPremises, parts: tuple[tuple[str, str, str], ...]
) -> tuple[DemoPremises, ...]:
    """A hall and the parts it divides into (a curtain across a gym): each part occupies a
    space of its own, the whole all of them (API.md, premises made of spaces). `parts` are
    (id suffix, Finnish name, English name); a part holds its share of the people and costs
    its share of the price."""
    spaces = [f"{whole.premises_id}-{suffix}" for suffix, _, _ in parts]
    found = [replace(whole, profile={**whole.profile, "spaces": spaces})]
    share = len(parts)
    for (suffix, fi, en), space in zip(parts, spaces, strict=True):
        price = whole.profile["hourly_price_cents"]
        profile = {
            **whole.profile,
            "name": {"fi": f"{whole.profile['name']['fi']}, {fi}",
                     "en": f"{whole.profile['name']['en']}, {en}"},
            "capacity": max(1, whole.profile["capacity"] // share),
            "hourly_price_cents": None if price is None else price // share,
            "spaces": [space],
        }  # fmt: skip
        found.append(DemoPremises(f"{whole.premises_id}-{suffix}", whole.kind, profile))
    return tuple(found)


def combined(
    rooms: tuple[DemoPremises, ...], premises_id: str, fi: str, en: str
) -> tuple[DemoPremises, ...]:
    """Rooms with a folding wall between them, and the large room they make together."""
    first = rooms[0].profile
    found = [replace(r, profile={**r.profile, "spaces": [r.premises_id]}) for r in rooms]
    profile = {
        **first,
        "name": {"fi": fi, "en": en},
        "capacity": sum(r.profile["capacity"] for r in rooms),
        "spaces": [r.premises_id for r in rooms],
    }
    return (*found, DemoPremises(premises_id, rooms[0].kind, profile))


HALVES = (("ita", "itäpää", "east end"), ("lansi", "länsipää", "west end"))
THIRDS = (
    ("a", "lohko A", "section A"),
    ("b", "lohko B", "section B"),
    ("c", "lohko C", "section C"),
)
MAIN_LIBRARY = "Raatihuoneenkatu 6, 50100 Mikkeli"
BRANCH_LIBRARY_HOURS = "mon-thu 11:00-19:00; fri 10:00-16:00"
NO_STEP_FREE = ("accessible_parking",)

# fmt: off
CATALOGUE: tuple[DemoPremises, ...] = (
    # Libraries: the main library in the centre and branch libraries in the districts.
    # Kaisla and Ruoko have a folding wall between them: together they are Kaisla-Ruoko.
    *combined((
        _premises(LIBRARY, "paakirjasto-kokoushuone-kaisla", "Pääkirjasto, kokoushuone Kaisla",
                  "Main library, meeting room Kaisla", MAIN_LIBRARY, "keskusta", 14,
                  more_equipment=("video_conference", "screen")),
        _premises(LIBRARY, "paakirjasto-ryhmatila-ruoko", "Pääkirjasto, ryhmätila Ruoko",
                  "Main library, group room Ruoko", MAIN_LIBRARY, "keskusta", 6,
                  rules={"quota_hours_per_week": 4}),
    ), "paakirjasto-kaisla-ruoko", "Pääkirjasto, yhdistetty tila Kaisla–Ruoko",
       "Main library, Kaisla and Ruoko combined"),
    _premises(HALL, "paakirjasto-jaama", "Pääkirjaston Jaama-sali", "Jaama hall, main library",
              MAIN_LIBRARY, "keskusta", 90),
    _premises(LIBRARY, "rantakylan-kirjasto-ryhmatila", "Rantakylän kirjasto, ryhmätila",
              "Rantakylä library, group room", "Väinölänkatu 1, 50190 Mikkeli", "rantakylä", 10,
              opening="mon-thu 10:00-19:00; fri 10:00-16:00; sat 10:00-14:00"),
    _premises(LIBRARY, "ristiinan-kirjasto-kokoushuone", "Ristiinan kirjasto, kokoushuone",
              "Ristiina library, meeting room", "Brahentie 30, 52300 Ristiina", "ristiina", 12,
              opening=BRANCH_LIBRARY_HOURS),
    _premises(LIBRARY, "haukivuoren-kirjasto-ryhmatila", "Haukivuoren kirjasto, ryhmätila",
              "Haukivuori library, group room", "Haukivuorentie 23, 51600 Haukivuori",
              "haukivuori", 8, opening=BRANCH_LIBRARY_HOURS),
    _premises(LIBRARY, "anttolan-kirjasto-ryhmatila", "Anttolan kirjasto, ryhmätila",
              "Anttola library, group room", "Anttolantie 15, 52100 Anttola", "anttola", 8,
              opening="tue-thu 12:00-19:00", rules={"quota_hours_per_week": None}),
    _premises(LIBRARY, "otavan-kirjasto-kerhohuone", "Otavan kirjasto, kerhohuone",
              "Otava library, club room", "Otavantie 35, 50670 Otava", "otava", 10,
              opening="mon-wed 12:00-19:00; thu 10:00-16:00",
              rules={"quota_hours_per_week": None}),
    # Youth centres: evenings, and Friday and Saturday nights past midnight.
    _premises(YOUTH, "nuorisotila-kompassi", "Nuorisotila Kompassi", "Youth centre Kompassi",
              "Hallituskatu 3, 50100 Mikkeli", "keskusta", 45,
              more_equipment=("stage", "microphone")),
    _premises(YOUTH, "rantakylan-nuorisotila", "Rantakylän nuorisotila Nuokkari",
              "Rantakylä youth centre Nuokkari", "Kalevantori 2, 50190 Mikkeli", "rantakylä", 30),
    _premises(YOUTH, "tuppuralan-nuorisotila", "Tuppuralan nuorisotila", "Tuppurala youth centre",
              "Tuppuralankatu 10, 50180 Mikkeli", "tuppurala", 25,
              rules={"requires_approval": False}),
    _premises(YOUTH, "ristiinan-nuorisotila", "Ristiinan nuorisotila", "Ristiina youth centre",
              "Ristiinantie 2, 52300 Ristiina", "ristiina", 25,
              opening="wed-thu 15:00-21:00; fri 18:00-01:00"),
    _premises(YOUTH, "haukivuoren-nuorisotila", "Haukivuoren nuorisotila",
              "Haukivuori youth centre", "Keskustie 12, 51600 Haukivuori", "haukivuori", 20,
              opening="tue-thu 15:00-20:00; fri 18:00-23:00", rules={"requires_approval": False}),
    # School gyms: after school on weekdays, all day at weekends; paid by the hour.
    # Four of them divide with a curtain: the whole hall, or its halves (thirds) apart.
    *divided(_premises(GYM, "lyseon-liikuntasali", "Mikkelin lyseon liikuntasali",
              "Mikkeli Lyceum sports hall", "Lyseokatu 2, 50100 Mikkeli", "keskusta", 60,
              price_cents=2500, more_equipment=("basketball_hoops", "sound_system"),
              accessibility=("step_free_access", "accessible_toilet", "lift"),
              rules={"quota_hours_per_week": 6}), HALVES),
    _premises(GYM, "paamajan-koulu-liikuntasali", "Päämajan koulun liikuntasali",
              "Päämaja school gym", "Päämajankatu 4, 50100 Mikkeli", "keskusta", 40,
              price_cents=2000),
    *divided(_premises(GYM, "rantakylan-yhtenaiskoulu-iso-sali",
              "Rantakylän yhtenäiskoulun iso sali",
              "Rantakylä comprehensive school, large hall", "Kalevankatu 18, 50190 Mikkeli",
              "rantakylä", 80, price_cents=3500,
              more_equipment=("basketball_hoops", "badminton_courts", "sound_system"),
              accessibility=("step_free_access", "accessible_toilet", "induction_loop"),
              rules={"quota_hours_per_week": 6, "max_duration_minutes": 240}), THIRDS),
    _premises(GYM, "lahemaen-koulu-liikuntasali", "Lähemäen koulun liikuntasali",
              "Lähemäki school gym", "Kiiskinmäenkatu 2, 50120 Mikkeli", "lähemäki", 40,
              price_cents=1800),
    _premises(GYM, "urpolan-koulu-liikuntasali", "Urpolan koulun liikuntasali",
              "Urpola school gym", "Urpolankatu 14, 50170 Mikkeli", "urpola", 35,
              price_cents=1500),
    *divided(_premises(GYM, "kalevankankaan-koulu-liikuntasali",
              "Kalevankankaan koulun liikuntasali",
              "Kalevankangas school gym", "Kalevankatu 60, 50130 Mikkeli", "kalevankangas", 40,
              price_cents=1800, more_equipment=("basketball_hoops",)), HALVES),
    _premises(GYM, "launialan-koulu-liikuntasali", "Launialan koulun liikuntasali",
              "Launiala school gym", "Launialankatu 20, 50150 Mikkeli", "launiala", 30,
              price_cents=1500, accessibility=NO_STEP_FREE),
    _premises(GYM, "tuppuralan-koulu-liikuntasali", "Tuppuralan koulun liikuntasali",
              "Tuppurala school gym", "Tuppuralankatu 25, 50180 Mikkeli", "tuppurala", 35,
              price_cents=1500),
    *divided(_premises(GYM, "ristiinan-yhtenaiskoulu-liikuntasali",
              "Ristiinan yhtenäiskoulun liikuntasali",
              "Ristiina comprehensive school gym", "Koulutie 5, 52300 Ristiina", "ristiina", 60,
              price_cents=2000, more_equipment=("basketball_hoops",),
              rules={"quota_hours_per_week": 6}), HALVES),
    _premises(GYM, "haukivuoren-yhtenaiskoulu-liikuntasali",
              "Haukivuoren yhtenäiskoulun liikuntasali", "Haukivuori comprehensive school gym",
              "Koulutie 3, 51600 Haukivuori", "haukivuori", 45, price_cents=1500),
    _premises(GYM, "otavan-koulu-liikuntasali", "Otavan koulun liikuntasali", "Otava school gym",
              "Koulukuja 1, 50670 Otava", "otava", 30, price_cents=1200,
              accessibility=NO_STEP_FREE),
    _premises(GYM, "anttolan-koulu-liikuntasali", "Anttolan koulun liikuntasali",
              "Anttola school gym", "Koulumäentie 2, 52100 Anttola", "anttola", 30,
              price_cents=1200, opening="mon-fri 17:00-21:00; sat 10:00-18:00"),
    # Village halls: parties and dances run past midnight; the village association approves.
    _premises(VILLAGE_HALL, "anttolan-seurantalo", "Anttolan seurantalo", "Anttola community hall",
              "Seurantalontie 4, 52100 Anttola", "anttola", 150, price_cents=2500,
              more_equipment=("sauna",)),
    _premises(VILLAGE_HALL, "haukivuoren-seurojentalo", "Haukivuoren seurojentalo",
              "Haukivuori community hall", "Seurojentalontie 1, 51600 Haukivuori", "haukivuori",
              200, price_cents=2500,
              accessibility=("step_free_access", "accessible_toilet", "accessible_parking"),
              rules={"quota_hours_per_month": 48}),
    _premises(VILLAGE_HALL, "ristiinan-nuorisoseurantalo", "Ristiinan nuorisoseurantalo",
              "Ristiina youth society hall", "Linnanmäentie 7, 52300 Ristiina", "ristiina", 180,
              price_cents=2500),
    _premises(VILLAGE_HALL, "suomenniemen-kylatalo", "Suomenniemen kylätalo",
              "Suomenniemi village house", "Suomenniementie 1152, 52780 Suomenniemi",
              "suomenniemi", 80,
              accessibility=("step_free_access", "accessible_toilet", "accessible_parking"),
              free_use=("Maksuton suomenniemeläisille yhdistyksille ja avoimiin kylätapahtumiin.",
                        "Free of charge for Suomenniemi associations and open village events.")),
    _premises(VILLAGE_HALL, "otavan-seurantalo", "Otavan seurantalo", "Otava community hall",
              "Seurantalontie 2, 50670 Otava", "otava", 120, price_cents=2000,
              rules={"requires_approval": False, "buffer_minutes": 30}),
    _premises(VILLAGE_HALL, "pitkajarven-kylatalo", "Pitkäjärven kylätalo",
              "Pitkäjärvi village house", "Pitkäjärventie 210, 50600 Mikkeli", "pitkäjärvi", 60,
              price_cents=1500, more_equipment=("sauna",)),
    # Open meeting places: anyone may book; pop-up requests are approved at once when free.
    _premises(MEETING_PLACE, "kaupungintalon-ala-aula", "Kaupungintalon ala-aula",
              "City hall lobby", "Maaherrankatu 9-11, 50100 Mikkeli", "keskusta", 60,
              opening="mon-fri 08:00-16:00", accessibility=STEP_FREE_WITH_LOOP,
              more_equipment=("screen", "microphone")),
    _premises(MEETING_PLACE, "paamajan-monitoimitalo", "Päämajan monitoimitalo, monitoimisali",
              "Päämaja multipurpose house, multipurpose room", "Päämajankuja 1, 50100 Mikkeli",
              "keskusta", 40, opening="mon-fri 09:00-21:00; sat 10:00-18:00",
              more_equipment=("projector", "kitchen")),
    _premises(MEETING_PLACE, "urpolan-asukastupa", "Urpolan asukastupa",
              "Urpola residents' lounge", "Urpolankatu 31, 50170 Mikkeli", "urpola", 20),
    _premises(MEETING_PLACE, "peitsarin-asukastupa", "Peitsarin asukastupa",
              "Peitsari residents' lounge", "Peitsarinkatu 8, 50150 Mikkeli", "peitsari", 20,
              accessibility=NO_STEP_FREE),
    _premises(MEETING_PLACE, "tuukkalan-kohtaamispaikka", "Tuukkalan kohtaamispaikka Tupa",
              "Tuukkala meeting place Tupa", "Tuukkalankatu 12, 50170 Mikkeli", "tuukkala", 25),
    _premises(MEETING_PLACE, "kalevankankaan-asukastupa", "Kalevankankaan asukastupa",
              "Kalevankangas residents' lounge", "Kalevankatu 44, 50130 Mikkeli",
              "kalevankangas", 20, opening="mon-fri 09:00-20:00"),
)
# fmt: on
