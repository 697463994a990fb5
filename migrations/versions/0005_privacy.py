"""Per-person data keys (crypto-shredding), and users' e-mail and name sealed under them.

`users.email` and `users.name` become envelopes (text of any length), sign-in and uniqueness
go by `email_hash` (a keyed hash, cleared on erasure) and `erased_at` marks an erased person.
Existing users are sealed here with the deployment's secret (BOOKING_SECRET_KEY or the
instance folder's key, as the app reads it; `config.attributes["secret_key"]` overrides).
Booking notes already in the log cannot be rewritten (the log is append-only): notes written
before this revision stay readable there, only new ones are sealed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import events.sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Gives SQLite's unnamed unique constraint on users.email a name that batch mode can drop.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}

users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("email", sa.Text),
    sa.column("name", sa.Text),
    sa.column("email_hash", sa.String),
    sa.column("erased_at", events.sql.UTCDateTime(timezone=True)),
)


def _secret() -> str:
    given = context.config.attributes.get("secret_key")
    if given:
        return str(given)
    from booking.config import from_environment

    return str(from_environment()["SECRET_KEY"])


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "erased_people",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", events.sql.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_constraint("users_email_key", "users", type_="unique")
    with op.batch_alter_table("users", naming_convention=NAMING if sqlite else None) as batch:
        if sqlite:
            batch.drop_constraint("uq_users_email", type_="unique")
        batch.alter_column("email", type_=sa.Text(), existing_nullable=False)
        batch.alter_column("name", type_=sa.Text(), existing_nullable=False)
        batch.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("erased_at", events.sql.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_unique_constraint("uq_users_email_hash", ["email_hash"])
    _seal_existing_users()


def _seal_existing_users() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(users.c.id, users.c.email, users.c.name)).all()
    if not rows:
        return
    from booking.privacy import Vault

    vault = Vault(_secret())
    for row in rows:
        vault.ensure_key(conn, row.id)
        personal = vault.reader(conn)
        conn.execute(
            sa.update(users)
            .where(users.c.id == row.id)
            .values(
                email=personal.seal(row.id, row.email),
                name=personal.seal(row.id, row.name) if row.name else "",
                email_hash=vault.lookup_hash(row.email),
            )
        )


def downgrade() -> None:
    """Opens the envelopes again (an erased person's address becomes a placeholder)."""
    conn = op.get_bind()
    from booking.privacy import Vault

    rows = conn.execute(sa.select(users.c.id, users.c.email, users.c.name)).all()
    if rows:
        personal = Vault(_secret()).reader(conn)
        for row in rows:
            email = personal.open(row.email) or f"erased-{row.id}@invalid"
            name = personal.open(row.name) or ""
            conn.execute(
                sa.update(users).where(users.c.id == row.id).values(email=email, name=name)
            )
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email_hash", type_="unique")
        batch.drop_column("erased_at")
        batch.drop_column("email_hash")
        batch.alter_column("name", type_=sa.String(length=300), existing_nullable=False)
        batch.alter_column("email", type_=sa.String(length=320), existing_nullable=False)
        # The names the upgrade drops: SQLite's under NAMING, PostgreSQL's own default.
        sqlite = conn.dialect.name == "sqlite"
        batch.create_unique_constraint("uq_users_email" if sqlite else "users_email_key", ["email"])
    op.drop_table("erased_people")
    op.drop_table("person_keys")
