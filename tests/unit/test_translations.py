"""Every interface string — pages, mail, system reasons, feature names — is translated into
Finnish, Swedish and English, and the catalogue template holds every string the code has.

Fails on: a string in the code that is missing from messages.pot (run `pybabel extract`, see
README "Languages"), an entry of the .pot missing from a .po, an empty or fuzzy
translation, a translation that loses or invents a placeholder, or a wrong plural header.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from booking import reasons, vocabulary
from booking.i18n import LANGUAGES, translations
from booking.mail_texts import local_time, texts

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "booking" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
KINDS = (
    "confirmed",
    "pending",
    "series",
    "approved",
    "rejected",
    "cancelled",
    "series_cancelled",
    "popup_approved",
    "popup_rejected",
    "popup_expired",
    "message",
    "reminder",
)


def _key(message: Message) -> str | tuple[str, ...]:
    return message.id if isinstance(message.id, str) else tuple(message.id)


def _strings(message: Message) -> list[str]:
    return [message.string] if isinstance(message.string, str) else list(message.string)


def _template() -> Catalog:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        return read_po(f)


def _catalogue(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def test_the_template_holds_every_string_in_the_code() -> None:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found = {
        msgid if isinstance(msgid, str) else tuple(msgid)
        for _file, _line, msgid, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    known = {_key(m) for m in _template() if m.id}
    assert sorted(map(str, found - known)) == []
    # Strings that no code says any more are dropped, so translators see only live ones.
    assert sorted(map(str, known - found)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated(language: str) -> None:
    catalogue = _catalogue(language)
    by_id = {_key(m): m for m in catalogue if m.id}
    untranslated, fuzzy, placeholders = [], [], []
    for entry in _template():
        if not entry.id:
            continue
        found = by_id.get(_key(entry))
        strings = [] if found is None else _strings(found)
        if found is None or not all(strings):
            untranslated.append(entry.id)
            continue
        if found.fuzzy:
            fuzzy.append(entry.id)
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        wanted = {name for text in ids for name in PLACEHOLDER.findall(text)}
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != wanted:
                placeholders.append((entry.id, text))
    assert untranslated == []
    assert fuzzy == []
    assert placeholders == []
    assert catalogue.num_plurals == 2


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_mail_speaks_the_recipients_language(language: str) -> None:
    catalogue = translations(language)
    english = translations("en")
    fields = {"premises": "Sali", "when": "–", "title": "Kerho", "reason": "–", "count": 2}
    for kind in KINDS:
        assert texts(kind, catalogue, fields) != texts(kind, english, fields), kind


def test_one_time_is_singular_in_finnish_and_swedish() -> None:
    fields = {"premises": "Sali", "when": "ke 2.12.2026", "title": "Kerho"}
    fi_one = texts("series", translations("fi"), {**fields, "count": 1})[1]
    fi_many = texts("series", translations("fi"), {**fields, "count": 7})[1]
    assert "1 kerta," in fi_one and "1 kertaa" not in fi_one
    assert "7 kertaa," in fi_many
    assert "1 gång," in texts("series", translations("sv"), {**fields, "count": 1})[1]


def test_a_series_mail_names_the_skipped_dates() -> None:
    fields = {"premises": "Sali", "when": "–", "title": "Kerho", "count": 3}
    skipped = ["ti 8.12.2026 klo 18.00–20.00 (Europe/Helsinki): Aika on jo varattu."]
    body = texts("series", translations("fi"), {**fields, "skipped": skipped})[1]
    assert "1 päivä jäi varaamatta:\n– ti 8.12.2026 klo 18.00–20.00" in body


def test_system_reasons_are_said_in_the_readers_language() -> None:
    fi, sv = translations("fi"), translations("sv")
    assert reasons.sentence("premises_closed", "Putkiremontti", fi) == (
        "Tila on suljettu: Putkiremontti"
    )
    assert reasons.sentence("popup_withdrawn", "", sv) == "Pop-up-förfrågan återtogs."
    # Rows projected from old events still hold the English sentence; it reads the same.
    assert reasons.sentence(None, "The premises is closed: Putkiremontti", fi) == (
        "Tila on suljettu: Putkiremontti"
    )
    assert reasons.sentence(None, "The pop-up was withdrawn.", fi) == "Pop-up-pyyntö peruttiin."
    assert reasons.sentence("", "Oma syy", sv) == "Oma syy"


def test_known_features_have_names_and_unknown_ones_stay_as_written() -> None:
    fi, sv = translations("fi"), translations("sv")
    assert vocabulary.term("coffee_machine", fi) == "Kahvinkeitin"
    assert vocabulary.term("chairs_tables", sv) == "Stolar och bord"
    assert vocabulary.term("kanteleet", fi) == "kanteleet"


def test_the_demo_catalogue_uses_only_known_feature_keys() -> None:
    from booking.demo.catalogue import CATALOGUE

    keys = {k for p in CATALOGUE for k in (*p.profile["accessibility"], *p.profile["equipment"])}
    assert sorted(k for k in keys if not vocabulary.known(k)) == []


def test_swedish_mail_writes_the_time_the_swedish_way() -> None:
    zone = ZoneInfo("Europe/Helsinki")
    start = datetime(2026, 12, 2, 16, tzinfo=UTC)
    end = datetime(2026, 12, 2, 18, tzinfo=UTC)
    assert local_time(start, end, zone, "sv") == "ons 2.12.2026 kl. 18.00–20.00 (Europe/Helsinki)"
