"""Round trips: a transaction's reads sent together, its writes held back and sent with the
COMMIT in one go (issue 18).

On PostgreSQL every statement SQLAlchemy executes waits for its answer: a booking was 14
round trips (BEGIN, 11 statements, COMMIT), most of them writes whose answer nobody reads.
psycopg 3's pipeline mode sends statements without waiting; the server runs them in order
and answers them together. Two uses of it here, both with statements built and compiled by
SQLAlchemy Core (once per statement and set of parameter names) and run on the driver:

- `hold(conn)` holds every write given to `write` (INSERT, UPDATE, DELETE, and the events'
  INSERT … RETURNING, whose rows come back afterwards) until the transaction's end, where
  `finish` sends them and the COMMIT in one pipeline: one round trip. Anything else run on
  the connection through SQLAlchemy meanwhile first sends what is held (a listener on the
  engine, `events.sql.make_engine`), so every read still sees the transaction's own writes.
  Work that needs the writes' answers (the events' positions) waits in `then`.
- `read_together(conn, [(statement, params), …])` sends reads (and BEGIN, and an advisory
  lock before them: the server runs them in order) in one round trip and hands back their
  rows.

On SQLite there are no round trips; the held writes run on the driver, compiled once,
without SQLAlchemy's per-statement work, which there weighs as much as SQLite's own.
Without `hold`, `write` is `conn.execute`: the same statements, one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable, Insert
from sqlalchemy.sql.compiler import Compiled

# Told of every statement sent on the driver here (SQL, parameters): SQLAlchemy's events
# do not see them. For bench.booking_commands, which replays a booking's statements.
observer: Callable[[str, Any], None] | None = None

Params = Mapping[str, Any]


@dataclass
class _Statement:
    sql: str
    params: Any  # a dict for psycopg's named style, a tuple for SQLite's
    rows: list[Any] | None  # where a RETURNING's rows go
    many: bool = False  # `params` is a list of parameter sets, for one `executemany`


@dataclass
class Held:
    """What a transaction holds back: statements in order, and work for after them."""

    statements: list[_Statement] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    # Whether a write ran through SQLAlchemy meanwhile (not held: no way to drop it).
    wrote: bool = False
    # Rows read ahead in the first round trip, by what they answer (`remember`).
    known: dict[Any, Any] = field(default_factory=dict)
    # Reads to send with the next ones, and what to do with their answers (`read_soon`).
    pending: list[tuple[Ahead, Callable[[Any], None]]] = field(default_factory=list)

    def drop(self) -> None:
        """Forget the held writes and the work after them (a refusal before any write)."""
        self.statements.clear()
        self.after.clear()


# What each connection holds now (`hold`), by connection: every write and read of a booking
# looks it up (some 25 times), where `conn.info` goes through three of SQLAlchemy's
# properties each time (3 % of a booking's CPU on SQLite).
_HOLDING: dict[Connection, Held] = {}


@contextmanager
def hold(conn: Connection) -> Iterator[Held]:
    """Hold `conn`'s writes until `finish` (which the caller must reach before committing);
    on leaving, whatever is still held is dropped (the transaction rolls back)."""
    held = _HOLDING[conn] = Held()
    try:
        yield held
    finally:
        del _HOLDING[conn]


def holding(conn: Connection) -> bool:
    return conn in _HOLDING


def drop_held(conn: Connection) -> bool:
    """Forget what is held (a refusal): True when nothing was written otherwise, so that
    the transaction holds no write of this attempt; False when something was."""
    held = _HOLDING.get(conn)
    if held is None:
        return False
    held.drop()
    return not held.wrote


def write(
    conn: Connection,
    statement: Executable,
    params: Params | None = None,
    rows: list[Any] | None = None,
) -> None:
    """Run a write now, or hold it when `conn` holds writes. `rows`, when given, receives
    the rows of the statement's RETURNING (once it has run: see `then`)."""
    held = _HOLDING.get(conn)
    if held is None:
        result = conn.execute(statement, dict(params) if params is not None else None)
        if rows is not None:
            rows.extend(tuple(r) for r in result.all())
        return
    given = params or _NO_PARAMS
    sql, values = _bind(_plan(conn, statement, given), given)
    held.statements.append(_Statement(sql, values, rows))


def write_sql(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]] | None = None) -> None:
    """A write in the driver's SQL (LOCK TABLE; a many-row INSERT with positional
    parameters, one tuple per row), run now or held."""
    held = _HOLDING.get(conn)
    if held is None:
        if rows is None:
            conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql(sql, list(rows) if len(rows) != 1 else rows[0])
    elif rows is None:
        held.statements.append(_Statement(sql, None, None))
    elif conn.dialect.name != "postgresql" and len(rows) > 1:
        # SQLite runs the rows in C with one `executemany` (the 10,000 mails of an expiry
        # run: one call, where each row was an `execute` of its own from Python).
        held.statements.append(_Statement(sql, list(rows), None, many=True))
    else:
        held.statements.extend(_Statement(sql, row, None) for row in rows)


def remember(conn: Connection, key: Any, value: Any) -> None:
    """Keep what a read ahead found, for the code that would read it (`remembered`)."""
    held = _HOLDING.get(conn)
    if held is not None:
        held.known[key] = value


def remembered(conn: Connection, key: Any) -> Any:
    """What `remember` kept under `key` in this transaction, or None."""
    held = _HOLDING.get(conn)
    return None if held is None else held.known.get(key)


def before_statement(conn: Connection, statement: str) -> None:
    """The engine's listener (`events.sql.make_engine`): send what is held before any
    statement SQLAlchemy runs, and note a write that is not held."""
    held = _HOLDING.get(conn)
    if held is None:
        return
    if held.pending and not statement.startswith("BEGIN"):  # (SQLite's, first)
        read_ahead(conn, [])
    if held.statements:
        _run(conn, held, commit=False)
    if statement[:6].upper() in _WRITES:
        held.wrote = True


_WRITES = ("INSERT", "UPDATE", "DELETE")


def then(conn: Connection, work: Callable[[], None]) -> None:
    """Run `work` once the writes given so far have run (now, when none are held)."""
    held = _HOLDING.get(conn)
    if held is None or not held.statements:
        work()
    else:
        held.after.append(work)


def send_held(conn: Connection) -> None:
    """Run what `conn` holds now (before a read through SQLAlchemy), without committing."""
    held = _HOLDING.get(conn)
    if held is not None and held.statements:
        _run(conn, held, commit=False)


def finish(conn: Connection) -> None:
    """Run what is held and, on PostgreSQL, COMMIT in the same round trip (SQLAlchemy's
    own commit then finds nothing left to do). On SQLite the caller's commit follows."""
    held = _HOLDING.get(conn)
    if held is None:
        return
    if held.pending:
        read_ahead(conn, [])
    if conn.dialect.name == "postgresql":
        _run(conn, held, commit=True)
    elif held.statements or held.after:
        _run(conn, held, commit=False)


def _run(conn: Connection, held: Held, *, commit: bool) -> None:
    statements, after = held.statements, held.after
    held.statements, held.after = [], []
    held.wrote = held.wrote or bool(statements)
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        _run_pipelined(driver, statements, commit)
    else:
        cursor = driver.cursor()
        try:
            for s in statements:
                _execute(cursor, s)
        except driver.Error as error:
            raise _wrapped(error, s) from error
        finally:
            cursor.close()
    for work in after:
        work()


def _run_pipelined(driver: Any, statements: list[_Statement], commit: bool) -> None:
    import psycopg  # only on PostgreSQL

    cursors: list[tuple[Any, _Statement]] = []
    current = statements[0] if statements else None
    # A transaction begun by our own BEGIN (`read_together`) ends by our own COMMIT, queued
    # after the writes: the pipeline's one Sync answers them all. psycopg's `commit()` in a
    # pipeline syncs once for the COMMIT and once more on leaving the pipeline.
    ours = driver.autocommit and driver.pgconn.transaction_status != _IDLE
    # One cursor for every statement whose answer nobody reads (a cursor of its own costs
    # psycopg a cursor and an adapters map: 7 % of a booking's CPU with one per statement);
    # a statement whose rows are wanted gets its own, since each answer replaces the last.
    plain = None
    try:
        with driver.pipeline():
            for current in statements:
                if observer is not None:
                    observer(current.sql, current.params)
                if current.rows is None:
                    cursor = plain = plain or driver.cursor()
                else:
                    cursor = driver.cursor()
                    cursors.append((cursor, current))
                cursor.execute(current.sql, current.params)
            if commit and ours:
                (plain or driver.cursor()).execute("COMMIT")
            elif commit:
                driver.commit()  # queued after the writes, and the pipeline synced
        # Fetched after the pipeline's Sync, which brought every answer: a fetch inside it
        # costs a round trip of its own (a flush request) before the Sync's.
        for cursor, current in cursors:
            assert current.rows is not None
            current.rows.extend(cursor.fetchall())
    except psycopg.Error as error:
        raise _wrapped(error, current) from error


def _execute(cursor: Any, s: _Statement) -> None:
    if s.many:
        if observer is not None:
            for params in s.params:
                observer(s.sql, params)
        cursor.executemany(s.sql, s.params)
        return
    if observer is not None:
        observer(s.sql, s.params)
    if s.params is None:
        cursor.execute(s.sql)
    else:
        cursor.execute(s.sql, s.params)
    if s.rows is not None:
        s.rows.extend(tuple(r) for r in cursor.fetchall())


def run_driver_sql(conn: Connection, sql: str) -> None:
    """Run `sql`, which answers nothing, on `conn`'s driver now (SQLite's BEGIN)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        _execute(cursor, _Statement(sql, None, None))
    except conn.dialect.loaded_dbapi.Error as error:
        raise _wrapped(error, _Statement(sql, None, None)) from error
    finally:
        cursor.close()


def _wrapped(error: Exception, s: _Statement | None) -> exc.StatementError:
    """The driver's error as SQLAlchemy raises it (an IntegrityError stays one: the service
    retries on it as on a statement SQLAlchemy ran)."""
    base = next(c for c in type(error).__mro__ if c.__name__ == "Error")
    return exc.DBAPIError.instance(s.sql if s else None, s.params if s else None, error, base)


# --- reads in one round trip ---------------------------------------------------------------


def read_together(
    conn: Connection, reads: Sequence[tuple[Executable, Params | None]]
) -> list[list[Any]]:
    """Run `reads` in order and return each one's rows (tuples, through the columns' result
    types): on PostgreSQL in one round trip with the BEGIN, when the transaction has not
    started on the server yet; elsewhere one by one on the driver, compiled once (where
    SQLAlchemy's work per statement weighs as much as SQLite's). The transaction must have
    begun in SQLAlchemy's eyes (`write_transaction`; SQLite's BEGIN is SQLAlchemy's)."""
    send_held(conn)
    driver: Any = conn.connection.driver_connection
    plans = [(_plan(conn, s, p or _NO_PARAMS), p or _NO_PARAMS) for s, p in reads]
    bound = [(_bind(plan, p), plan.results) for plan, p in plans]
    if conn.dialect.name != "postgresql":
        cursor = driver.cursor()
        try:
            answers = []
            for (sql, params), processors in bound:
                if observer is not None:
                    observer(sql, params)
                cursor.execute(sql, params)
                answers.append([_processed(row, processors) for row in cursor.fetchall()])
            return answers
        except driver.Error as error:
            raise _wrapped(error, _Statement(sql, params, None)) from error
        finally:
            cursor.close()
    import psycopg

    found: list[list[Any]] = []
    current: _Statement | None = None
    begin = _begin_ourselves(driver)
    try:
        with driver.pipeline():
            cursors = [driver.cursor() for _ in bound]
            if begin:
                # On the first read's cursor: its answer replaces the BEGIN's (in order).
                (cursors[0] if cursors else driver.cursor()).execute("BEGIN")
            for ((sql, params), _), cursor in zip(bound, cursors, strict=True):
                current = _Statement(sql, params, None)
                if observer is not None:
                    observer(sql, params)
                cursor.execute(sql, params)
        # After the pipeline's one Sync, which brought every answer (see `_run_pipelined`).
        for cursor, (_, processors) in zip(cursors, bound, strict=True):
            rows = cursor.fetchall()  # (`description` is known only after the fetch)
            found.append([_processed(row, processors) for row in rows])
    except psycopg.Error as error:
        raise _wrapped(error, current) from error
    return found


def read_one(conn: Connection, statement: Executable, params: Params | None = None) -> list[Any]:
    """`read_together` of a single read. On PostgreSQL in autocommit (`statement_reads`, or
    a transaction begun by our own BEGIN) it is sent on its own, outside pipeline mode: one
    send and one wait, where a pipeline adds a Sync, a flush and its own bookkeeping —
    about a third of the client's CPU for a short read (bench.load's availability)."""
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name != "postgresql" or not driver.autocommit or holding(conn):
        return read_together(conn, [(statement, params)])[0]
    import psycopg

    given = params or _NO_PARAMS
    plan = _plan(conn, statement, given)
    sql, values = _bind(plan, given)
    if observer is not None:
        observer(sql, values)
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, values)
            return [_processed(row, plan.results) for row in cursor.fetchall()]
    except psycopg.Error as error:
        raise _wrapped(error, _Statement(sql, values, None)) from error


_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE


def _begin_ourselves(driver: Any) -> bool:
    """Whether the transaction is to begin with these reads, by our own BEGIN: psycopg's
    implicit BEGIN in a pipeline syncs at once, a round trip for the BEGIN alone. The
    connection is put in autocommit mode (a client-side flag: psycopg then sends no BEGIN of
    its own, and its `commit()` and `rollback()` still end the transaction the server has
    open); the pool puts it back on return (`events.sql.make_engine`)."""
    if driver.autocommit or driver.pgconn.transaction_status != _IDLE:
        return False
    driver.autocommit = True
    return True


@dataclass(frozen=True)
class Ahead:
    """A read to send in the first round trip: its statement and parameters, the key its
    consumer looks it up by (`remembered`), and how its rows become what it expects."""

    statement: Executable | None  # None: nothing to read, only `convert([])` to keep
    params: Params
    key: Any
    convert: Callable[[list[Any]], Any] | None = None


def read_soon(conn: Connection, read: Ahead, then: Callable[[Any], None]) -> None:
    """Send `read` with the transaction's next reads (`read_ahead`), or before its next
    statement or its commit, whichever comes first, and hand its answer to `then` (which
    may raise: nothing has been written yet). Only while `conn` holds its writes."""
    held = _HOLDING[conn]
    held.pending.append((read, then))


def read_ahead(conn: Connection, reads: Sequence[Ahead]) -> None:
    """Send `reads` together (`read_together`) and keep each one's answer for its consumer
    (`remembered`) until the transaction ends; only while `conn` holds its writes."""
    held = _HOLDING.get(conn)
    if held is None:
        return
    pending, held.pending = held.pending, []
    reads = [*(read for read, _ in pending), *reads]
    if not reads:
        return
    sent = [r for r in reads if r.statement is not None]
    answers = iter(read_together(conn, [(r.statement, r.params) for r in sent]))  # type: ignore[misc]
    for read in reads:
        rows = next(answers) if read.statement is not None else []
        remember(conn, read.key, read.convert(rows) if read.convert else rows)
    for read, then in pending:
        then(remembered(conn, read.key))


def _processed(row: tuple[Any, ...], processors: Sequence[Any] | None) -> tuple[Any, ...]:
    if processors is None:
        return tuple(row)
    return tuple([p(v) if p is not None else v for p, v in zip(processors, row, strict=True)])


# --- statements compiled once --------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A statement compiled once for one set of parameter names, and how a call's
    parameters become the driver's: per parameter, where in the call's mapping its value is
    (its key, else its name; None for a value of the statement's own, a literal say,
    processed here once), and its bind processor. What `Compiled.construct_params` and the
    bind processors work out for every execution, worked out once."""

    compiled: Compiled
    string: str
    # The driver's names of the parameters (psycopg's named style); None for positional.
    names: tuple[str, ...] | None
    # Per parameter: (the call's key, bind processor, the statement's own value).
    sources: tuple[tuple[str | None, Callable[[Any], Any] | None, Any], ...]
    # Positional SQL that names a parameter more than once (a UNION's two halves): which
    # parameter's value goes at each place, so that each value is processed once.
    places: tuple[int, ...] | None
    # The result columns' processors (None for a column that needs none); None when no
    # column needs one.
    results: tuple[Callable[[Any], Any] | None, ...] | None


# (statement's id, dialect, parameter names) → (statement, plan): the statement is kept so
# that its id is never reused. Only statements built once (module constants) come here.
# The names in the call's order: a tuple costs a third of a frozenset to make (a booking
# looks up nine plans, of up to 18 names); a call site that orders them otherwise only
# adds an entry, with the same plan.
_COMPILED: dict[tuple[int, str, tuple[str, ...]], tuple[Executable, _Plan]] = {}
_NO_PARAMS: Params = {}


def _plan(conn: Connection, statement: Executable, params: Params) -> _Plan:
    """The plan of `statement` for the names of `params` (made on first use)."""
    key = (id(statement), conn.dialect.name, tuple(params))
    found = _COMPILED.get(key)
    if found is None:
        names = frozenset(params)
        # An INSERT's VALUES are the parameters given; other statements name theirs.
        plain = isinstance(statement, Insert) and statement.select is None
        keys = sorted(names) if plain else None
        compiled: Any = statement.compile(dialect=conn.dialect, column_keys=keys)  # type: ignore[attr-defined]
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("expanding parameters are not supported here")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("Python-side column defaults are not supported here")
        processors = compiled._bind_processors
        escaped = compiled.escaped_bind_names or {}
        by_name = {}
        for bind, name in compiled.bind_names.items():
            if bind.callable:
                raise ValueError("parameters with a callable value are not supported here")
            processor = processors.get(name)
            if bind.key in names or name in names:
                source = (bind.key if bind.key in names else name, processor, None)
            elif bind.required:
                raise exc.ArgumentError(f"a value is required for the parameter {name!r}")
            else:
                source = (None, None, processor(bind.value) if processor else bind.value)
            by_name[name] = (escaped.get(name, name), source)
        once = list(by_name)
        places = None
        if compiled.positional and list(compiled.positiontup) != once:
            places = tuple(once.index(n) for n in compiled.positiontup)
        driver_names = None if compiled.positional else tuple(n for n, _ in by_name.values())
        sources = tuple(source for _, source in by_name.values())
        columns = getattr(compiled, "_result_columns", None) or []
        results = tuple(c[3]._cached_result_processor(conn.dialect, None) for c in columns)
        needed = results if any(p is not None for p in results) else None
        plan = _Plan(compiled, compiled.string, driver_names, sources, places, needed)
        found = _COMPILED[key] = (statement, plan)
    return found[1]


def _bind(plan: _Plan, params: Params) -> tuple[str, Any]:
    """The driver's SQL and parameters for the plan's statement with `params`, as
    SQLAlchemy's execution would send them (`Compiled.construct_params`, bind processors
    applied)."""
    values = [
        own if key is None else params[key] if processor is None else processor(params[key])
        for key, processor, own in plan.sources
    ]
    if plan.names is not None:
        return plan.string, dict(zip(plan.names, values, strict=True))
    if plan.places is not None:
        return plan.string, tuple([values[i] for i in plan.places])
    return plan.string, tuple(values)
