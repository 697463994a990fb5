"""Handlers for accounts: create a user, create an organisation.

The API (POST /api/v1/users, /organisations), the sign-up page, `booking admin …` and the
demo loader all create accounts through these. Each loads the facts the decider needs,
decides (booking.domain.accounts), and records: the event in the log (ids, role, language —
no personal data), the account row with e-mail and name sealed under the person's own key
(made only once the decision allows it), and a first API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from booking import accounts
from booking.domain.accounts import (
    CreateOrganisation,
    CreateUser,
    Creator,
    decide_organisation,
    decide_user,
)
from booking.privacy import Vault
from events.store import Metadata, append


@dataclass(frozen=True)
class NewAccount:
    email: str
    name: str
    role: str
    organisation_id: str | None = None
    password: str | None = None
    language: str = "fi"


@dataclass(frozen=True)
class UserCreated:
    user_id: str
    token: str  # the first API token, in clear: shown once, kept only as a hash
    created_at: datetime


@dataclass(frozen=True)
class NewOrganisation:
    name: str
    type: str = "association"
    business_id: str | None = None


@dataclass(frozen=True)
class OrganisationCreated:
    id: str
    name: str
    type: str
    business_id: str | None
    created_at: datetime


def create_user(
    conn: Connection,
    vault: Vault,
    by: Creator,
    given: NewAccount,
    now: datetime,
    user_id: str,
    metadata: Metadata,
) -> UserCreated:
    email = given.email.strip().lower()
    email_hash = vault.lookup_hash(email)
    command = CreateUser(
        by=by,
        user_id=user_id,
        email=email,
        role=given.role,
        organisation_id=given.organisation_id,
        language=given.language,
        organisation_exists=given.organisation_id is not None
        and accounts.organisation_exists(conn, given.organisation_id),
        email_taken=accounts.email_taken(conn, email_hash),
    )
    events = decide_user(command)
    append(conn, f"user-{user_id}", list(events), 0, metadata, now=now)
    vault.create_key(conn, user_id)
    personal = vault.reader(conn)
    accounts.insert_user(
        conn, personal, events[0], email, given.name.strip(), email_hash, given.password, now
    )
    return UserCreated(user_id, accounts.issue_token(conn, user_id, now), now)


def create_organisation(
    conn: Connection,
    by: Creator,
    given: NewOrganisation,
    now: datetime,
    organisation_id: str,
    metadata: Metadata,
) -> OrganisationCreated:
    command = CreateOrganisation(by, organisation_id, given.name, given.type, given.business_id)
    events = decide_organisation(command)
    append(conn, f"organisation-{organisation_id}", list(events), 0, metadata, now=now)
    accounts.insert_organisation(conn, events[0], now)
    made = events[0]
    return OrganisationCreated(made.organisation_id, made.name, made.type, made.business_id, now)
