"""Handlers for accounts: create a user, create an organisation, sign a person in through
the identity provider (made on their first sign-in, their role following a mapped claim),
assign a role, name an organisation's contact person, retire an organisation.

The API (POST /api/v1/users, /organisations), the sign-up page, `booking admin …` and the
demo loader all create accounts through these. Each loads the facts the decider needs,
decides (booking.domain.accounts), and records: the event in the log (ids, role, language —
no personal data), the account row with e-mail and name sealed under the person's own key
(made only once the decision allows it), and a first API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from booking import accounts, memberships, oidc_people
from booking.domain.accounts import (
    AssignRole,
    CreateOrganisation,
    CreateUser,
    Creator,
    FollowProviderRole,
    NameContact,
    RegisterProviderPerson,
    RetireOrganisation,
    decide_contact,
    decide_organisation,
    decide_provider_person,
    decide_provider_role,
    decide_retirement,
    decide_role,
    decide_user,
)
from booking.domain.commands import Actor
from booking.privacy import Vault
from booking.tables import organisations, users
from events.catalog import Event, UserRoleChanged
from events.store import Metadata, append, stream_version


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
    token: str | None = None,
) -> UserCreated:
    """`token`: the new user's API token when the caller made it (a random one if not)."""
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
    return UserCreated(user_id, accounts.issue_token(conn, user_id, now, token), now)


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


# --- signing in through the identity provider ---------------------------------------------


@dataclass(frozen=True)
class ProviderPerson:
    """Who the provider says signed in (booking.oidc.Verified, less the protocol)."""

    issuer: str
    subject: str
    name: str
    email: str
    language: str
    maps_roles: bool = False  # BOOKING_OIDC_ROLE_CLAIM and _ROLE_MAP are set
    mapped_role: str | None = None  # the highest role the claim maps to now


@dataclass(frozen=True)
class ProviderSignIn:
    user_id: str
    created: bool
    role: str


def sign_in_through_provider(
    conn: Connection, vault: Vault, who: ProviderPerson, now: datetime, new_user_id: str
) -> ProviderSignIn:
    """The person the provider's (issuer, sub) names — made, a resident, on their first
    sign-in (never found by e-mail: booking.oidc_people) — with the sealed name and e-mail
    the provider gives now, and, where a claim maps to roles, the role it maps to."""
    found = oidc_people.identity(conn, who.issuer, who.subject)
    if found is not None and found.erased_at is not None:
        oidc_people.forget(conn, who.issuer, who.subject)
        found = None
    personal = vault.reader(conn)
    created = found is None
    if found is None:
        user_id = new_user_id
        events = decide_provider_person(RegisterProviderPerson(user_id, who.language))
        append(conn, f"user-{user_id}", list(events), 0, Metadata(actor=user_id), now=now)
        vault.create_key(conn, user_id)
        personal = vault.reader(conn)
        # No e-mail lookup hash: neither a password nor an e-mailed link reaches the account.
        accounts.insert_user(conn, personal, events[0], who.email, who.name, None, None, now)
        oidc_people.remember(conn, who.issuer, who.subject, user_id, now)
        granted_before = None
    else:
        user_id = str(found.user_id)
        oidc_people.reseal(conn, personal, user_id, who.name, who.email)
        granted_before = found.granted_role
    person = conn.execute(
        select(users.c.role, users.c.organisation_id).where(users.c.id == user_id)
    ).one()
    role = str(person.role)
    if who.maps_roles:
        changes, granted = decide_provider_role(
            FollowProviderRole(
                user_id, role, person.organisation_id, who.mapped_role, granted_before
            )
        )
        _change_role(conn, user_id, changes, Metadata(actor=user_id), now)
        oidc_people.grant(conn, who.issuer, who.subject, granted)
        role = changes[-1].role if changes else role
    return ProviderSignIn(user_id, created, role)


def _change_role(
    conn: Connection,
    user_id: str,
    changes: list[UserRoleChanged],
    metadata: Metadata,
    now: datetime,
) -> None:
    if not changes:
        return
    stream = f"user-{user_id}"
    recorded: list[Event] = list(changes)
    append(conn, stream, recorded, stream_version(conn, stream), metadata, now=now)
    last = changes[-1]
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(role=last.role, organisation_id=last.organisation_id)
    )


# --- roles, contact persons, retirement ------------------------------------------------------


@dataclass(frozen=True)
class RoleAssigned:
    user_id: str
    role: str
    organisation_id: str | None


def assign_role(
    conn: Connection,
    by: Actor,
    user_id: str,
    role: str,
    organisation_id: str | None,
    now: datetime,
    metadata: Metadata,
) -> RoleAssigned:
    """An admin assigns a person's role (and, when named, the organisation they act for;
    otherwise it stays as it was)."""
    person = conn.execute(
        select(users.c.erased_at, users.c.organisation_id).where(users.c.id == user_id)
    ).first()
    if organisation_id is None and person is not None:
        organisation_id = person.organisation_id
    command = AssignRole(
        by,
        user_id,
        role,
        organisation_id,
        person_exists=person is not None and person.erased_at is None,
        organisation_exists=organisation_id is not None
        and accounts.organisation_exists(conn, organisation_id),
    )
    changes = decide_role(command)
    _change_role(conn, user_id, changes, metadata, now)
    oidc_people.forget_grants(conn, user_id)
    return RoleAssigned(user_id, role, organisation_id)


def _organisation(conn: Connection, organisation_id: str) -> Any:
    return conn.execute(select(organisations).where(organisations.c.id == organisation_id)).first()


def name_contact(
    conn: Connection,
    by: Actor,
    organisation_id: str,
    contact_user_id: str | None,
    now: datetime,
    metadata: Metadata,
) -> None:
    """Staff name the organisation's contact person (a member), or none."""
    found = _organisation(conn, organisation_id)
    member = contact_user_id is not None and any(
        o.id == organisation_id for o in memberships.organisations_of(conn, contact_user_id)
    )
    command = NameContact(
        by,
        organisation_id,
        contact_user_id,
        organisation_exists=found is not None,
        organisation_retired=found is not None and found.retired_at is not None,
        contact_is_member=member,
    )
    events = decide_contact(command)
    stream = f"organisation-{organisation_id}"
    append(conn, stream, list(events), stream_version(conn, stream), metadata, now=now)
    conn.execute(
        update(organisations)
        .where(organisations.c.id == organisation_id)
        .values(contact_user_id=contact_user_id)
    )


def retire_organisation(
    conn: Connection, by: Actor, organisation_id: str, now: datetime, metadata: Metadata
) -> None:
    """Staff retire an organisation: no one asks to join it or is let in any more."""
    found = _organisation(conn, organisation_id)
    command = RetireOrganisation(
        by,
        organisation_id,
        organisation_exists=found is not None,
        organisation_retired=found is not None and found.retired_at is not None,
    )
    events = decide_retirement(command)
    if not events:
        return
    stream = f"organisation-{organisation_id}"
    append(conn, stream, list(events), stream_version(conn, stream), metadata, now=now)
    conn.execute(
        update(organisations).where(organisations.c.id == organisation_id).values(retired_at=now)
    )
