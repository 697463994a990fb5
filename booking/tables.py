"""Tables the service keeps beside the log: accounts, tokens and idempotency records.

Organisations and users are also recorded as events (without personal data); these tables
hold what signing in needs — a user's e-mail and name only sealed (booking.privacy).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint

from events.sql import JSONDocument, UTCDateTime

metadata = MetaData()

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("type", String(32), nullable=False),
    Column("business_id", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    # The person who decides the organisation's membership requests beside staff, where
    # staff named one (OrganisationContactNamed); an id only.
    Column("contact_user_id", String(64)),
    Column("retired_at", UTCDateTime),  # no new members once retired (OrganisationRetired)
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    # E-mail and name are envelopes under the user's own key (booking.privacy); sign-in and
    # uniqueness go by a keyed hash of the address, which erasure clears.
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email_hash", String(64)),
    Column("role", String(16), nullable=False),
    Column("organisation_id", String(64), ForeignKey("organisations.id")),
    Column("language", String(8), nullable=False),
    Column("password_hash", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("erased_at", UTCDateTime),  # set when the person's data was crypto-shredded
    UniqueConstraint("email_hash", name="uq_users_email_hash"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    # sha256 of the token: tokens are long random strings, so a fast hash is enough.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("actor", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSONDocument, nullable=False),
    Column("headers", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

feed_tokens = Table(
    "feed_tokens",
    metadata,
    # A private iCalendar feed's secret is in its URL; only its sha256 is kept (as api_tokens).
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("scope", String(16), nullable=False),  # premises | organisation
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

feed_token_keys = Table(
    "feed_token_keys",
    metadata,
    # What a token's scope names (premises ids, or one organisation id), one row each, so
    # that a feed's token, owner and heads come back in one query.
    Column("token_id", String(36), ForeignKey("feed_tokens.id"), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("ordinal", Integer, nullable=False),
)
