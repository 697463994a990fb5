"""The log as JSON lines: `booking events export FILE` / `booking events import FILE`.

Export keeps everything, positions included, so an import into an empty database restores
the same log; the inline projections are rebuilt from it afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Engine, insert, text

from booking.progress import Progress
from events.sql import read_transaction, write_transaction
from events.store import events_table, head_position, read_all


def export_events(engine: Engine, out: IO[str], progress: Progress) -> int:
    count = 0
    with read_transaction(engine) as conn:
        position = 0
        while batch := read_all(conn, position, 5000):
            for e in batch:
                out.write(
                    json.dumps(
                        {
                            "position": e.position,
                            "stream": e.stream,
                            "version": e.version,
                            "type": e.type,
                            "schema_version": e.schema_version,
                            "recorded_at": e.recorded_at.isoformat(),
                            "data": e.data,
                            "metadata": e.metadata,
                        },
                        ensure_ascii=False,
                        separators=(",", ":"),
                    )
                    + "\n"
                )
            position = batch[-1].position
            count += len(batch)
            progress(len(batch))
    return count


def _rows(lines: IO[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["recorded_at"] = datetime.fromisoformat(row["recorded_at"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"line {number}: not an exported event ({error})") from None
        yield row


class NotEmpty(Exception):
    pass


def import_events(engine: Engine, lines: IO[str], progress: Progress) -> int:
    """Restore an export into a database whose log is empty; one transaction."""
    count = 0
    with write_transaction(engine) as conn:
        if head_position(conn) != 0:
            raise NotEmpty("the log is not empty; import restores into a fresh database")
        batch: list[dict[str, Any]] = []
        for row in _rows(lines):
            batch.append(row)
            if len(batch) == 2000:
                conn.execute(insert(events_table), batch)
                count += len(batch)
                progress(len(batch))
                batch = []
        if batch:
            conn.execute(insert(events_table), batch)
            count += len(batch)
            progress(len(batch))
        if conn.dialect.name == "postgresql":
            # Positions were given explicitly: move the sequence past them.
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('events', 'position'), :p, true)"),
                {"p": max(head_position(conn), 1)},
            )
    return count
