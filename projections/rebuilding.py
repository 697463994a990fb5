"""Rebuilding projections: replaying the log from zero into them, while bookings go on.

- `rebuild` replays the log: the inline projections into shadow tables swapped in at the end
  in one short transaction (`projections.shadowing`), the asynchronous ones into fresh
  tables swapped in when caught up, all of them in one pass over the log
  (`rebuild_asynchronous`) or one on its own (`rebuild_swapping`). Neither holds the
  append lock longer than its swap.
- `contents` lists a projection's rows, to check that a rebuilt one equals the live one.

The catch-up it ends with, and the checkpoints, are the feeding's (`projections.runner`).
Nothing here reads the clock: the checkpoints are written at the caller's `clock()`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.engine import Connection

from events.sql import write_transaction
from events.store import read_raw
from projections.base import Projection, checkpoints
from projections.batching import BatchProjection, paced
from projections.runner import (
    Clock,
    Progress,
    catch_up_once,
    checkpoint_name,
    open_checkpoint,
    read_checkpoint,
    set_checkpoint,
)
from projections.shadowing import rebuild_inline

REBUILD_SUFFIX = "__rebuild"
REBUILD_CACHE_KIB = 256 * 1024  # SQLite page cache of a rebuild's connection


@contextmanager
def _rebuild_connection(engine: Engine) -> Iterator[Connection]:
    """One writing connection for every batch of a rebuild: on SQLite its page cache (made
    large) then stays warm from one batch to the next (a new connection per batch re-reads
    the growing tables each time)."""
    with engine.connect() as conn:
        held = conn.execution_options(write=True)
        if held.dialect.name == "sqlite":
            held.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
            held.commit()
        yield held


def rebuild(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 20_000,
    progress: Progress | None = None,
    *,
    clock: Clock,
    parallel: bool = False,
) -> int:
    """Replay the log into the projections; returns the count of events read. Checkpoints
    are written at `clock()`.

    The inline projections are rebuilt into shadow tables and swapped in
    (`projections.shadowing.rebuild_inline`): bookings go on meanwhile and wait only for
    the swap. The asynchronous ones are rebuilt together into fresh tables while appends
    and the live runner go on (`rebuild_asynchronous`). With `parallel`, they are rebuilt
    in a process of their own (spawned: `clock` must pickle, as a module's function does)
    beside the inline ones; `progress` then counts the inline projections' events only."""
    inline = [p for p in projections if p.inline]
    later = [p for p in projections if not p.inline]
    if inline and later and parallel and _shareable(engine):
        url = engine.url.render_as_string(hide_password=False)
        names = [p.name for p in later]
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            beside = pool.submit(_rebuild_asynchronous_at, url, names, batch_size, clock)
            count = rebuild_inline(engine, inline, batch_size, progress)
            return count + beside.result()
    count = 0
    if inline:
        count += rebuild_inline(engine, inline, batch_size, progress)
    if later:
        count += rebuild_asynchronous(engine, later, batch_size, progress, clock=clock)
    return count


def _shareable(engine: Engine) -> bool:
    """Whether another process can open the same database (not an in-memory SQLite)."""
    return engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")


def _rebuild_asynchronous_at(url: str, names: list[str], batch_size: int, clock: Clock) -> int:
    """`rebuild_asynchronous` in a spawned process, on its own engine."""
    from events.sql import make_engine
    from projections.runner import by_name

    engine = make_engine(url)
    try:
        return rebuild_asynchronous(engine, by_name(names), batch_size, clock=clock)
    finally:
        engine.dispose()


def rebuild_asynchronous(
    engine: Engine,
    projections: Sequence[Projection],
    batch_size: int = 20_000,
    progress: Progress | None = None,
    *,
    clock: Clock,
) -> int:
    """Rebuild asynchronous projections from zero in one pass over the log while the live
    ones keep serving: each event is read and JSON-decoded once for all of them. Their fresh
    tables (`<table>__rebuild`) are filled batch by batch, each batch its own transaction,
    the projections holding what they build in memory across batches
    (`BatchProjection.hold`; nobody else writes these tables). Then each copy catches up
    and is swapped in under its live checkpoint's lock, as in `rebuild_swapping`."""
    copies = [_fresh(p) for p in projections]
    wanted = sorted(frozenset().union(*(c.event_types for c in copies)))
    with write_transaction(engine) as conn:
        for copy in copies:
            _create_tables(conn, copy, clock())
    for copy in copies:
        copy.hold()
    count = position = 0
    with _rebuild_connection(engine) as held:
        while True:
            with paced(held):
                batch = read_raw(held, position, batch_size, wanted)
                for copy in copies:
                    types = copy.event_types
                    copy.apply_batch(held, [r for r in batch if r.type in types])
            for copy in copies:
                copy.spill(held)  # what grew too large to hold, outside the batch's transaction
            if batch:
                position = batch[-1].position
                count += len(batch)
                if progress:
                    progress(len(batch))
            if len(batch) < batch_size:
                break
        for copy in copies:
            # In transactions of its own: on SQLite one long one would hold the one writer's
            # lock long enough for the inline projections' swap beside it to give up.
            copy.flush(held)
        with held.begin():
            for copy in copies:
                set_checkpoint(held, copy.checkpoint_name, position, clock())
    for copy, projection in zip(copies, projections, strict=True):
        count += _catch_up_and_swap(engine, copy, projection, batch_size, clock)
    return count


def _catch_up_and_swap(
    engine: Engine, copy: BatchProjection, projection: Projection, batch_size: int, clock: Clock
) -> int:
    """The copy fed the last events and swapped in, in one transaction that holds the live
    checkpoint (the live runner waits); the count of events it was fed."""
    count = 0
    with write_transaction(engine) as conn:
        now = clock()
        open_checkpoint(conn, checkpoint_name(projection), now, lock=True)  # the runner waits
        while (applied := catch_up_once(conn, copy, batch_size, now)) is not None:
            count += applied
        _swap_in(conn, copy, projection, read_checkpoint(conn, copy.checkpoint_name), now)
    return count


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
    with _rebuild_connection(engine) as held:
        while True:
            with paced(held):
                applied = catch_up_once(held, copy, batch_size, clock())
            count += applied or 0
            if applied and progress:
                progress(applied)
            if applied is None or applied < batch_size:
                break
    return count + _catch_up_and_swap(engine, copy, projection, batch_size, clock)


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
