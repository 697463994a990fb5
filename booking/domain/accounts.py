"""decide for accounts: who may create which account or organisation, and erase whom.

Pure, like the premises decider: the handler (booking.usecases.accounts, .privacy) loads the
few facts a decision needs (does the organisation exist, is the address taken) and hands
them in on the command; refusals are the named domain errors that booking.http maps to HTTP.
No personal data passes through here: the e-mail address is checked for shape only, and the
events carry ids, role and language.
"""

from __future__ import annotations

from dataclasses import dataclass

from booking.domain.commands import ROLES, Actor
from booking.domain.errors import InvalidState, NotAllowed, NotFound, RuleBroken
from events.catalog import (
    OrganisationContactNamed,
    OrganisationRegistered,
    OrganisationRetired,
    UserRegistered,
    UserRoleChanged,
)

ORGANISATION_TYPES = ("association", "company", "other")
LANGUAGES = ("fi", "en", "sv")

# Who creates: a signed-in person, or one of two callers without an account — the operator
# at the command line or the demo loader (anything), and a resident signing themself up.
OPERATOR = "operator"
SELF_SIGNUP = "self-signup"
# The identity provider's first sign-in of a person (booking.oidc): always a resident.
PROVIDER = "provider"
NEW_PROVIDER_ROLE = "resident"
Creator = Actor | str


@dataclass(frozen=True)
class CreateUser:
    by: Creator
    user_id: str
    email: str  # already normalised (stripped, lower-case); checked for shape only
    role: str
    organisation_id: str | None
    language: str
    organisation_exists: bool  # loaded by the handler (when organisation_id is given)
    email_taken: bool  # loaded by the handler, by the address's keyed hash


@dataclass(frozen=True)
class CreateOrganisation:
    by: Creator
    organisation_id: str
    name: str
    type: str
    business_id: str | None


@dataclass(frozen=True)
class ErasePerson:
    by: Actor
    person_id: str


def may_create_user(by: Creator, role: str) -> None:
    """Admins and the operator create any account; a person signing up, a resident only."""
    if by == OPERATOR or (isinstance(by, Actor) and by.role == "admin"):
        return
    if by == SELF_SIGNUP and role == "resident":
        return
    raise NotAllowed("Only an admin may create accounts.")


def may_create_organisation(by: Creator) -> None:
    if by == OPERATOR or (isinstance(by, Actor) and by.role in ("admin", "staff")):
        return
    raise NotAllowed("Only staff and admins may create organisations.")


def _role_problems(
    role: str, organisation_id: str | None, organisation_exists: bool
) -> dict[str, list[str]]:
    """What is wrong with giving a person `role` in `organisation_id` (field → messages)."""
    problems: dict[str, list[str]] = {}
    if role not in ROLES:
        problems["role"] = [f"One of: {', '.join(ROLES)}."]
    if role == "booker" and organisation_id is None:
        problems["organisation_id"] = ["A booker is a member of an organisation."]
    if organisation_id is not None and not organisation_exists:
        problems["organisation_id"] = ["No such organisation."]
    return problems


def decide_user(cmd: CreateUser) -> list[UserRegistered]:
    may_create_user(cmd.by, cmd.role)
    problems = _role_problems(cmd.role, cmd.organisation_id, cmd.organisation_exists)
    if "@" not in cmd.email or len(cmd.email) > 320:
        problems["email"] = ["Not an e-mail address."]
    if cmd.language not in LANGUAGES:
        problems["language"] = [f"One of: {', '.join(LANGUAGES)}."]
    if problems:
        raise RuleBroken(problems)
    if cmd.email_taken:
        raise InvalidState("A user with that e-mail address exists.")
    return [UserRegistered(cmd.user_id, cmd.role, cmd.organisation_id, cmd.language)]


def decide_organisation(cmd: CreateOrganisation) -> list[OrganisationRegistered]:
    may_create_organisation(cmd.by)
    problems: dict[str, list[str]] = {}
    if cmd.type not in ORGANISATION_TYPES:
        problems["type"] = [f"One of: {', '.join(ORGANISATION_TYPES)}."]
    if not cmd.name.strip():
        problems["name"] = ["Give a name."]
    if problems:
        raise RuleBroken(problems)
    name = cmd.name.strip()
    return [OrganisationRegistered(cmd.organisation_id, name, cmd.type, cmd.business_id)]


def may_erase(cmd: ErasePerson) -> None:
    """Admins erase people, but not themselves (another admin must: no one locks the last
    admin out by accident)."""
    if cmd.by.role != "admin":
        raise NotAllowed("Only an admin may erase a person's data.")
    if cmd.by.user_id == cmd.person_id:
        raise InvalidState("Ask another admin to erase your own account.")


# --- people who come through an identity provider ------------------------------------------


@dataclass(frozen=True)
class RegisterProviderPerson:
    """A first sign-in through the identity provider: a new person, known by the issuer and
    subject only (booking.oidc_people), never matched to an account by e-mail."""

    user_id: str
    language: str


def decide_provider_person(cmd: RegisterProviderPerson) -> list[UserRegistered]:
    language = cmd.language if cmd.language in LANGUAGES else "fi"
    return [UserRegistered(cmd.user_id, NEW_PROVIDER_ROLE, None, language)]


@dataclass(frozen=True)
class FollowProviderRole:
    """At a sign-in, where a claim maps to roles (BOOKING_OIDC_ROLE_MAP): `mapped` is the
    highest role the claim grants now (None: none), `granted_before` the one it granted at
    the person's previous sign-in (None: it granted none, or an admin has since decided)."""

    user_id: str
    role: str
    organisation_id: str | None
    mapped: str | None
    granted_before: str | None


def decide_provider_role(cmd: FollowProviderRole) -> tuple[list[UserRoleChanged], str | None]:
    """The role change, if any, and what the provider grants from now on. A mapped role is
    the person's role; a role the provider granted and no longer grants is taken away (the
    person is a booker again if they belong to an organisation, else a resident); a role an
    admin gave is left alone when the claim maps to nothing."""
    if cmd.mapped is not None:
        if cmd.role == cmd.mapped:
            return [], cmd.mapped
        return [UserRoleChanged(cmd.user_id, cmd.mapped, cmd.organisation_id, PROVIDER)], cmd.mapped
    if cmd.granted_before is not None and cmd.role == cmd.granted_before:
        fallback = "booker" if cmd.organisation_id else NEW_PROVIDER_ROLE
        return [UserRoleChanged(cmd.user_id, fallback, cmd.organisation_id, PROVIDER)], None
    return [], None


@dataclass(frozen=True)
class AssignRole:
    by: Actor
    user_id: str
    role: str
    organisation_id: str | None
    person_exists: bool  # loaded by the handler (and not erased)
    organisation_exists: bool  # loaded by the handler (when organisation_id is given)


def decide_role(cmd: AssignRole) -> list[UserRoleChanged]:
    """Admins assign roles, never their own (another admin must: no one locks the last admin
    out by accident); a booker belongs to an organisation."""
    if cmd.by.role != "admin":
        raise NotAllowed("Only an admin may assign roles.")
    if not cmd.person_exists:
        raise NotFound(f"No user {cmd.user_id!r}.")
    if cmd.by.user_id == cmd.user_id:
        raise InvalidState("Ask another admin to change your own role.")
    problems = _role_problems(cmd.role, cmd.organisation_id, cmd.organisation_exists)
    if problems:
        raise RuleBroken(problems)
    return [UserRoleChanged(cmd.user_id, cmd.role, cmd.organisation_id, "admin")]


# --- an organisation's contact person and retirement ------------------------------------------


@dataclass(frozen=True)
class NameContact:
    """Staff name the person who decides the organisation's membership requests beside
    staff, or none (`contact_user_id` None)."""

    by: Actor
    organisation_id: str
    contact_user_id: str | None
    organisation_exists: bool
    organisation_retired: bool
    contact_is_member: bool  # loaded by the handler: the person belongs to the organisation


def decide_contact(cmd: NameContact) -> list[OrganisationContactNamed]:
    if cmd.by.role not in ("staff", "admin"):
        raise NotAllowed("Only staff name an organisation's contact person.")
    if not cmd.organisation_exists:
        raise NotFound(f"No organisation {cmd.organisation_id!r}.")
    if cmd.organisation_retired:
        raise InvalidState("The organisation is retired.")
    if cmd.contact_user_id is not None and not cmd.contact_is_member:
        raise RuleBroken(
            {"contact_user_id": ["The contact person is a member of the organisation."]}
        )
    return [OrganisationContactNamed(cmd.organisation_id, cmd.contact_user_id)]


@dataclass(frozen=True)
class RetireOrganisation:
    by: Actor
    organisation_id: str
    organisation_exists: bool
    organisation_retired: bool


def decide_retirement(cmd: RetireOrganisation) -> list[OrganisationRetired]:
    """Staff retire an organisation: it takes no new members. Retiring again changes nothing."""
    if cmd.by.role not in ("staff", "admin"):
        raise NotAllowed("Only staff retire organisations.")
    if not cmd.organisation_exists:
        raise NotFound(f"No organisation {cmd.organisation_id!r}.")
    if cmd.organisation_retired:
        return []
    return [OrganisationRetired(cmd.organisation_id)]
