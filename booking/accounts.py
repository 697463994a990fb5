"""Organisations, users, API tokens and passwords; erasing a person.

Tokens are random and stored only as SHA-256 hashes; passwords are hashed with Argon2id.
Each organisation and user is also an event (ids, role, language — no personal data). A
user's e-mail and name are kept only as envelopes under their own data key (booking.privacy)
and found by a keyed hash of the address; erasing the person deletes the key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import Connection

from booking.clock import random_ids, system_clock
from booking.domain.accounts import LANGUAGES as LANGUAGES  # the CLI and pages name them
from booking.domain.accounts import OPERATOR
from booking.domain.accounts import ORGANISATION_TYPES as ORGANISATION_TYPES
from booking.domain.commands import Actor
from booking.domain.errors import NotFound
from booking.oidc_people import oidc_identities
from booking.outbox import outbox
from booking.privacy import PersonalData, Vault, current_vault, person_keys
from booking.sessions import end_all as end_all_sessions
from booking.tables import api_tokens, feed_tokens, idempotency_keys, organisations, users
from events import pipeline
from events.catalog import OrganisationRegistered, UserRegistered
from events.store import Metadata
from projections.bookings import bookings_table
from projections.messages import messages_table
from projections.popups import popups_table

_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def create_organisation(
    conn: Connection,
    name: str,
    type_: str,
    business_id: str | None,
    actor: str | None,
    now: datetime | None = None,
    organisation_id: str | None = None,
) -> str:
    """An organisation made by the operator (CLI, demo, test helpers): the handler
    booking.usecases.accounts.create_organisation with the clock and ids of booking.clock."""
    from booking.usecases import accounts as handlers  # it stores through this module

    created = handlers.create_organisation(
        conn,
        OPERATOR,
        handlers.NewOrganisation(name, type_, business_id),
        now or system_clock(),
        organisation_id or random_ids(),
        Metadata(actor=actor),
    )
    return created.id


@dataclass(frozen=True)
class NewUser:
    user_id: str
    token: str


def create_user(
    conn: Connection,
    email: str,
    name: str,
    role: str,
    organisation_id: str | None = None,
    password: str | None = None,
    language: str = "fi",
    actor: str | None = None,
    vault: Vault | None = None,
    now: datetime | None = None,
    user_id: str | None = None,
) -> NewUser:
    """A user made by the operator (CLI, demo, test helpers), its data key and a first API
    token: the handler booking.usecases.accounts.create_user with booking.clock's clock and
    ids; `vault` defaults to the app's."""
    from booking.usecases import accounts as handlers  # it stores through this module

    created = handlers.create_user(
        conn,
        vault or current_vault(),
        OPERATOR,
        handlers.NewAccount(email, name, role, organisation_id, password, language),
        now or system_clock(),
        user_id or random_ids(),
        Metadata(actor=actor),
    )
    return NewUser(created.user_id, created.token)


def insert_user(
    conn: Connection,
    personal: PersonalData,
    event: UserRegistered,
    email: str,
    name: str,
    email_hash: str | None,
    password: str | None,
    now: datetime,
) -> None:
    """The account row of a registered user: e-mail and name sealed under their key (a
    person the identity provider gave no e-mail has none, and no `email_hash`)."""
    user_id = event.user_id
    conn.execute(
        insert(users).values(
            id=user_id,
            email=personal.seal(user_id, email) if email else "",
            name=personal.seal(user_id, name) if name else "",
            email_hash=email_hash,
            role=event.role,
            organisation_id=event.organisation_id,
            language=event.language,
            password_hash=hash_password(password) if password else None,
            created_at=now,
        )
    )


def insert_organisation(conn: Connection, event: OrganisationRegistered, now: datetime) -> None:
    conn.execute(
        insert(organisations).values(
            id=event.organisation_id,
            name=event.name,
            type=event.type,
            business_id=event.business_id,
            created_at=now,
        )
    )


def organisation_exists(conn: Connection, organisation_id: str) -> bool:
    found = conn.execute(
        select(organisations.c.id).where(organisations.c.id == organisation_id)
    ).first()
    return found is not None


def is_token_of(conn: Connection, user_id: str, token: str) -> bool:
    """Whether `token` is one of the user's API tokens (revoked or not)."""
    found = conn.execute(
        select(api_tokens.c.user_id).where(
            api_tokens.c.token_hash == token_hash(token), api_tokens.c.user_id == user_id
        )
    ).first()
    return found is not None


def email_taken(conn: Connection, email_hash: str) -> bool:
    found = conn.execute(select(users.c.id).where(users.c.email_hash == email_hash)).first()
    return found is not None


def issue_token(
    conn: Connection, user_id: str, now: datetime | None = None, token: str | None = None
) -> str:
    """A new API token for the user (`token` when the caller made it: see
    booking.http.replayable_secret); only its hash is kept."""
    token = token or secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            token_hash=token_hash(token), user_id=user_id, created_at=now or system_clock()
        )
    )
    return token


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str
    organisation_id: str | None
    language: str

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.organisation_id)


def _user(row: Any, personal: PersonalData) -> User:
    personal.preload(row.id, row.wrapped_key)
    return User(
        id=row.id,
        email=personal.open(row.email) or "",
        name=personal.open(row.name) or "",
        role=row.role,
        organisation_id=row.organisation_id,
        language=row.language,
    )


def _users() -> Select[Any]:
    """Users that were not erased, each with its wrapped data key (one query opens them)."""
    return (
        select(users, person_keys.c.wrapped_key)
        .outerjoin(person_keys, person_keys.c.person_id == users.c.id)
        .where(users.c.erased_at.is_(None))
    )


# What a token's user is made of (`_user`), for a live token of a person not erased.
_BY_TOKEN = (
    select(
        users.c.id,
        users.c.email,
        users.c.name,
        users.c.role,
        users.c.organisation_id,
        users.c.language,
        person_keys.c.wrapped_key,
    )
    .outerjoin(person_keys, person_keys.c.person_id == users.c.id)
    .join(api_tokens, api_tokens.c.user_id == users.c.id)
    .where(
        api_tokens.c.token_hash == bindparam("hash"),
        api_tokens.c.revoked_at.is_(None),
        users.c.erased_at.is_(None),
    )
)


# Its PostgreSQL text, made once: every authenticated request runs it, and SQLAlchemy's
# per-execution work on the statement (cache key, compiled lookup) was a third of its CPU.
# Its columns are all text, so the driver's values need no processing.
_BY_TOKEN_POSTGRESQL = str(
    _BY_TOKEN.compile(dialect=postgresql_psycopg.dialect())  # type: ignore[no-untyped-call]
)  # (the dialect's constructor has no annotations)
_TokenRow = namedtuple("_TokenRow", [c.key for c in _BY_TOKEN.selected_columns])  # type: ignore[misc]


def user_by_token(conn: Connection, token: str, vault: Vault | None = None) -> User | None:
    """The user of a live API token, or None. One statement: it needs no transaction of its
    own (booking.http `statement_reads`), and reads the token's revocation or its person's
    erasure from the moment that commits."""
    params = {"hash": token_hash(token)}
    row: Any
    if conn.dialect.name == "postgresql" and conn.connection.driver_connection.autocommit:  # type: ignore[union-attr]
        # Straight on the driver (`statement_reads`): a write's token lookup is a round trip
        # of its own, and SQLAlchemy's work around it was a third of the lookup's CPU.
        found = pipeline.read_one(conn, _BY_TOKEN, params)
        row = _TokenRow(*found[0]) if found else None
    elif conn.dialect.name == "postgresql":
        row = conn.exec_driver_sql(_BY_TOKEN_POSTGRESQL, params).first()
    else:
        row = conn.execute(_BY_TOKEN, params).first()
    return _user(row, (vault or current_vault()).reader(conn)) if row else None


def user_by_id(conn: Connection, user_id: str, vault: Vault | None = None) -> User:
    """A user who may act (not erased), or NotFound."""
    row = conn.execute(_users().where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"No user {user_id!r}.")
    return _user(row, (vault or current_vault()).reader(conn))


def user_id_by_email(conn: Connection, email: str, vault: Vault | None = None) -> str | None:
    """The id of the (not erased) user with this e-mail address, found by its keyed hash."""
    email_hash = (vault or current_vault()).lookup_hash(email)
    found = conn.execute(select(users.c.id).where(users.c.email_hash == email_hash)).scalar()
    return None if found is None else str(found)


def user_by_password(
    conn: Connection, email: str, password: str, vault: Vault | None = None
) -> User | None:
    vault = vault or current_vault()
    row = conn.execute(_users().where(users.c.email_hash == vault.lookup_hash(email))).first()
    if row is None or not password_matches(row.password_hash, password):
        return None
    return _user(row, vault.reader(conn))


# --- erasure (crypto-shredding, DESIGN.md invariant 5) ------------------------------------


def erase_user(
    conn: Connection, user_id: str, vault: Vault | None = None, now: datetime | None = None
) -> datetime:
    """Erase a person: delete their data key, so every envelope of theirs (e-mail, name,
    booking notes, pop-up descriptions, messages) is unreadable wherever it is kept; revoke
    their tokens, clear their sign-in, drop their unsent mail. Their bookings stay, for
    statistics. Returns when they were erased (the first time: erasing twice is a no-op)."""
    vault = vault or current_vault()
    row = conn.execute(select(users.c.erased_at).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"No user {user_id!r}.")
    if row.erased_at is not None:
        erased_at: datetime = row.erased_at
        return erased_at
    now = now or system_clock()
    if conn.dialect.name == "sqlite":
        # Zero what this transaction frees (the wrapped key, old response texts) instead of
        # leaving it readable in the file's free space.
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    # Idempotency records keep whole responses, opened: scrub them while the key still opens.
    _scrub_stored_responses(conn, _clear_values(conn, user_id, vault.reader(conn)))
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(email_hash=None, password_hash=None, erased_at=now)
    )
    for tokens in (api_tokens, feed_tokens):
        conn.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    conn.execute(delete(outbox).where(outbox.c.recipient_id == user_id, outbox.c.sent_at.is_(None)))
    end_all_sessions(conn, user_id, now)  # signed out everywhere at once
    # The provider's pseudonym goes too: signing in there again makes a new person.
    conn.execute(delete(oidc_identities).where(oidc_identities.c.user_id == user_id))
    vault.erase(conn, user_id)
    return now


def _clear_values(conn: Connection, user_id: str, personal: PersonalData) -> set[str]:
    """Every personal text of the person, opened: what a stored response may show."""
    b, p, m = bookings_table, popups_table, messages_table
    sealed = [
        *conn.execute(select(users.c.email, users.c.name).where(users.c.id == user_id)).one(),
        *conn.execute(select(b.c.notes).where(b.c.booked_by == user_id)).scalars(),
        *conn.execute(select(p.c.description).where(p.c.requested_by == user_id)).scalars(),
        *conn.execute(select(m.c.body).where(m.c.author_id == user_id)).scalars(),
    ]
    return {text for text in map(personal.open, sealed) if text}


def _scrub_stored_responses(conn: Connection, values: set[str]) -> None:
    """Replace the person's texts with null in stored Idempotency-Key responses (a retry
    then answers as an erased person's data reads everywhere else)."""
    if not values:
        return
    t = idempotency_keys
    rows = conn.execute(select(t.c.actor, t.c.key, t.c.body).where(t.c.status < 300)).all()
    for row in rows:
        scrubbed = _without(row.body, values)
        if scrubbed != row.body:
            conn.execute(
                update(t).where(t.c.actor == row.actor, t.c.key == row.key).values(body=scrubbed)
            )


def _without(value: Any, values: set[str]) -> Any:
    if isinstance(value, str):
        return None if value in values else value
    if isinstance(value, list):
        return [_without(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _without(item, values) for key, item in value.items()}
    return value
