"""Languages of the pages: Flask-Babel set up for Finnish (default), English and Swedish.

The catalogues are kept as .po files in booking/translations and compiled at app start with
Babel's own API into a per-process folder, so no generated .mo file is ever committed or
stale. `?lang=fi|en|sv` switches the language and the choice is remembered in the session.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations

from booking.reasons import sentence

LANGUAGES = ("fi", "en", "sv")
DEFAULT_LANGUAGE = "fi"
LANGUAGE_NAMES = {"fi": "Suomeksi", "en": "In English", "sv": "På svenska"}
SOURCE = Path(__file__).resolve().parent / "translations"
_compiled: dict[str, Path] = {}
_lock = threading.Lock()


def compiled_catalogues(source: Path = SOURCE) -> Path:
    """A folder of .mo files compiled from the .po files under `source` (cached per content)."""
    files = sorted(source.glob("*/LC_MESSAGES/*.po"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]
    with _lock:
        if digest in _compiled:
            return _compiled[digest]
        target = Path(tempfile.mkdtemp(prefix=f"tilavaraus-i18n-{digest}-"))
        for po_path in files:
            locale = po_path.parent.parent.name
            with po_path.open("rb") as po_file:
                catalogue = read_po(po_file, locale=locale)
            out = target / locale / "LC_MESSAGES" / (po_path.stem + ".mo")
            out.parent.mkdir(parents=True)
            with out.open("wb") as mo_file:
                # Fuzzy entries are guesses by the tools, not translations: leave them out.
                write_mo(mo_file, catalogue, use_fuzzy=False)
        _compiled[digest] = target
        return target


def select_locale() -> str:
    """?lang= (remembered), then the remembered choice, the browser's wish, Finnish."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in LANGUAGES:
        return str(remembered)
    user = g.get("page_user")
    if user is not None and user.language in LANGUAGES:
        return str(user.language)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def current_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_catalogues())
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _languages() -> dict[str, object]:
        return {
            "languages": LANGUAGES,
            "language_names": LANGUAGE_NAMES,
            "current_language": current_language(),
            "reason_text": reason_text,
        }


def reason_text(row: Any) -> str:
    """A row's cancellation or rejection reason as a sentence in the page's language."""
    return sentence(getattr(row, "reason_code", None), row.reason, get_translations())


@functools.cache
def _translations(language: str, folder: Path) -> NullTranslations:
    return Translations.load(str(folder), [language], domain="messages")


def translations(language: str) -> NullTranslations:
    """The catalogue of `language` for text made outside a page's request — mail, API
    answers, jobs — where Flask-Babel's locale is not the reader's. The same .po files as
    the pages, so there is one way to translate."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    return _translations(language, _process_catalogues())


@functools.cache
def _process_catalogues() -> Path:
    """The catalogues as compiled once for this process (the .po files are read and hashed
    once, not for every mail: an expiry run mails thousands)."""
    return compiled_catalogues()


def reader_language() -> str:
    """The language of whoever reads this answer: the API token's owner, else the page's."""
    # booking.auth keeps the caller as g.identity (a token's or a session's user).
    identity = g.get("identity") if has_request_context() else None
    user = getattr(identity, "user", None)
    if user is not None and getattr(user, "language", None) in LANGUAGES:
        return str(user.language)
    if not has_request_context():
        return DEFAULT_LANGUAGE
    if request.path.startswith("/api/"):  # no session there: the client's Accept-Language
        return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE
    return current_language()
