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
from booking.domain.errors import InvalidState, NotAllowed, RuleBroken
from events.catalog import OrganisationRegistered, UserRegistered

ORGANISATION_TYPES = ("association", "company", "other")
LANGUAGES = ("fi", "en", "sv")

# Who creates: a signed-in person, or one of two callers without an account — the operator
# at the command line or the demo loader (anything), and a resident signing themself up.
OPERATOR = "operator"
SELF_SIGNUP = "self-signup"
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


def decide_user(cmd: CreateUser) -> list[UserRegistered]:
    may_create_user(cmd.by, cmd.role)
    problems: dict[str, list[str]] = {}
    if "@" not in cmd.email or len(cmd.email) > 320:
        problems["email"] = ["Not an e-mail address."]
    if cmd.role not in ROLES:
        problems["role"] = [f"One of: {', '.join(ROLES)}."]
    if cmd.language not in LANGUAGES:
        problems["language"] = [f"One of: {', '.join(LANGUAGES)}."]
    if cmd.role == "booker" and cmd.organisation_id is None:
        problems["organisation_id"] = ["A booker is a member of an organisation."]
    if cmd.organisation_id is not None and not cmd.organisation_exists:
        problems["organisation_id"] = ["No such organisation."]
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
