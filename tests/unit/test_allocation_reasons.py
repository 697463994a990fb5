"""An unallocated section's reason is a code and its holders, said in any language; old
proposals, which kept only the English sentence, are read back to the same code."""

from __future__ import annotations

import pytest

from booking.allocation import explain
from booking.i18n import translations

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
