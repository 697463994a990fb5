"""SQLite: the idempotency records in one B-tree (`WITHOUT ROWID`), keyed by (actor, key).

A rowid table with a composite primary key is two B-trees: the rows by rowid and the
key's index. Every keyed write (a booking with an Idempotency-Key) then wrote a page of
each into the WAL; clustered on the key it writes one, and the lookup reads one tree.
The table is made anew and its rows copied (SQLite cannot change a table's kind in
place). PostgreSQL has no rowid: nothing changes there.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = 'actor, "key", request_hash, status, body, headers, created_at'


def _remake(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The columns as 0001 made them (SQLAlchemy's SQLite DDL of those types).
    op.execute(
        "CREATE TABLE idempotency_keys__new ("
        "actor VARCHAR(64) NOT NULL, "
        '"key" VARCHAR(200) NOT NULL, '
        "request_hash VARCHAR(64) NOT NULL, "
        "status INTEGER NOT NULL, "
        "body JSON NOT NULL, "
        "headers JSON NOT NULL, "
        "created_at DATETIME NOT NULL, "
        'PRIMARY KEY (actor, "key"))' + ("" if with_rowid else " WITHOUT ROWID")
    )
    op.execute(
        f"INSERT INTO idempotency_keys__new ({COLUMNS}) "
        f'SELECT {COLUMNS} FROM idempotency_keys ORDER BY actor, "key"'
    )
    op.execute("DROP TABLE idempotency_keys")
    op.execute("ALTER TABLE idempotency_keys__new RENAME TO idempotency_keys")


def upgrade() -> None:
    _remake(with_rowid=False)


def downgrade() -> None:
    _remake(with_rowid=True)
