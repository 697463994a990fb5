"""A made-up Mikkeli-size round, from a seed: for the benchmark and the demo.

Ten school gyms, each a whole hall and its two halves (three premises over two spaces),
and ten single rooms: 40 premises. 150 organisations apply with 400 sections and about
1,500 weekday time wishes, in four tiers (three criteria and "none of them").
"""

from __future__ import annotations

import random

from booking.allocation.model import Premises, Section, TimeWish

GYMS = 10
ROOMS = 10
WEEKDAY_EVENINGS = ((16 * 60, 22 * 60),)
WEEKEND_DAYS = ((9 * 60, 18 * 60),)


def premises(buffer: int = 0) -> dict[str, Premises]:
    """The premises, each keeping `buffer` minutes free after every slot."""
    opening = {d: WEEKDAY_EVENINGS if d < 5 else WEEKEND_DAYS for d in range(7)}
    result: dict[str, Premises] = {}
    for g in range(GYMS):
        east, west = f"gym-{g}-east", f"gym-{g}-west"
        result[f"gym-{g}"] = Premises(f"gym-{g}", opening, frozenset({east, west}), buffer)
        result[f"gym-{g}-east"] = Premises(f"gym-{g}-east", opening, frozenset({east}), buffer)
        result[f"gym-{g}-west"] = Premises(f"gym-{g}-west", opening, frozenset({west}), buffer)
    for r in range(ROOMS):
        result[f"room-{r}"] = Premises(f"room-{r}", opening, frozenset(), buffer)
    return result


def sections(
    seed: int = 2027, organisations: int = 150, count: int = 400, wishes: int = 1500
) -> list[Section]:
    rng = random.Random(seed)
    result = []
    per_section = wishes / count
    for i in range(count):
        org = i % organisations if i < organisations else rng.randrange(organisations)
        tier = rng.choices(range(4), weights=[15, 25, 30, 30])[0]
        wanted: tuple[str, ...]
        if rng.random() < 0.75:  # a sport: a gym, a half or the whole, near one another
            g = rng.randrange(GYMS)
            other = (g + rng.choice([1, -1])) % GYMS
            if rng.random() < 0.3:
                wanted = (f"gym-{g}", f"gym-{other}")
            else:
                half = rng.choice(["east", "west"])
                wanted = (
                    f"gym-{g}-{half}",
                    f"gym-{g}-{'west' if half == 'east' else 'east'}",
                    f"gym-{other}-{half}",
                )
        else:
            r = rng.randrange(ROOMS)
            wanted = (f"room-{r}", f"room-{(r + 1) % ROOMS}")
        count_wishes = max(1, round(rng.gauss(per_section, 1.0)))
        times = []
        for w in range(count_wishes):
            day = rng.randrange(7)
            if day < 5:
                start = rng.choice([16, 17, 18, 19]) * 60
                length = rng.choice([120, 180, 240])
                end = min(start + length, 22 * 60)
            else:
                start = rng.choice([9, 10, 12, 14]) * 60
                end = min(start + rng.choice([120, 180, 240]), 18 * 60)
            times.append(TimeWish(day, start, end, primary=w < 2))
        result.append(
            Section(
                application_id=f"application-{org:03d}-{i:03d}",
                name=f"group-{i % 3 + 1}",
                organisation_id=f"organisation-{org:03d}",
                tier=tier,
                slots_per_week=rng.choices([1, 2, 3], weights=[50, 35, 15])[0],
                duration=rng.choice([60, 90, 90, 120]),
                premises=wanted,
                times=tuple(times),
            )
        )
    return result
