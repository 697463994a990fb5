"""An unallocated section's reason is a code and its holders, said in any language; old
proposals, which kept only the English sentence, are read back to the same code."""

from __future__ import annotations

import pytest
from flask import Flask

from booking import i18n
from booking.allocation import explain
from booking.i18n import translations
from booking.pages.round_texts import translate

HOLDERS = ["Seura A (P10), Sali, maanantai 17.00–18.30", "Seura B (P12), Sali, tiistai 17.00–18.30"]


@pytest.mark.parametrize("code", explain.REASON_CODES)
def test_every_reason_is_said_in_finnish_and_swedish_and_read_back(code: str) -> None:
    english = explain.sentence(code, HOLDERS, 2)
    assert explain.code_of({"reason": english}) == code  # a legacy entry: no reason_code
    assert explain.code_of({"reason": "anything", "reason_code": code}) == code
    for language in ("fi", "sv"):
        said = explain.sentence(code, HOLDERS, 2, translations(language).gettext)
        assert said and said != english
        if code in (explain.TAKEN, explain.LEFT_OUT):
            assert all(h in said for h in HOLDERS)


def test_a_reason_names_three_holders_and_counts_the_rest() -> None:
    many = [f"Seura {n}" for n in range(5)]
    said = explain.sentence(explain.TAKEN, many, 0, translations("fi").gettext)
    assert "Seura 2" in said and "Seura 3" not in said and "ja 2 muuta" in said
    assert explain.sentence(explain.TAKEN, many).endswith("Seura 2 and 2 more.")


@pytest.mark.parametrize(
    ("language", "said"),
    [
        (
            "fi",
            "Aika on liian lähellä vuoroa Juniorit, court maanantai 17:00–18:00: court pitää 15",
        ),
        (
            "sv",
            "Tiden ligger för nära turen Juniorit, court måndag 17:00–18:00: court hålls fri i 15",
        ),
        ("en", "The time is too close to Juniorit at court Monday 17:00–18:00: court keeps 15"),
    ],
)
def test_an_adjustment_refused_for_a_buffer_is_said_in_the_readers_language(
    language: str, said: str
) -> None:
    app = Flask(__name__)
    app.secret_key = "test"
    i18n.init_app(app)
    refused = (
        "The time is too close to allocation 0d6e (Juniorit, court mon 17:00–18:00): court "
        "keeps 15 minutes free after each booking."
    )
    with app.test_request_context(f"/?lang={language}"):
        assert translate(refused).startswith(said)
