"""Message threads as rows. Bodies stay envelopes; they are opened only for a reader who may
see the thread."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text, insert
from sqlalchemy.engine import Connection

from events.catalog import MessagePosted
from events.sql import UTCDateTime
from events.store import RecordedEvent
from projections.base import Projection, handles, metadata

messages_table = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("thread_kind", String(16), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("author_id", String(64), nullable=False),
    Column("author_role", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("posted_at", UTCDateTime, nullable=False),
    Index("ix_messages_thread", "thread_kind", "thread_id", "posted_at"),
)


class Messages(Projection):
    name = "messages"
    tables = (messages_table,)
    inline = True
    needs_position = False

    @handles(MessagePosted)
    def posted(self, conn: Connection, e: MessagePosted, rec: RecordedEvent) -> None:
        conn.execute(
            insert(messages_table).values(
                id=e.message_id,
                thread_kind=e.thread_kind,
                thread_id=e.thread_id,
                author_id=e.author_id,
                author_role=e.author_role,
                body=e.body,
                posted_at=e.posted_at,
            )
        )
