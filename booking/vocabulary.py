"""The words for what a premises offers: accessibility features and equipment, by key.

The catalogue stores keys (`projector`, `step_free_access`); a reader sees the name in
their own language from the Babel catalogues (fi, sv, en — tests/unit/test_translations.py
fails on a missing one). A key that is not in this vocabulary is something staff wrote
themselves: it is shown as they wrote it, never half-translated.
"""

from __future__ import annotations

from typing import Protocol


def _l(message: str) -> str:
    """Marks a name for `pybabel extract -k _l`; translated when it is shown."""
    return message


ACCESSIBILITY: dict[str, str] = {
    "step_free_access": _l("Step-free access"),
    "accessible_toilet": _l("Accessible toilet"),
    "induction_loop": _l("Induction loop"),
    "lift": _l("Lift"),
    "accessible_parking": _l("Accessible parking"),
    "braille_signage": _l("Braille signage"),
    "automatic_doors": _l("Automatic doors"),
    "ramp": _l("Ramp"),
    "guide_dogs_welcome": _l("Guide dogs welcome"),
}

EQUIPMENT: dict[str, str] = {
    "projector": _l("Projector"),
    "screen": _l("Screen"),
    "whiteboard": _l("Whiteboard"),
    "flipchart": _l("Flip chart"),
    "video_conference": _l("Video conferencing"),
    "wifi": _l("Wi-Fi"),
    "sound_system": _l("Sound system"),
    "microphone": _l("Microphone"),
    "piano": _l("Piano"),
    "stage": _l("Stage"),
    "kitchen": _l("Kitchen"),
    "coffee_machine": _l("Coffee machine"),
    "dishwasher": _l("Dishwasher"),
    "chairs": _l("Chairs"),
    "tables": _l("Tables"),
    "chairs_tables": _l("Chairs and tables"),
    "sauna": _l("Sauna"),
    "showers": _l("Showers"),
    "changing_rooms": _l("Changing rooms"),
    "gym_mats": _l("Gym mats"),
    "basketball_hoops": _l("Basketball hoops"),
    "badminton_courts": _l("Badminton courts"),
    "volleyball_net": _l("Volleyball net"),
    "floorball_goals": _l("Floorball goals"),
    "pool_table": _l("Pool table"),
    "game_console": _l("Games console"),
}

TERMS: dict[str, str] = {**ACCESSIBILITY, **EQUIPMENT}


class Catalogue(Protocol):
    def gettext(self, message: str) -> str: ...


def known(key: str) -> bool:
    return key in TERMS


def term(key: str, catalogue: Catalogue) -> str:
    """The name of `key` in the catalogue's language; an unknown key as staff wrote it."""
    if key in TERMS:
        return catalogue.gettext(TERMS[key])
    return key.replace("_", " ")


def names(keys: list[str], catalogue: Catalogue) -> dict[str, str]:
    """key → name for each key (e.g. for an API answer in the reader's language)."""
    return {key: term(key, catalogue) for key in keys}
