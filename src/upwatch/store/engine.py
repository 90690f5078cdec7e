"""Engines for SQLite (WAL, busy timeout) and PostgreSQL, from an ``UPWATCH_DATABASE_URL``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024

# A write transaction on SQLite asks for the write lock at BEGIN (BEGIN IMMEDIATE),
# so the busy timeout applies; a deferred BEGIN that later upgrades fails at once.
WRITE_OPTION = "upwatch_write"


def async_url(url: str) -> str:
    """``sqlite:///x`` and ``postgresql://...`` with the async driver named."""
    scheme, _, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database URL scheme: {scheme}")


def open_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        engine = create_async_engine(
            full,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # Transactions end explicitly (commit or rollback); reads run in autocommit.
            # Skipping the reset saves a thread hop per checkout.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine)
        return engine
    # On PostgreSQL the engine only migrates (everything else goes through the
    # connector's asyncpg pool), so it keeps no connection open between uses.
    return create_async_engine(full, poolclass=NullPool)


def open_sqlite_reader(url: URL) -> Engine:
    """A synchronous engine on the same SQLite file, for reads on the loop's thread.
    Its connections refuse to write (``query_only``)."""
    return _on_loop(url, "query_only = ON")


def open_sqlite_writer(url: URL) -> Engine:
    """A synchronous engine on the same SQLite file, for short write transactions on the
    loop's thread. Its busy timeout is 0: the connector waits for another process's
    write lock in asyncio sleeps, never blocking the loop in SQLite's busy handler. Its
    commits never checkpoint the WAL (a checkpoint held the loop 220-440 ms in the
    10,000-monitor soak): the connector checkpoints off the loop instead."""
    return _on_loop(url, "busy_timeout = 0", "wal_autocheckpoint = 0")


def _on_loop(url: URL, *pragmas: str) -> Engine:
    """SQLAlchemy emits no BEGIN on these: reads run in autocommit, and the connector
    begins its write transactions itself."""
    engine = create_engine(url.set(drivername="sqlite"), pool_reset_on_return=None)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _pragmas(dbapi_conn, *pragmas)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        pass

    return engine


def _pragmas(dbapi_conn: Any, *extra: str) -> None:
    # SQLAlchemy, not the sqlite3 module, emits BEGIN (see _on_begin).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode = WAL",
        f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
        "foreign_keys = ON",
        "synchronous = NORMAL",
        f"cache_size = -{SQLITE_CACHE_KIB}",
        *extra,
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _pragmas(dbapi_conn)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
