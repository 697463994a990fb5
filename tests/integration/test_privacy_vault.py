"""Crypto-shredding: envelopes open while the person's key exists and never after."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text

from booking.privacy import PREFIX, Vault, WrongSecret, person_keys
from events.sql import read_transaction, write_transaction


def test_sealed_text_opens_until_the_key_is_erased(engine: Engine) -> None:
    vault = Vault("a secret of the deployment")
    with write_transaction(engine) as conn:
        vault.create_key(conn, "person-1")
        sealed = vault.reader(conn).seal("person-1", "Matti Meikäläinen, 040 123 4567")
    assert sealed.startswith(PREFIX + ".person-1.")
    # The whole name and number: a few characters could occur in random ciphertext.
    assert "Matti Meikäläinen" not in sealed and "040 123 4567" not in sealed

    with read_transaction(engine) as conn:
        assert vault.reader(conn).open(sealed) == "Matti Meikäläinen, 040 123 4567"
        # Plain values pass through: public titles need no envelope.
        assert vault.reader(conn).open("Shakkikerho") == "Shakkikerho"

    with write_transaction(engine) as conn:
        assert vault.erase(conn, "person-1") is True
        assert vault.erase(conn, "person-1") is False
    with read_transaction(engine) as conn:
        assert vault.reader(conn).open(sealed) is None
        assert conn.execute(select(person_keys)).all() == []


def test_a_different_secret_cannot_open_the_keys(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        Vault("one secret").create_key(conn, "p")
        sealed = Vault("one secret").reader(conn).seal("p", "salainen")
    with read_transaction(engine) as conn, pytest.raises(WrongSecret):
        Vault("another secret").reader(conn).open(sealed)
    with read_transaction(engine) as conn, pytest.raises(WrongSecret):
        Vault("another secret").check(conn)
    with read_transaction(engine) as conn:
        Vault("one secret").check(conn)


def test_lookup_hash_is_stable_keyed_and_case_blind() -> None:
    vault = Vault("k")
    assert vault.lookup_hash("Matti@Example.FI ") == vault.lookup_hash("matti@example.fi")
    assert vault.lookup_hash("matti@example.fi") != Vault("other").lookup_hash("matti@example.fi")
    assert "matti" not in vault.lookup_hash("matti@example.fi")


def test_keys_are_stored_wrapped(engine: Engine) -> None:
    vault = Vault("k")
    with write_transaction(engine) as conn:
        vault.create_key(conn, "p")
        stored = conn.execute(text("SELECT wrapped_key FROM person_keys")).scalar_one()
    # nonce (12) + 32-byte key + 16-byte tag, base64: a wrapped key, not a raw one.
    assert len(stored) == len("x" * 80)
