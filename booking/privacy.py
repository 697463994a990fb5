"""Personal data under per-person keys, so that erasing a person is deleting one key.

Each person gets a random 256-bit data key, stored wrapped (AES-GCM) under a key derived
from BOOKING_SECRET_KEY. Their names, e-mail addresses, phone numbers and free-text notes
are stored only as envelopes `pd1.<person_id>.<nonce+ciphertext>` — in events, projections
and tables alike. Erasure deletes the data key: every envelope of that person becomes
unreadable everywhere at once, including old exports and backups of the log (DESIGN.md
invariant 5, crypto-shredding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, has_app_context
from sqlalchemy import Column, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Connection

from booking.clock import Clock, system_clock
from events.sql import UTCDateTime

PREFIX = "pd1"
ERASED = None  # what reading an erased person's data gives

metadata = MetaData()

person_keys = Table(
    "person_keys",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("wrapped_key", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# Who was erased and when: so that no new key is ever made for them (no personal data).
erased_people = Table(
    "erased_people",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


class Vault:
    """Encrypts and decrypts one process's personal data; keys live in `person_keys`."""

    def __init__(self, secret_key: str, clock: Clock = system_clock) -> None:
        self._clock = clock  # when keys are made and people erased: the app's clock
        self._wrapping = AESGCM(_derive(secret_key, b"tilavaraus/person-keys/v1"))
        self._lookup = _derive(secret_key, b"tilavaraus/lookup-hash/v1")

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for finding a person by e-mail without storing the address."""
        normalised = value.strip().casefold().encode()
        return hmac.new(self._lookup, normalised, hashlib.sha256).hexdigest()

    def create_key(self, conn: Connection, person_id: str) -> None:
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = nonce + self._wrapping.encrypt(nonce, key, person_id.encode())
        conn.execute(
            insert(person_keys).values(
                person_id=person_id,
                wrapped_key=base64.b64encode(wrapped).decode(),
                created_at=self._clock(),
            )
        )

    def ensure_key(self, conn: Connection, person_id: str) -> None:
        """Create the person's key unless it exists (or existed: erased stays erased)."""
        exists = conn.execute(
            select(person_keys.c.person_id).where(person_keys.c.person_id == person_id)
        ).first()
        if exists is None and not self.was_erased(conn, person_id):
            self.create_key(conn, person_id)

    def was_erased(self, conn: Connection, person_id: str) -> bool:
        return (
            conn.execute(
                select(erased_people.c.person_id).where(erased_people.c.person_id == person_id)
            ).first()
            is not None
        )

    def erase(self, conn: Connection, person_id: str) -> bool:
        """Delete the person's key; True when there was one."""
        result = conn.execute(delete(person_keys).where(person_keys.c.person_id == person_id))
        if not self.was_erased(conn, person_id):
            conn.execute(insert(erased_people).values(person_id=person_id, erased_at=self._clock()))
        return bool(result.rowcount)

    def reader(self, conn: Connection) -> PersonalData:
        return PersonalData(self, conn)

    def seal_for(self, conn: Connection, person_id: str, text: str) -> str:
        """`text` sealed under the person's key (made on first use); empty stays empty."""
        if not text:
            return text
        self.ensure_key(conn, person_id)
        return self.reader(conn).seal(person_id, text)

    def unwrap(self, person_id: str, wrapped: str) -> AESGCM:
        raw = base64.b64decode(wrapped)
        try:
            return AESGCM(self._wrapping.decrypt(raw[:12], raw[12:], person_id.encode()))
        except InvalidTag:
            raise WrongSecret() from None

    def check(self, conn: Connection) -> None:
        """Refuse to start with a secret that cannot open the data keys already stored."""
        row = conn.execute(select(person_keys).limit(1)).first()
        if row is not None:
            self.unwrap(row.person_id, row.wrapped_key)


class WrongSecret(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "BOOKING_SECRET_KEY is not the secret the stored data keys were wrapped with: "
            "use the same secret in every process (and keep it backed up)"
        )


class PersonalData:
    """Seals and opens envelopes within one transaction, loading each key once."""

    def __init__(self, vault: Vault, conn: Connection) -> None:
        self._vault, self._conn = vault, conn
        self._keys: dict[str, AESGCM | None] = {}

    def preload(self, person_id: str, wrapped_key: str | None) -> None:
        """Use a wrapped key the caller already read (joined to its row): one query less."""
        if person_id not in self._keys:
            self._keys[person_id] = (
                None if wrapped_key is None else self._vault.unwrap(person_id, wrapped_key)
            )

    def _key(self, person_id: str) -> AESGCM | None:
        if person_id not in self._keys:
            wrapped = self._conn.execute(
                select(person_keys.c.wrapped_key).where(person_keys.c.person_id == person_id)
            ).scalar()
            self._keys[person_id] = (
                None if wrapped is None else self._vault.unwrap(person_id, wrapped)
            )
        return self._keys[person_id]

    def seal(self, person_id: str, text: str) -> str:
        """An envelope of `text` under the person's key (which must exist)."""
        key = self._key(person_id)
        if key is None:
            raise LookupError(f"no data key for person {person_id!r} (erased?)")
        nonce = os.urandom(12)
        sealed = nonce + key.encrypt(nonce, text.encode(), person_id.encode())
        return f"{PREFIX}.{person_id}.{base64.urlsafe_b64encode(sealed).decode()}"

    def open(self, envelope: str | None) -> str | None:
        """The text of an envelope; None when the person was erased. Plain text (not an
        envelope) is returned as it is, so empty or public values need no sealing."""
        if not envelope or not envelope.startswith(PREFIX + "."):
            return envelope
        _, person_id, payload = envelope.split(".", 2)
        key = self._key(person_id)
        if key is None:
            return ERASED
        sealed = base64.urlsafe_b64decode(payload)
        try:
            return key.decrypt(sealed[:12], sealed[12:], person_id.encode()).decode()
        except InvalidTag:
            return ERASED


# --- which vault: the app's, or the one made from the deployment's configuration ---------

_default: Vault | None = None


def use_by_default(vault: Vault) -> None:
    """Make `vault` the one code outside a request uses (tests, the CLI, the demo loader):
    create_app calls this, so helpers that make users seal with the app's own secret."""
    global _default
    _default = vault


def current_vault() -> Vault:
    """The running app's vault; else the process default; else one from BOOKING_SECRET_KEY
    (or the instance folder's key), as `booking.config.from_environment()` reads it."""
    if has_app_context() and "tilavaraus" in current_app.extensions:
        found: Vault = current_app.extensions["tilavaraus"].vault
        return found
    if _default is None:
        from booking.config import from_environment

        use_by_default(Vault(from_environment()["SECRET_KEY"]))
    assert _default is not None
    return _default
