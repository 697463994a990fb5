"""Premises that take bookings only from people who identified themselves strongly.

With `rules.requires_strong_identity: true`, a booking, a booking series, a pop-up request or
an allocation application that wishes for the premises (booking.usecases.allocation) is
accepted only from a session whose sign-in was strong (its `acr` is one the deployment
lists in BOOKING_OIDC_STRONG_ACR); staff and admins acting on someone's behalf are not asked.
Anyone else gets 403 `urn:tilavaraus:problem:strong-identity-required` (booking.http) or, on
the pages, the page that says how to sign in strongly (booking.pages.oidc).
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from booking.domain.commands import Actor
from booking.domain.errors import StrongIdentityRequired
from events import pipeline
from projections.catalogue import premises_table

STAFF = ("staff", "admin")


_RULES = select(premises_table.c.rules).where(premises_table.c.id == bindparam("premises"))


def _requires(rules: object) -> bool:
    return bool(isinstance(rules, dict) and rules.get("requires_strong_identity"))


def requires_strong_identity(conn: Connection, premises_id: str) -> bool:
    found = pipeline.remembered(conn, ("strong-identity", premises_id))
    if found is not None:  # read ahead (`read_ahead`)
        return bool(found)
    return _requires(conn.execute(_RULES, {"premises": premises_id}).scalar())


def read_ahead(premises_id: str) -> pipeline.Ahead:
    """The read `check` makes, to send with a command's first reads
    (`events.pipeline.read_ahead`)."""
    return pipeline.Ahead(
        _RULES,
        {"premises": premises_id},
        ("strong-identity", premises_id),
        lambda rows: _requires(rows[0][0]) if rows else False,
    )


def check(conn: Connection, premises_id: str, actor: Actor, strong: bool) -> None:
    """Raise StrongIdentityRequired unless `actor` may act at the premises as signed in
    (`strong`: the session's sign-in was strong; booking.auth.signed_in_strongly)."""
    if actor.is_staff or strong:
        return
    if requires_strong_identity(conn, premises_id):
        raise StrongIdentityRequired(
            f"Premises {premises_id!r} takes bookings, requests and applications only from"
            " people signed in with strong identification."
        )  # what the person can do depends on the deployment: booking.http.problems adds it
