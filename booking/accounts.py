"""Organisations, users, API tokens and passwords.

Tokens are random and stored only as SHA-256 hashes; passwords are hashed with Argon2id.
Each organisation and user is also an event (ids, role, language — no personal data).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from booking.domain.commands import ROLES, Actor
from booking.domain.errors import InvalidState, NotFound, RuleBroken
from booking.tables import api_tokens, organisations, users
from events.catalog import OrganisationRegistered, UserRegistered
from events.store import Metadata, append

ORGANISATION_TYPES = ("association", "company", "other")
LANGUAGES = ("fi", "en", "sv")
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
    conn: Connection, name: str, type_: str, business_id: str | None, actor: str | None
) -> str:
    if type_ not in ORGANISATION_TYPES:
        raise RuleBroken({"type": [f"One of: {', '.join(ORGANISATION_TYPES)}."]})
    if not name.strip():
        raise RuleBroken({"name": ["Give a name."]})
    organisation_id = str(uuid.uuid4())
    event = OrganisationRegistered(organisation_id, name.strip(), type_, business_id)
    recorded = append(conn, f"organisation-{organisation_id}", [event], 0, Metadata(actor=actor))
    conn.execute(
        insert(organisations).values(
            id=organisation_id,
            name=event.name,
            type=type_,
            business_id=business_id,
            created_at=recorded[0].recorded_at,
        )
    )
    return organisation_id


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
) -> NewUser:
    problems: dict[str, list[str]] = {}
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        problems["email"] = ["Not an e-mail address."]
    if role not in ROLES:
        problems["role"] = [f"One of: {', '.join(ROLES)}."]
    if language not in LANGUAGES:
        problems["language"] = [f"One of: {', '.join(LANGUAGES)}."]
    if role == "booker" and organisation_id is None:
        problems["organisation_id"] = ["A booker is a member of an organisation."]
    if (
        organisation_id is not None
        and not conn.execute(
            select(organisations.c.id).where(organisations.c.id == organisation_id)
        ).first()
    ):
        problems["organisation_id"] = ["No such organisation."]
    if problems:
        raise RuleBroken(problems)
    if conn.execute(select(users.c.id).where(users.c.email == email)).first():
        raise InvalidState("A user with that e-mail address exists.")
    user_id = str(uuid.uuid4())
    event = UserRegistered(user_id, role, organisation_id, language)
    recorded = append(conn, f"user-{user_id}", [event], 0, Metadata(actor=actor))
    now = recorded[0].recorded_at
    conn.execute(
        insert(users).values(
            id=user_id,
            email=email,
            name=name.strip(),
            role=role,
            organisation_id=organisation_id,
            language=language,
            password_hash=hash_password(password) if password else None,
            created_at=now,
        )
    )
    return NewUser(user_id, issue_token(conn, user_id, now))


def issue_token(conn: Connection, user_id: str, now: datetime | None = None) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            token_hash=token_hash(token), user_id=user_id, created_at=now or datetime.now(UTC)
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


def _user(row: object) -> User:
    return User(
        id=row.id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        organisation_id=row.organisation_id,  # type: ignore[attr-defined]
        language=row.language,  # type: ignore[attr-defined]
    )


def user_by_token(conn: Connection, token: str) -> User | None:
    row = conn.execute(
        select(users)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    return _user(row) if row else None


def user_by_id(conn: Connection, user_id: str) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"No user {user_id!r}.")
    return _user(row)


def user_by_password(conn: Connection, email: str, password: str) -> User | None:
    row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None or not password_matches(row.password_hash, password):
        return None
    return _user(row)
