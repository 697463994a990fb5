"""Roles from a provider's claim (BOOKING_OIDC_ROLE_CLAIM, BOOKING_OIDC_ROLE_MAP): none
unless both are set, a mistyped map stops the service, the highest mapped role wins, and a
role the provider gave is taken back when it stops giving it (an admin's is left alone)."""

from __future__ import annotations

import pytest

from booking.app import create_app
from booking.domain.accounts import FollowProviderRole, decide_provider_role
from booking.oidc import Settings, claim_values, parse_role_map
from events.catalog import UserRoleChanged

BASE = {"BOOKING_OIDC_ISSUER": "https://sso.example.fi/realms/x", "BOOKING_OIDC_CLIENT_ID": "t"}


def test_no_claim_maps_unless_both_are_set() -> None:
    only_map = Settings.of({**BASE, "BOOKING_OIDC_ROLE_MAP": "g=staff"})
    only_claim = Settings.of({**BASE, "BOOKING_OIDC_ROLE_CLAIM": "groups"})
    assert only_map is not None and not only_map.maps_roles
    assert only_claim is not None and not only_claim.maps_roles
    both = Settings.of(
        {**BASE, "BOOKING_OIDC_ROLE_CLAIM": "groups", "BOOKING_OIDC_ROLE_MAP": "s=staff,a=admin"}
    )
    assert both is not None and both.maps_roles
    assert both.role_of(("s", "a", "x")) == "admin"
    assert both.role_of(("s",)) == "staff"
    assert both.role_of(("x",)) is None


@pytest.mark.parametrize("text", ["staff", "g=booker", "g=resident", "=staff", "g=root"])
def test_a_mistyped_map_stops_the_service(text: str) -> None:
    with pytest.raises(ValueError, match="BOOKING_OIDC_ROLE_MAP"):
        parse_role_map(text)
    with pytest.raises(ValueError):
        create_app({"BOOKING_OIDC_ROLE_MAP": text, "BOOKING_DATABASE_URL": "sqlite://"})


def test_claims_by_name_or_dotted_path() -> None:
    claims = {"groups": ["a", 3, "b"], "realm_access": {"roles": ["r"]}, "role": "one"}
    assert claim_values(claims, "groups") == ("a", "b")
    assert claim_values(claims, "realm_access.roles") == ("r",)
    assert claim_values(claims, "role") == ("one",)
    assert claim_values(claims, "role.deeper") == ()
    assert claim_values(claims, "missing") == ()


def follow(role: str, mapped: str | None, before: str | None, org: str | None = None) -> object:
    return decide_provider_role(FollowProviderRole("u", role, org, mapped, before))


def test_the_provider_gives_and_takes_back_only_its_own_role() -> None:
    assert follow("resident", "staff", None) == (
        [UserRoleChanged("u", "staff", None, "provider")],
        "staff",
    )
    assert follow("staff", "staff", "staff") == ([], "staff")
    # No longer granted: back to booker (with an organisation) or resident.
    assert follow("staff", None, "staff", "o") == (
        [UserRoleChanged("u", "booker", "o", "provider")],
        None,
    )
    assert follow("staff", None, "staff") == (
        [UserRoleChanged("u", "resident", None, "provider")],
        None,
    )
    # An admin's choice (the provider granted nothing, or the role is not the granted one).
    assert follow("analyst", None, None) == ([], None)
    assert follow("analyst", None, "staff") == ([], None)
