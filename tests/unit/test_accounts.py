"""booking.domain.accounts: who may create which account and erase whom, with plain values."""

from __future__ import annotations

import pytest

from booking.domain.accounts import (
    OPERATOR,
    SELF_SIGNUP,
    CreateOrganisation,
    CreateUser,
    ErasePerson,
    decide_organisation,
    decide_user,
    may_erase,
)
from booking.domain.commands import Actor
from booking.domain.errors import InvalidState, NotAllowed, RuleBroken
from events.catalog import OrganisationRegistered, UserRegistered

ADMIN = Actor("admin-1", "admin")
STAFF = Actor("staff-1", "staff")
BOOKER = Actor("booker-1", "booker", "org-1")


def user(by: Actor | str = ADMIN, **overrides: object) -> CreateUser:
    values: dict[str, object] = {
        "by": by,
        "user_id": "u-1",
        "email": "maija@example.fi",
        "role": "staff",
        "organisation_id": None,
        "language": "sv",
        "organisation_exists": False,
        "email_taken": False,
        **overrides,
    }
    return CreateUser(**values)  # type: ignore[arg-type]


def test_an_admin_or_the_operator_creates_any_role() -> None:
    for by in (ADMIN, OPERATOR):
        assert decide_user(user(by)) == [UserRegistered("u-1", "staff", None, "sv")]


@pytest.mark.parametrize("by", [STAFF, BOOKER, Actor("r", "resident"), SELF_SIGNUP])
def test_nobody_else_creates_staff(by: Actor | str) -> None:
    with pytest.raises(NotAllowed):
        decide_user(user(by))


def test_a_person_signing_up_becomes_a_resident_only() -> None:
    made = decide_user(user(SELF_SIGNUP, role="resident"))
    assert made == [UserRegistered("u-1", "resident", None, "sv")]


def test_refusals_name_their_fields() -> None:
    with pytest.raises(RuleBroken) as refused:
        decide_user(user(email="no-at-sign", role="pope", language="de"))
    assert set(refused.value.problems) == {"email", "role", "language"}
    with pytest.raises(RuleBroken) as booker:
        decide_user(user(role="booker"))
    assert "organisation_id" in booker.value.problems
    with pytest.raises(RuleBroken) as unknown:
        decide_user(user(role="booker", organisation_id="org-x", organisation_exists=False))
    assert unknown.value.problems["organisation_id"] == ["No such organisation."]
    with pytest.raises(InvalidState):
        decide_user(user(email_taken=True))


def test_organisations_by_staff_admins_and_the_operator() -> None:
    command = CreateOrganisation(STAFF, "o-1", "  Kerho ry ", "association", None)
    assert decide_organisation(command) == [
        OrganisationRegistered("o-1", "Kerho ry", "association", None)
    ]
    with pytest.raises(NotAllowed):
        decide_organisation(CreateOrganisation(BOOKER, "o-2", "X", "association", None))
    with pytest.raises(RuleBroken) as refused:
        decide_organisation(CreateOrganisation(OPERATOR, "o-3", " ", "club", None))
    assert set(refused.value.problems) == {"name", "type"}


def test_only_an_admin_erases_and_never_themself() -> None:
    may_erase(ErasePerson(ADMIN, "someone"))
    with pytest.raises(InvalidState):
        may_erase(ErasePerson(ADMIN, ADMIN.user_id))
    with pytest.raises(NotAllowed):
        may_erase(ErasePerson(STAFF, "someone"))
