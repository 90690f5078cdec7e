"""One way in per database: a read primitive and a write transaction, both returning
named rows with the same Python types on SQLite and PostgreSQL.

Statements are SQLAlchemy Core, compiled once per dialect (`prepare`), and run on the
driver's own connection: on SQLite, the standard library's sqlite3 on the loop's thread
for reads and short writes, aiosqlite for bulk writes; asyncpg for everything on
PostgreSQL. SQLAlchemy's own execution layer is skipped because it cost more CPU than
the queries (bench/README "Performance"), but its type processing is not: bind
processors run on the way in and result processors on the way out, exactly as
SQLAlchemy would run them, and ``IN`` lists are expanded
(`SQLCompiler.construct_expanded_state`). So a JSON column reads as a dict and a
Boolean as a bool on both databases (tests/integration/test_store.py proves it), and
every aggregate module writes the same code for both.

Hand-written SQL for the hot paths (store/fastpath.py) runs on ``Tx.driver``, inside
the same transaction as the Core statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Float
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.type_api import TypeEngine

from upwatch import waiting
from upwatch.errors import DatabaseUnavailable
from upwatch.store import engine as engines

log = logging.getLogger(__name__)

PG_POOL_SIZE = 16
# A short write waiting for another process's write lock looks again after this, then
# twice as long each time up to the most (SQLite's own handler grows to 100 ms).
BUSY_FIRST_PAUSE_S = 0.0005
BUSY_MAX_PAUSE_S = 0.004
# Short writes commit without checkpointing the WAL (it copies pages into the database
# and syncs it: hundreds of milliseconds at times); after this many, a checkpoint runs
# on aiosqlite's thread. A short write adds a few pages: SQLite's own default is to
# checkpoint at 1,000 pages.
CHECKPOINT_EVERY_COMMITS = 100

# A row is a named tuple: by position or by column key (``row.id``), typed by its column.
Row = Any
Params = Mapping[str, Any]
_Processor = Callable[[Any], Any]


# -- statements ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one dialect, with what it takes to run it on the driver."""

    compiled: SQLCompiler
    sql: str
    names: tuple[str, ...]  # bind parameter names, in placeholder order
    defaults: Mapping[str, Any]  # values bound in the statement itself
    processors: Mapping[str, _Processor]  # bind processors by parameter name
    binds: tuple[_Processor | None, ...]  # the same, per placeholder
    expanding: bool  # IN lists: the text depends on the values
    row: Callable[[Sequence[Any]], Row]  # from a driver row to a named, typed row

    def arguments(self, params: Params | None) -> tuple[str, list[Any]]:
        """The SQL text and the positional driver arguments for these parameters."""
        given = params or {}
        if self.expanding:
            state = self.compiled.construct_expanded_state(dict(given))
            procs = {**self.processors, **state.processors}  # the latter: IN list items
            values = state.parameters
            names = state.positiontup or ()
            return state.statement, [
                procs[n](values[n]) if n in procs else values[n] for n in names
            ]
        args = [given[n] if n in given else self.defaults[n] for n in self.names]
        for i, process in enumerate(self.binds):
            if process is not None:
                args[i] = process(args[i])
        return self.sql, args


def prepare(statement: ClauseElement, dialect: Dialect, params: Params | None = None) -> Prepared:
    """The statement compiled for ``dialect``. An INSERT or UPDATE without its own
    ``.values()`` takes its columns from the parameters' keys, as SQLAlchemy does."""
    keys = tuple(params) if params is not None and statement.is_dml else ()
    return _prepare(statement, dialect, keys)


@functools.lru_cache(maxsize=512)
def _prepare(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> Prepared:
    """Compile once: the statements are module constants, so this is a lookup after the
    first call. (Building a statement and its cache key costs more than SQLite takes to
    run it: profiled under bench/api.py.)"""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) or None)
    assert isinstance(compiled, SQLCompiler)
    processors = {
        name: process
        for name, bind in compiled.binds.items()
        if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    }
    # The placeholder order, read once with blank values.
    blank: dict[str, Any] = {n: [] if b.expanding else None for n, b in compiled.binds.items()}
    names = tuple(compiled.construct_expanded_state(blank).positiontup or ())
    expanding = any(b.expanding or b.literal_execute for b in compiled.binds.values())
    return Prepared(
        compiled=compiled,
        sql=str(compiled),
        names=names,
        defaults=compiled.params,
        processors=processors,
        binds=tuple(processors.get(n) for n in names),
        expanding=expanding,
        row=_row_maker(statement, dialect),
    )


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> _Processor | None:
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, Float) and not impl.asdecimal:
        # Both drivers return a float already; asyncpg's processor would want the
        # result column's type OID, which a statement compiled ahead does not know.
        return None
    process: _Processor | None = impl.result_processor(dialect, None)
    return process


def _row_maker(statement: ClauseElement, dialect: Dialect) -> Callable[[Sequence[Any]], Row]:
    columns = list(getattr(statement, "exported_columns", ()))
    if not columns:
        return tuple
    keys = [getattr(c, "key", None) or f"c{i}" for i, c in enumerate(columns)]
    row_type: Any = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
    make: Callable[[Sequence[Any]], Row] = row_type._make
    procs = [(i, p) for i, c in enumerate(columns) if (p := _result_processor(c.type, dialect))]
    if not procs:
        return make

    def processed(raw: Sequence[Any]) -> Row:
        values = list(raw)
        for i, process in procs:
            values[i] = process(values[i])
        return make(values)

    return processed


# -- what aggregate modules see -----------------------------------------------------


class Reads(Protocol):
    """Reads: autocommit on the read primitive, inside the transaction on a Tx."""

    dialect: str  # "sqlite" or "postgresql", for the few statements written per dialect

    async def rows(self, statement: ClauseElement, params: Params | None = None) -> list[Row]: ...

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None: ...

    async def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any: ...


class Tx(Reads, Protocol):
    """One write transaction, shared by every aggregate's functions that take it: they
    commit together or not at all."""

    @property
    def driver(self) -> Any:
        """The driver's connection under this transaction, for store/fastpath.py."""

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""

    async def execute_many(self, statement: ClauseElement, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set, in one round trip where the driver can."""


class Connector(Protocol):
    name: str  # the dialect's: "sqlite" or "postgresql"

    def read(self) -> contextlib.AbstractAsyncContextManager[Reads]: ...

    def write(self, *, bulk: bool = False) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction. ``bulk``: one that may take longer than a request should
        wait for (the checker's batches, the fold, purges), which SQLite runs off the
        event loop; a short one (a request's) runs on it. PostgreSQL ignores it."""

    async def close(self) -> None: ...


def connector_for(engine: AsyncEngine) -> Connector:
    if engine.dialect.name == "postgresql":
        return PostgresConnector(engine)
    return SqliteConnector(engine)


# -- SQLite -------------------------------------------------------------------------


class _On:
    """What every driver's reads and transactions share: the connection, the dialect
    compiled for, and the parts written once in terms of the others."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self._raw = raw
        self._dialect = dialect
        self.dialect: str = dialect.name

    @property
    def driver(self) -> Any:
        return self._raw

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        raise NotImplementedError

    async def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any:
        row = await self.first(statement, params)
        return None if row is None else row[0]

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        raise NotImplementedError

    async def _executemany(self, sql: str, args: list[list[Any]]) -> None:
        raise NotImplementedError

    async def execute_many(self, statement: ClauseElement, params: Sequence[Params]) -> None:
        if not params:
            return
        p = prepare(statement, self._dialect, params[0])
        if p.expanding:  # the text may differ per parameter set
            for one in params:
                await self.execute(statement, one)
            return
        await self._executemany(p.sql, [p.arguments(one)[1] for one in params])


class _SqliteReads(_On):
    """sqlite3, synchronously on the loop's thread: an indexed read takes ~10 us here
    against ~550 us of CPU through aiosqlite's thread hops (bench/README
    "Performance"). WAL readers never wait for writers, so this does not block."""

    async def rows(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        return list(map(p.row, self._raw.execute(sql, args).fetchall()))

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        raw = self._raw.execute(sql, args).fetchone()
        return None if raw is None else p.row(raw)


class _SqliteTx(_SqliteReads):
    """sqlite3 on the loop's thread, inside BEGIN IMMEDIATE. Each statement through
    aiosqlite is a hop to its thread and back; a request's few indexed statements take
    less than those hops did (PUT 208-238/s → 468-556/s, docs/performance.md). Nothing
    else runs on the loop meanwhile unless the body awaits something else."""

    @property
    def driver(self) -> Any:
        return _AwaitableSqlite(self._raw)

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        return int(self._raw.execute(sql, args).rowcount)

    async def _executemany(self, sql: str, args: list[list[Any]]) -> None:
        self._raw.executemany(sql, args)


class _AwaitableSqlite:
    """sqlite3 behind the awaitable calls of aiosqlite's that store/fastpath.py makes,
    so that its statements run in a short transaction as in a bulk one."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> _AwaitableCursor:
        return _AwaitableCursor(self._raw.execute(sql, args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> _AwaitableCursor:
        return _AwaitableCursor(self._raw.executemany(sql, args))

    async def execute_fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._raw.execute(sql, args).fetchall()


class _AwaitableCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _SqliteBulkTx(_On):
    """aiosqlite, inside BEGIN IMMEDIATE: nothing else writes until it ends, and the
    loop goes on serving meanwhile."""

    async def rows(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        return list(map(p.row, await self._raw.execute_fetchall(sql, args)))

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        found = await self.rows(statement, params)
        return found[0] if found else None

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        cursor = await self._raw.execute(sql, args)
        return int(cursor.rowcount)

    async def _executemany(self, sql: str, args: list[list[Any]]) -> None:
        await self._raw.executemany(sql, args)


class SqliteConnector:
    """Reads on a synchronous engine's connections (``query_only``); short writes on
    another's, on the loop's thread; bulk writes on the async engine's, off it. Writers
    of this process take turns, first come first served."""

    name = "sqlite"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._reader = engines.open_sqlite_reader(engine.url)
        self._writer = engines.open_sqlite_writer(engine.url)
        # This process's writers queue here, first come first served, rather than in
        # SQLite's busy handler, which sleeps in growing steps and serves nobody in order
        # (measured: API creates starved the checker's claims for seconds).
        self._write_lock = asyncio.Lock()
        self._commits = 0  # short writes committed since the last checkpoint began
        self._checkpoint: asyncio.Task[None] | None = None
        self._closed = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reads]:
        async with mapped_errors():
            with self._reader.connect() as conn:
                raw = conn.connection.driver_connection
                assert isinstance(raw, sqlite3.Connection)
                waiting.ready()
                yield _SqliteReads(raw, self._dialect)

    def write(self, *, bulk: bool = False) -> contextlib.AbstractAsyncContextManager[Tx]:
        return self._bulk_write() if bulk else self._short_write()

    @asynccontextmanager
    async def _short_write(self) -> AsyncIterator[Tx]:
        async with mapped_errors(), self._write_lock:
            with self._writer.connect() as conn:
                raw = conn.connection.driver_connection
                assert isinstance(raw, sqlite3.Connection)
                await _begin_immediate(raw, engines.SQLITE_BUSY_TIMEOUT_MS / 1000)
                try:
                    waiting.ready()  # the write lock was the queue
                    yield _SqliteTx(raw, self._dialect)
                    raw.execute("COMMIT")
                except BaseException:  # the body's failure, a cancel, a failed COMMIT
                    with contextlib.suppress(Exception):
                        raw.execute("ROLLBACK")
                    if raw.in_transaction:  # it would hold SQLite's write lock in the pool
                        conn.invalidate()
                    raise
        self._commits += 1
        if (
            self._commits >= CHECKPOINT_EVERY_COMMITS
            and self._checkpoint is None
            and not self._closed
        ):
            self._commits = 0
            self._checkpoint = asyncio.create_task(self._checkpoint_off_loop())

    async def _checkpoint_off_loop(self) -> None:
        """PASSIVE: copies what no reader still needs and never waits for a lock. The
        first pass lets this process's writers go on; the second copies what they wrote
        meanwhile, with them held, so that the next write finds the whole WAL copied:
        only then does SQLite start the WAL again from its beginning (without that it
        grew by every commit: 4,808 pages after 901 creates). A failure is left to the
        next checkpoint."""
        try:
            async with self._engine.connect() as conn:
                lite: Any = (await conn.get_raw_connection()).driver_connection
                await lite.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
                async with self._write_lock:
                    await lite.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # the database went away: the next write says so
            log.debug("WAL checkpoint failed: %s", short(exc))
        finally:
            self._checkpoint = None

    @asynccontextmanager
    async def _bulk_write(self) -> AsyncIterator[Tx]:
        async with mapped_errors(), self._write_lock, self._engine.connect() as conn:
            lite: Any = (await conn.get_raw_connection()).driver_connection
            try:
                await lite.execute("BEGIN IMMEDIATE")
                waiting.ready()  # the write lock was the queue
                yield _SqliteBulkTx(lite, self._dialect)
            except BaseException:
                # Also when cancelled while BEGIN waited for the lock: aiosqlite's thread
                # still runs the BEGIN, and the connection would go back to the pool
                # inside a transaction (the next BEGIN on it fails). Its thread runs
                # statements in order, so this ROLLBACK comes after that BEGIN.
                with contextlib.suppress(Exception):
                    await asyncio.shield(lite.execute("ROLLBACK"))
                raise
            await lite.execute("COMMIT")

    async def close(self) -> None:
        self._closed = True
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        self._reader.dispose()
        self._writer.dispose()


async def _begin_immediate(raw: sqlite3.Connection, timeout_s: float) -> None:
    """BEGIN IMMEDIATE without blocking the loop: the connection's busy timeout is 0, so
    while another process holds SQLite's write lock this waits here, in short sleeps,
    instead of in SQLite's busy handler on the loop's thread."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pause_s = BUSY_FIRST_PAUSE_S
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or loop.time() >= deadline:
                raise
        await asyncio.sleep(pause_s)
        pause_s = min(2 * pause_s, BUSY_MAX_PAUSE_S)


# -- PostgreSQL ---------------------------------------------------------------------


class _PgTx(_On):
    """An asyncpg connection: each statement prepared and cached by asyncpg on it."""

    async def rows(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        return list(map(p.row, await self._raw.fetch(sql, *args)))

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        raw = await self._raw.fetchrow(sql, *args)
        return None if raw is None else p.row(raw)

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        p = prepare(statement, self._dialect, params)
        sql, args = p.arguments(params)
        status: str = await self._raw.execute(sql, *args)
        count = status.rsplit(" ", 1)[-1]  # "UPDATE 3", "INSERT 0 1", "DELETE 0"
        return int(count) if count.isdigit() else 0

    async def _executemany(self, sql: str, args: list[list[Any]]) -> None:
        await self._raw.executemany(sql, args)


async def _pg_codecs(raw: Any) -> None:
    """JSON in and out as SQLAlchemy's asyncpg dialect sets it up: its bind processor
    serialises, this codec parses (sqlalchemy/dialects/postgresql/asyncpg.py)."""
    await raw.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda b: json.loads(b.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await raw.set_type_codec(
        "jsonb",
        encoder=lambda s: b"\x01" + s.encode(),
        decoder=lambda b: json.loads(b[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


class PostgresConnector:
    """One asyncpg pool per Store: checking a connection out of SQLAlchemy's pool (with
    its pre-ping round trip) cost ~300 us of CPU against ~25 us for the query itself
    (bench/README "Performance"). Created on first use, so a Store can be built before
    the database is up."""

    name = "postgresql"

    def __init__(self, engine: AsyncEngine, *, pool_size: int = PG_POOL_SIZE) -> None:
        self._url = engine.url.set(drivername="postgresql")
        self._dialect = engine.dialect
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """Any failure to get a connection means the database is unavailable (asyncpg
        reports a database that refuses connections in several ways)."""
        try:
            if self._pool is None:
                async with self._pool_lock:
                    if self._pool is None:
                        self._pool = await asyncpg.create_pool(
                            self._url.render_as_string(hide_password=False),
                            min_size=1,
                            max_size=self._pool_size,
                            init=_pg_codecs,
                        )
            raw = await self._pool.acquire()
        except Exception as exc:
            raise DatabaseUnavailable(f"database unavailable: {short(exc)}") from exc
        waiting.ready()  # the pool was the queue
        try:
            yield raw
        finally:
            await self._pool.release(raw)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reads]:
        """Autocommit: no BEGIN and COMMIT round trips around a read."""
        async with mapped_errors(), self._connection() as raw:
            yield _PgTx(raw, self._dialect)

    @asynccontextmanager
    async def write(self, *, bulk: bool = False) -> AsyncIterator[Tx]:
        async with mapped_errors(), self._connection() as raw, raw.transaction():
            yield _PgTx(raw, self._dialect)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


# -- failures -----------------------------------------------------------------------


@asynccontextmanager
async def mapped_errors() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        failure = unavailable(exc)
        if failure is exc:
            raise
        raise failure from exc


# asyncpg's errors that mean "no database (now)", whether asyncpg raised them itself
# or SQLAlchemy wrapped them (migrations): connection failures, an administrator's
# shutdown, a database that refuses connections (ALLOW_CONNECTIONS false, or starting
# up), no connection slot free.
_PG_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InternalClientError,  # a connection left mid-operation by a dropped server
)
_DOWN = (
    OperationalError,
    sqlite3.OperationalError,
    InterfaceError,
    OSError,
    TimeoutError,
    *_PG_DOWN,
)


def unavailable(exc: Exception) -> Exception:
    """Connection-level failures become DatabaseUnavailable; anything else is a bug
    and passes through unchanged. SQLAlchemy wraps driver errors (``orig``, and the
    exception chain), so the whole chain is looked at."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: chains are short
        if seen is None:
            break
        if isinstance(seen, _DOWN) or (
            isinstance(seen, DBAPIError) and seen.connection_invalidated
        ):
            return DatabaseUnavailable(f"database unavailable: {short(exc)}")
        seen = getattr(seen, "orig", None) or seen.__cause__
    return exc


def short(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
