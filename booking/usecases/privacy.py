"""Handler for erasing a person (GDPR; DESIGN.md invariant 5): crypto-shredding.

POST /api/v1/users/{id}/erase calls it. The decider (booking.domain.accounts.may_erase) says
who may erase whom; booking.accounts.erase_user records it: the person's data key goes, so
every envelope of theirs reads as null everywhere, and their tokens and unsent mail go too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from booking import accounts
from booking.domain.accounts import ErasePerson, may_erase
from booking.domain.commands import Actor
from booking.privacy import Vault


@dataclass(frozen=True)
class Erased:
    person_id: str
    erased_at: datetime  # the first erasure's: erasing twice changes nothing


def erase_person(
    conn: Connection, vault: Vault, by: Actor, person_id: str, now: datetime
) -> Erased:
    may_erase(ErasePerson(by, person_id))
    return Erased(person_id, accounts.erase_user(conn, person_id, vault, now))
