"""Rebuilding projections: replaying the log from zero into them.

- `rebuild` replays the log: inline projections in one transaction, asynchronous ones into
  fresh tables that are swapped in when caught up (`rebuild_swapping`); all of them
  together in one pass over the log.
- `contents` lists a projection's rows, to check that a rebuilt one equals the live one.

The catch-up it ends with, and the checkpoints, are the feeding's (`projections.runner`).
Nothing here reads the clock: the checkpoints are written at the caller's `clock()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, bindparam, delete, select, text
from sqlalchemy.engine import Connection

from events.decoding import event_of
from events.sql import write_transaction
from events.store import head_position, read_raw
from projections.base import Projection, checkpoints
from projections.batching import BatchProjection
from projections.runner import (
    Clock,
    Progress,
    catch_up_once,
    checkpoint_name,
    open_checkpoint,
    read_checkpoint,
    set_checkpoint,
)

REBUILD_SUFFIX = "__rebuild"
REBUILD_CACHE_KIB = 256 * 1024  # SQLite page cache of a rebuild's connection


def rebuild(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 20_000,
    progress: Progress | None = None,
    *,
    clock: Clock,
) -> int:
    """Replay the log into the projections; returns the count of events read. Checkpoints
    are written at `clock()`.

    With inline projections among them, everything is rebuilt in one pass and one
    transaction (`_rebuild_in_one_pass`): appends wait on the append lock meanwhile, so the
    inline projections' read-your-writes promise holds. Asynchronous ones alone are rebuilt
    into fresh tables batch by batch while appends go on, and swapped in, one after the
    other (`rebuild_swapping`).
    """
    inline = [p for p in projections if p.inline]
    later = [p for p in projections if not p.inline]
    if inline:
        return _rebuild_in_one_pass(engine, inline, later, batch_size, progress, clock)
    return sum(rebuild_swapping(engine, p, batch_size, progress, clock=clock) for p in later)


def _rebuild_in_one_pass(
    engine: Engine,
    inline: Sequence[Projection],
    later: Sequence[Projection],
    batch_size: int,
    progress: Progress | None,
    clock: Clock,
) -> int:
    """Each event is read and JSON-decoded once for all the projections, and decoded into
    an event (without marshmallow: `events.decoding`) once for all inline ones. Inline
    projections are emptied and replay every batch in place (on SQLite without the indexes
    they name in `rebuild_drops`, built again at the end); asynchronous ones fill fresh
    tables, holding what they build in memory across batches (`BatchProjection.hold`), and
    are swapped in at the end of the same transaction."""
    copies = [_fresh(p) for p in later]
    for_inline = frozenset().union(*(p.handled_types() for p in inline))
    wanted = sorted(for_inline.union(*(p.handled_types() for p in later)))
    count = 0
    with write_transaction(engine) as conn, _large_cache(conn):
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
        dropped = _drop_indexes(conn, inline)
        for projection in inline:
            projection.clear(conn)
        for copy in copies:
            _create_tables(conn, copy, clock())
            copy.hold()  # its tables are fresh and filled in this transaction alone
        position = 0
        while batch := read_raw(conn, position, batch_size, wanted):
            pairs = [(event_of(r), r) for r in batch if r.type in for_inline]
            for projection in inline:
                projection.replay(conn, pairs)
            for copy in copies:
                types = copy.event_types
                copy.apply_batch(conn, [r for r in batch if r.type in types])
            position = batch[-1].position
            count += len(batch)
            if progress:
                progress(len(batch))
        for copy in copies:
            copy.flush(conn)
        for sql in dropped:
            conn.exec_driver_sql(sql)
        head = head_position(conn)  # no append can commit while we hold the append lock
        now = clock()
        for copy, projection in zip(copies, later, strict=True):
            # The live runner waits on this lock until the swap commits.
            open_checkpoint(conn, checkpoint_name(projection), now, lock=True)
            _swap_in(conn, copy, projection, head, now)
    return count


def _drop_indexes(conn: Connection, projections: Sequence[Projection]) -> list[str]:
    """On SQLite, drop the projections' `rebuild_drops` indexes for the replay; the
    statements that make them again, as the database had them. (Not on PostgreSQL: there
    DROP INDEX would lock readers out of the table until the rebuild commits, where now they
    go on reading the old rows.)"""
    names = [index.name for p in projections for index in p.rebuild_drops]
    if conn.dialect.name != "sqlite" or not names:
        return []
    found = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN :names"
        ).bindparams(bindparam("names", expanding=True)),
        {"names": names},
    ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def _fresh(projection: Projection) -> BatchProjection:
    if not isinstance(projection, BatchProjection):
        raise TypeError(f"{projection.name} cannot be rebuilt into fresh tables")
    return projection.fresh(REBUILD_SUFFIX)


def _create_tables(conn: Connection, copy: BatchProjection, now: datetime) -> None:
    """The copy's tables, empty, and its checkpoint at 0 (leftovers of an interrupted
    rebuild are dropped)."""
    for table in reversed(copy.tables):
        table.drop(conn, checkfirst=True)
    for table in copy.tables:
        table.create(conn)
    conn.execute(delete(checkpoints).where(checkpoints.c.name == copy.checkpoint_name))
    open_checkpoint(conn, copy.checkpoint_name, now)


def _swap_in(
    conn: Connection, copy: BatchProjection, live: Projection, position: int, now: datetime
) -> None:
    """The copy's tables replace the live ones, which then stand at `position`."""
    for fresh, table in zip(copy.tables, live.tables, strict=True):
        _swap(conn, fresh.name, table.name)
    set_checkpoint(conn, checkpoint_name(live), position, now)
    conn.execute(delete(checkpoints).where(checkpoints.c.name == copy.checkpoint_name))


@contextmanager
def _large_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache that holds the tables a rebuild fills (the default 2 MB
    re-reads their index pages from the file for every insert), for the rebuild only."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


def rebuild_swapping(
    engine: Engine,
    projection: Projection,
    batch_size: int = 20_000,
    progress: Progress | None = None,
    *,
    clock: Clock,
) -> int:
    """Rebuild an asynchronous projection from zero while the live one keeps serving.

    Its tables are created afresh as `<table>__rebuild` (with a checkpoint of that name) and
    filled batch by batch, each batch its own transaction, so appends and the live runner go
    on meanwhile and an interrupted rebuild simply starts again. Once the copy is nearly
    caught up, one transaction locks the live checkpoint (the live runner waits), feeds the
    copy the last events, drops the live tables, renames the copies (and their indexes) to
    the live names and moves the checkpoint. Renaming tables inside a transaction works
    alike on SQLite and PostgreSQL, and readers see either the old tables or the new ones.
    """
    copy = _fresh(projection)
    with write_transaction(engine) as conn:
        _create_tables(conn, copy, clock())
    count = 0
    # One connection for every batch: on SQLite its page cache then stays warm from one
    # batch to the next (a new connection per batch re-reads the growing tables each time).
    with engine.connect() as held:
        held = held.execution_options(write=True)
        if held.dialect.name == "sqlite":
            held.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
            held.commit()
        while True:
            with held.begin():
                applied = catch_up_once(held, copy, batch_size, clock())
            count += applied or 0
            if applied and progress:
                progress(applied)
            if applied is None or applied < batch_size:
                break
    with write_transaction(engine) as conn:
        now = clock()
        open_checkpoint(conn, checkpoint_name(projection), now, lock=True)  # the runner waits
        while (applied := catch_up_once(conn, copy, batch_size, now)) is not None:
            count += applied
        _swap_in(conn, copy, projection, read_checkpoint(conn, copy.checkpoint_name), now)
    return count


def _swap(conn: Connection, fresh: str, live: str) -> None:
    """Replace table `live` by table `fresh`, indexes included, in the caller's transaction."""
    conn.execute(text(f'DROP TABLE IF EXISTS "{live}"'))
    conn.execute(text(f'ALTER TABLE "{fresh}" RENAME TO "{live}"'))
    if conn.dialect.name == "postgresql":
        names = conn.execute(
            text(
                "SELECT indexname FROM pg_indexes "
                "WHERE tablename = :t AND schemaname = current_schema()"
            ),
            {"t": live},
        ).scalars()
        for name in names:
            if REBUILD_SUFFIX in name:
                renamed = name.replace(REBUILD_SUFFIX, "")
                conn.execute(text(f'ALTER INDEX "{name}" RENAME TO "{renamed}"'))
        return
    # SQLite renames a table's automatic indexes with it; named ones must be made again.
    found = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
        {"t": live},
    ).all()
    for name, sql in found:
        if sql and REBUILD_SUFFIX in name:
            conn.execute(text(f'DROP INDEX "{name}"'))
            conn.execute(text(sql.replace(REBUILD_SUFFIX, "")))


def contents(conn: Connection, projection: Projection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the projection's tables, sorted: to check that a rebuild equals it."""
    found = {}
    suffix = projection.suffix if isinstance(projection, BatchProjection) else ""
    for table in projection.tables:
        rows = conn.execute(select(table)).all()
        found[table.name.removesuffix(suffix) if suffix else table.name] = sorted(
            (tuple(row) for row in rows), key=repr
        )
    return found
