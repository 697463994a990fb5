"""Premises that take bookings only from people who identified themselves strongly.

With `rules.requires_strong_identity: true`, a booking, a booking series, a pop-up request or
an allocation application that wishes for the premises (booking.usecases.allocation) is
accepted only from a session whose sign-in was strong (its `acr` is one the deployment
lists in BOOKING_OIDC_STRONG_ACR); staff and admins acting on someone's behalf are not asked.
Anyone else gets 403 `urn:tilavaraus:problem:strong-identity-required` (booking.http) or, on
the pages, the page that says how to sign in strongly (booking.pages.oidc).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor
from booking.domain.errors import StrongIdentityRequired
from projections.catalogue import premises_table

STAFF = ("staff", "admin")


def requires_strong_identity(conn: Connection, premises_id: str) -> bool:
    rules = conn.execute(
        select(premises_table.c.rules).where(premises_table.c.id == premises_id)
    ).scalar()
    return bool(isinstance(rules, dict) and rules.get("requires_strong_identity"))


def check(conn: Connection, premises_id: str, actor: Actor, strong: bool) -> None:
    """Raise StrongIdentityRequired unless `actor` may act at the premises as signed in
    (`strong`: the session's sign-in was strong; booking.auth.signed_in_strongly)."""
    if actor.is_staff or strong:
        return
    if requires_strong_identity(conn, premises_id):
        raise StrongIdentityRequired(
            f"Premises {premises_id!r} takes bookings, requests and applications only from"
            " people signed in with strong identification: sign in through the identification"
            " service (/auth/oidc/login) with a strong method."
        )
