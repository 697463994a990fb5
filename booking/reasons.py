"""Why a booking was cancelled or a request turned down — said in the reader's language.

The log keeps a person's own words (`reason`) apart from what the system knows about the
cause (`cause`, a machine-readable code). The sentence around them ("The premises is closed:
…") is made only at the edge — mail, pages, API answers — in the language of whoever reads
it, so a Finnish resident never gets an English system text.

Events recorded before the split carried English sentences in `reason`; `split`
reads them back as (cause, words), so old logs read as well as new ones (as the upcasters in
events/serialization.py do for the log).
"""

from __future__ import annotations

from typing import Protocol

from events.catalog import (
    CAUSES,
    POPUP_WITHDRAWN,
    PREMISES_CLOSED,
    PREMISES_RETIRED,
    split_legacy_reason,
)

__all__ = [
    "CAUSES",
    "POPUP_WITHDRAWN",
    "PREMISES_CLOSED",
    "PREMISES_RETIRED",
    "sentence",
    "split",
]


class Catalogue(Protocol):
    """What is needed of a translation catalogue (babel.support.Translations)."""

    def gettext(self, message: str) -> str: ...


def split(reason: str | None, cause: str | None = None) -> tuple[str, str]:
    """(cause, the person's words) of a stored reason and cause; a row projected before
    causes were kept reads its cause out of the old English sentence."""
    if cause:
        return cause, reason or ""
    return split_legacy_reason(reason)


def sentence(cause: str | None, words: str | None, catalogue: Catalogue) -> str:
    """The whole reason as the reader should see it; "" when there is nothing to say."""
    cause, words = split(words, cause)
    _ = catalogue.gettext
    if cause == PREMISES_CLOSED:
        if words:
            return _("The premises is closed: %(reason)s") % {"reason": words}
        return _("The premises is closed.")
    if cause == POPUP_WITHDRAWN:
        return _("The pop-up request was withdrawn.")
    if cause == PREMISES_RETIRED:
        if words:
            return _("The premises is no longer in use: %(reason)s") % {"reason": words}
        return _("The premises is no longer in use.")
    return words


def answer(reason: str | None, code: str | None) -> dict[str, str | None]:
    """The reason fields of an API answer: `reason` the person's own words (null when
    never given), `reason_code` the system's cause (null when none), and `reason_text` the whole
    sentence in the reader's language (token owner's, else Accept-Language)."""
    cause, words = split(reason, code)
    if not cause and reason is None:
        return {"reason": None, "reason_code": None, "reason_text": None}
    from booking.i18n import reader_language, translations  # Flask only at the edge

    text = sentence(cause, words, translations(reader_language()))
    return {"reason": words, "reason_code": cause or None, "reason_text": text or None}


def skipped_reason(reason: str, language: str | None = None) -> str:
    """Why an occurrence of a series was not booked, in `language` (default: the page's).

    The series stores the domain's refusal as it was said ("conflict", or "field: message"
    in English); it is said again here through the catalogues, one message at a time."""
    from flask_babel import force_locale

    from booking.pages.messages import translate  # the domain's sentences, translated

    parts = [part.split(": ", 1)[-1] for part in reason.split("; ") if part]
    if language is None:
        return " ".join(translate(p) for p in parts)
    with force_locale(language):
        return " ".join(translate(p) for p in parts)
