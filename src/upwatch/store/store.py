"""The Store: every query upwatch runs, returning domain objects."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    BigInteger,
    Connection,
    Executable,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from upwatch import security
from upwatch.domain import (
    ApiKey,
    CheckResult,
    DueCheck,
    Monitor,
    MonitorChanges,
    NewMonitor,
    Observation,
    Plan,
    Principal,
    Status,
    Team,
    new_monitor_id,
    new_result_id,
    reschedule,
)
from upwatch.errors import (
    DatabaseUnavailable,
    KeyNotFound,
    LimitExceeded,
    NotFound,
    TeamExists,
    TeamNotFound,
)
from upwatch.store.engine import WRITE_OPTION, open_sqlite_reader
from upwatch.store.fastpath import (
    FastPath,
    FreshRow,
    LiveRow,
    PostgresFastPath,
    SqliteFastPath,
    StaleRow,
)
from upwatch.store.tables import api_keys, check_results, monitors, teams

log = logging.getLogger(__name__)

# A key's last use is written at most this often: a write per request would
# serialise every read on SQLite.
LAST_USED_GRANULARITY_MS = 60_000
TOUCH_WAIT_S = 0.1
PURGE_CHUNK_ROWS = 5_000
PG_FAST_POOL_SIZE = 10

Planner = Callable[[Sequence[DueCheck]], Sequence[Plan]]

_MONITOR_COLUMNS = (
    monitors.c.id,
    monitors.c.team_id,
    monitors.c.name,
    monitors.c.host,
    monitors.c.port,
    monitors.c.timeout_ms,
    monitors.c.interval_s,
    monitors.c.is_enabled,
    monitors.c.created_at,
    monitors.c.updated_at,
    monitors.c.last_checked_at,
    monitors.c.last_status,
    monitors.c.last_response_time_ms,
)
_RESULT_COLUMNS = (
    check_results.c.id,
    check_results.c.monitor_id,
    check_results.c.status,
    check_results.c.response_time_ms,
    check_results.c.error,
    check_results.c.checked_at,
)


_KEY_COLUMNS = (
    api_keys.c.id,
    teams.c.name,
    api_keys.c.name,
    api_keys.c.scopes,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)
_KEYS = select(*_KEY_COLUMNS).join(teams, teams.c.id == api_keys.c.team_id)

# The API's statements, built once: building a statement and its cache key costs more
# than SQLite takes to run it (profiled under bench/api.py).
_AUTHENTICATE = select(
    api_keys.c.id, api_keys.c.team_id, api_keys.c.scopes, api_keys.c.last_used_at
).where(api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
_OWNED = (monitors.c.id == bindparam("monitor_id")) & (monitors.c.team_id == bindparam("team_id"))
_GET_MONITOR = select(*_MONITOR_COLUMNS).where(_OWNED)
_LIST_MONITORS = (
    select(*_MONITOR_COLUMNS)
    .where(monitors.c.team_id == bindparam("team_id"))
    .order_by(monitors.c.created_at, monitors.c.id)
)
_MONITOR_EXISTS = select(monitors.c.id).where(_OWNED)
_RESULT_COUNT = select(monitors.c.result_count).where(_OWNED)
_RESULTS_PAGE = (
    select(*_RESULT_COLUMNS)
    .where(check_results.c.monitor_id == bindparam("monitor_id"))
    .order_by(check_results.c.checked_at.desc(), check_results.c.id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


# Converters read by position (asyncpg's records have no attribute access); each
# follows the column order of the statements that feed it.


def _monitor(row: Sequence[Any]) -> Monitor:
    """From _MONITOR_COLUMNS (further columns are ignored)."""
    return Monitor(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        bool(row[7]),
        row[8],
        row[9],
        row[10],
        Status(row[11]) if row[11] else None,
        row[12],
    )


def _result(row: Sequence[Any]) -> CheckResult:
    """From _RESULT_COLUMNS."""
    return CheckResult(row[0], row[1], Status(row[2]), row[3], row[4], row[5])


def _team(row: Sequence[Any]) -> Team:
    """From the teams table's columns, in table order."""
    return Team(row[0], row[1], row[2], row[3], row[4])


def _key(row: Sequence[Any]) -> ApiKey:
    """From _KEY_COLUMNS."""
    return ApiKey(row[0], row[1], row[2], tuple(row[3].split()), row[4], row[5], row[6], row[7])


class Store:
    """All SQL lives here. Methods take ``at`` (ms) where time matters: only callers
    read the clock."""

    def __init__(self, engine: AsyncEngine, *, default_max_monitors: int) -> None:
        self._engine = engine
        self._default_max = default_max_monitors
        self._pg = engine.dialect.name == "postgresql"
        self._fast: FastPath = PostgresFastPath() if self._pg else SqliteFastPath()
        self._write_lock = None if self._pg else asyncio.Lock()
        self._sync_reads = None if self._pg else open_sqlite_reader(engine.url)
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_pool_lock = asyncio.Lock()
        self._touching: dict[str, asyncio.Task[None]] = {}  # key id -> last-used write

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        for task in list(self._touching.values()):
            task.cancel()
        await asyncio.gather(*self._touching.values(), return_exceptions=True)
        if self._sync_reads is not None:
            self._sync_reads.dispose()
        if self._pg_pool is not None:
            await self._pg_pool.close()
        await self._engine.dispose()

    # -- plumbing --------------------------------------------------------------------

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Reads]:
        """Reads run in autocommit: no BEGIN and ROLLBACK round trips around them.

        On SQLite they run right here, on the event loop's thread, through the standard
        library's driver: an indexed read takes ~10 us there, against ~550 us of CPU
        through aiosqlite's thread hops (bench/README "Performance"). WAL readers never
        wait for writers, so this does not block on the checker's writes."""
        async with _mapped_errors():
            if self._sync_reads is not None:
                with self._sync_reads.connect() as sync_conn:
                    yield _SyncReads(sync_conn)
                return
            async with self._pg_connection() as raw:
                yield _PgReads(raw, self._engine.dialect)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with _mapped_errors(), self._writer_turn(), self._engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _raw_write(self) -> AsyncIterator[Any]:
        """A write transaction on the driver's own connection, for the fast path. (Not
        SQLAlchemy's: the asyncpg adapter opens its transaction lazily, at its first
        statement, which the fast path never sends through it.)"""
        if self._pg:
            async with _mapped_errors(), self._pg_connection() as raw, raw.transaction():
                yield raw
            return
        async with _mapped_errors(), self._writer_turn(), self._engine.connect() as conn:
            lite: Any = (await conn.get_raw_connection()).driver_connection
            try:
                await lite.execute("BEGIN IMMEDIATE")
                yield lite
            except BaseException:
                # Also when cancelled while BEGIN waited for the lock: aiosqlite's thread
                # still runs the BEGIN, and the connection would go back to the pool
                # inside a transaction (the next BEGIN on it fails). Its thread runs
                # statements in order, so this ROLLBACK comes after that BEGIN.
                with contextlib.suppress(Exception):
                    await asyncio.shield(lite.execute("ROLLBACK"))
                raise
            await lite.execute("COMMIT")

    @asynccontextmanager
    async def _pg_connection(self) -> AsyncIterator[Any]:
        """A connection from this Store's own asyncpg pool, for the hot paths: checking
        one out of SQLAlchemy's pool (with its pre-ping round trip) cost ~300 us of CPU
        against ~25 us for the query itself (bench/README "Performance").
        Any failure to get a connection means the database is unavailable (asyncpg
        reports a database that refuses connections in several ways)."""
        try:
            if self._pg_pool is None:
                async with self._pg_pool_lock:
                    if self._pg_pool is None:
                        url = self._engine.url.set(drivername="postgresql")
                        self._pg_pool = await asyncpg.create_pool(
                            url.render_as_string(hide_password=False),
                            min_size=1,
                            max_size=PG_FAST_POOL_SIZE,
                        )
            raw = await self._pg_pool.acquire()
        except Exception as exc:
            raise DatabaseUnavailable(f"database unavailable: {_short(exc)}") from exc
        try:
            yield raw
        finally:
            await self._pg_pool.release(raw)

    def _writer_turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        """On SQLite, this process's writers queue here, first come first served, rather
        than in SQLite's busy handler, which sleeps in growing steps and serves nobody
        in order (measured: API creates starved the checker's claims for seconds)."""
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._pg else sqlite.insert)(table)

    async def ping(self) -> bool:
        try:
            async with self._read() as conn:
                await conn.execute(text("SELECT 1"))
        except DatabaseUnavailable:
            return False
        return True

    # -- teams -----------------------------------------------------------------------

    async def create_team(self, name: str, max_monitors: int | None, *, at: int) -> Team:
        async with self._write() as conn:
            stmt = (
                self._insert(teams)
                .values(name=name, max_monitors=max_monitors, monitor_count=0, created_at=at)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(*teams.c)
            )
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise TeamExists(f"team {name!r} already exists")
        return _team(row)

    async def update_team(self, name: str, max_monitors: int | None) -> Team:
        async with self._write() as conn:
            stmt = (
                update(teams)
                .where(teams.c.name == name)
                .values(max_monitors=max_monitors)
                .returning(*teams.c)
            )
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise TeamNotFound(f"no team named {name!r}")
        return _team(row)

    async def list_teams(self) -> list[Team]:
        async with self._read() as conn:
            rows = (await conn.execute(select(teams).order_by(teams.c.name))).all()
        return [_team(r) for r in rows]

    def effective_limit(self, team: Team) -> int:
        return self._default_max if team.max_monitors is None else team.max_monitors

    async def _team_id(self, conn: AsyncConnection, name: str, *, at: int) -> int:
        """The id of team ``name``, creating the team if need be."""
        await conn.execute(
            self._insert(teams)
            .values(name=name, max_monitors=None, monitor_count=0, created_at=at)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        team_id = await conn.scalar(select(teams.c.id).where(teams.c.name == name))
        assert team_id is not None
        return int(team_id)

    # -- API keys --------------------------------------------------------------------

    async def create_key(
        self, *, team: str, name: str | None, scopes: Sequence[str], at: int
    ) -> tuple[ApiKey, str]:
        """A new key for ``team`` (created if need be). Returns the key and its secret:
        the secret exists only in this return value; the database keeps its hash."""
        secret = security.new_key()
        key = ApiKey(
            id=security.new_key_id(),
            team=team,
            name=name,
            scopes=tuple(scopes),
            prefix=security.visible_prefix(secret),
            created_at=at,
            last_used_at=None,
            revoked_at=None,
        )
        async with self._write() as conn:
            team_id = await self._team_id(conn, team, at=at)
            await conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    team_id=team_id,
                    name=name,
                    key_hash=security.hash_key(secret),
                    prefix=key.prefix,
                    scopes=" ".join(scopes),
                    created_at=at,
                )
            )
        return key, secret

    async def list_keys(self, team: str | None = None) -> list[ApiKey]:
        stmt = _KEYS.order_by(api_keys.c.created_at, api_keys.c.id)
        if team is not None:
            stmt = stmt.where(teams.c.name == team)
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_key(r) for r in rows]

    async def revoke_key(self, key_id: str, *, at: int) -> ApiKey:
        async with self._write() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = (await conn.execute(_KEYS.where(api_keys.c.id == key_id))).first()
        if row is None:
            raise KeyNotFound(f"no API key with id {key_id!r}")
        return _key(row)

    async def authenticate(self, key_hash: str, *, at: int) -> Principal | None:
        """The principal for an unrevoked key with this hash, or None. Read every time
        (no cache), so revocations and new keys take effect at once."""
        async with self._read() as conn:
            row = (await conn.execute(_AUTHENTICATE, {"key_hash": key_hash})).first()
        if row is None:
            return None
        key_id, team_id, scopes, last_used_at = row[0], row[1], row[2], row[3]
        if last_used_at is None or at - last_used_at >= LAST_USED_GRANULARITY_MS:
            await self._touch_key(key_id, at)
        return Principal(key_id, team_id, frozenset(scopes.split()), last_used_at)

    async def _touch_key(self, key_id: str, at: int) -> None:
        """Record the key's use. Bookkeeping only: the request waits for it briefly (it
        takes a millisecond), never for a busy database, which would make every read
        wait for the write lock; the write goes on in the background, one per key."""
        task = self._touching.get(key_id)
        if task is None:
            task = asyncio.create_task(self._write_last_used(key_id, at))
            self._touching[key_id] = task
            task.add_done_callback(lambda _: self._touching.pop(key_id, None))
        await asyncio.wait([task], timeout=TOUCH_WAIT_S)

    async def _write_last_used(self, key_id: str, at: int) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.id == key_id,
                        (api_keys.c.last_used_at.is_(None))
                        | (api_keys.c.last_used_at <= at - LAST_USED_GRANULARITY_MS),
                    )
                    .values(last_used_at=at)
                )
        except DatabaseUnavailable as exc:
            log.warning("could not record the use of key %s: %s", key_id, exc)

    # -- monitors --------------------------------------------------------------------

    async def create_monitor(self, team_id: int, new: NewMonitor, *, at: int) -> Monitor:
        monitor = Monitor(
            id=new_monitor_id(),
            team_id=team_id,
            name=new.name,
            host=new.host,
            port=new.port,
            timeout_ms=new.timeout_ms,
            interval_s=new.interval_s,
            is_enabled=new.is_enabled,
            created_at=at,
            updated_at=at,
            last_checked_at=None,
            last_status=None,
            last_response_time_ms=None,
        )
        async with self._write() as conn:
            # One conditional UPDATE takes the slot: it holds under any concurrency,
            # since PostgreSQL re-checks the condition on the locked row and SQLite
            # serialises writers.
            taken = await conn.execute(
                update(teams)
                .where(
                    teams.c.id == team_id,
                    teams.c.monitor_count < func.coalesce(teams.c.max_monitors, self._default_max),
                )
                .values(monitor_count=teams.c.monitor_count + 1)
            )
            if taken.rowcount != 1:
                raise LimitExceeded
            # The dataclass's fields are the table's columns; a new monitor is due at once.
            await conn.execute(insert(monitors).values(**asdict(monitor), next_due_at=at))
        return monitor

    async def get_monitor(self, team_id: int, monitor_id: str) -> Monitor:
        async with self._read() as conn:
            row = (
                await conn.execute(_GET_MONITOR, {"monitor_id": monitor_id, "team_id": team_id})
            ).first()
        if row is None:
            raise NotFound
        return _monitor(row)

    async def list_monitors(self, team_id: int) -> list[Monitor]:
        async with self._read() as conn:
            rows = (await conn.execute(_LIST_MONITORS, {"team_id": team_id})).all()
        return [_monitor(r) for r in rows]

    async def update_monitor(
        self, team_id: int, monitor_id: str, changes: MonitorChanges, *, at: int
    ) -> Monitor:
        async with self._write() as conn:
            stmt = select(*_MONITOR_COLUMNS, monitors.c.generation).where(
                monitors.c.id == monitor_id, monitors.c.team_id == team_id
            )
            if self._pg:
                stmt = stmt.with_for_update()
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound
            before = _monitor(row)
            plan = reschedule(before, changes, at)
            values: dict[str, Any] = {
                "name": changes.name,
                "host": changes.host,
                "port": changes.port,
                "timeout_ms": changes.timeout_ms,
                "interval_s": changes.interval_s,
                "is_enabled": changes.is_enabled,
            }
            values = {k: v for k, v in values.items() if v is not None}
            values["updated_at"] = at
            if plan.next_due_at is not None:
                values["next_due_at"] = plan.next_due_at
            if plan.new_generation:
                values["generation"] = row.generation + 1
            await conn.execute(update(monitors).where(monitors.c.id == monitor_id).values(values))
        return replace(
            before,
            **{k: v for k, v in values.items() if k in Monitor.__dataclass_fields__},
        )

    async def delete_monitor(self, team_id: int, monitor_id: str) -> None:
        async with self._write() as conn:
            gone = await conn.execute(
                delete(monitors).where(monitors.c.id == monitor_id, monitors.c.team_id == team_id)
            )
            if gone.rowcount != 1:
                raise NotFound
            await conn.execute(
                update(teams)
                .where(teams.c.id == team_id)
                .values(monitor_count=teams.c.monitor_count - 1)
            )

    # -- results ---------------------------------------------------------------------

    async def list_results(
        self, team_id: int, monitor_id: str, *, limit: int, offset: int
    ) -> tuple[list[CheckResult], int]:
        """A page of results, newest first, and the monitor's total result count."""
        owned = {"monitor_id": monitor_id, "team_id": team_id}
        async with self._read() as conn:
            total = await conn.scalar(_RESULT_COUNT, owned)
            if total is None:
                raise NotFound
            page = {"monitor_id": monitor_id, "limit": limit, "offset": offset}
            rows = (await conn.execute(_RESULTS_PAGE, page)).all()
        return [_result(r) for r in rows], int(total)

    async def require_monitor(self, team_id: int, monitor_id: str) -> None:
        """Raise NotFound unless the team has this monitor."""
        async with self._read() as conn:
            found = await conn.scalar(
                _MONITOR_EXISTS, {"monitor_id": monitor_id, "team_id": team_id}
            )
        if found is None:
            raise NotFound

    # -- the checker -----------------------------------------------------------------

    async def claim_due(self, *, horizon: int, limit: int, planner: Planner) -> list[Plan]:
        """Claim up to ``limit`` enabled monitors due by ``horizon``, and move each one's
        due time to what ``planner`` says. Moving the due time is the claim: no other
        worker sees the monitor until then (a worker that dies loses one check at most).
        On PostgreSQL, rows another worker is claiming are skipped, not waited for."""
        async with self._raw_write() as raw:
            due = await self._fast.claim(raw, horizon, limit)
            if not due:
                return []
            plans = list(planner(due))
            await self._fast.move_due(raw, [(p.check.monitor_id, p.next_due_at) for p in plans])
        return plans

    async def release(self, checks: Sequence[DueCheck]) -> None:
        """Give back claims that will not be run (shutdown): each monitor is due again at
        its old time, unless something else has moved it meanwhile."""
        if not checks:
            return
        async with self._write() as conn:
            await conn.execute(
                update(monitors)
                .where(
                    monitors.c.id == bindparam("b_id"),
                    monitors.c.next_due_at == bindparam("b_claimed"),
                )
                .values(next_due_at=bindparam("b_due")),
                [
                    {
                        "b_id": c.monitor_id,
                        "b_claimed": c.due_at + c.interval_s * 1000,
                        "b_due": c.due_at,
                    }
                    for c in checks
                ],
            )

    async def advance_due(self, moves: Sequence[tuple[str, int, int]]) -> int:
        """Move each (monitor id, generation, due time) on to that due time where it is
        earlier and the monitor is unchanged since: a worker that went on checking
        through a database outage tells the database what it already did. Returns how
        many moved."""
        if not moves:
            return 0
        async with self._write() as conn:
            result = await conn.execute(
                update(monitors)
                .where(
                    monitors.c.id == bindparam("b_id"),
                    monitors.c.generation == bindparam("b_generation"),
                    monitors.c.next_due_at < bindparam("b_due"),
                )
                .values(next_due_at=bindparam("b_due")),
                [{"b_id": i, "b_generation": g, "b_due": d} for i, g, d in moves],
            )
        return int(result.rowcount or 0)

    async def pull_in_far_future(self, *, at: int, slack_ms: int) -> int:
        """Bring back monitors due more than one interval (plus ``slack_ms``) after ``at``.
        Nothing schedules that far ahead, so they are there because the wall clock went
        back: each moves back by whole intervals to within one interval of ``at``, on
        its own grid, so it waits at most one interval more than it would have.
        Monitors that were spread stay spread; a jump of whole intervals changes only
        the dates. Idempotent, so several workers may do it. Returns how many moved."""
        now = literal(at, BigInteger)
        interval_ms = monitors.c.interval_s * 1000
        due = monitors.c.next_due_at
        async with self._write() as conn:
            result = await conn.execute(
                update(monitors)
                .where(due > now + interval_ms + slack_ms)
                .values(next_due_at=due - ((due - now) // interval_ms) * interval_ms)
            )
        return int(result.rowcount or 0)

    async def save_results(self, observations: Sequence[Observation]) -> list[CheckResult]:
        """Store a batch of observations in one transaction and update each monitor's
        last-check fields. Observations for deleted or disabled monitors, or claimed
        before a change of target, are dropped. Returns what was stored."""
        if not observations:
            return []
        ids = sorted({o.check.monitor_id for o in observations})
        async with self._raw_write() as raw:
            live = {row[0]: row for row in await self._fast.lock_live(raw, ids)}
            results = [
                CheckResult(
                    id=new_result_id(o.checked_at),
                    monitor_id=o.check.monitor_id,
                    status=o.outcome.status,
                    response_time_ms=o.outcome.response_time_ms,
                    error=o.outcome.error,
                    checked_at=o.checked_at,
                )
                for o in observations
                if (m := live.get(o.check.monitor_id)) is not None and m[1] == o.check.generation
            ]
            if not results:
                return []
            await self._fast.insert_results(raw, results)
            await self._fast.update_monitors(raw, *_monitor_updates(results, live))
        return results

    async def purge_results(self, *, before: int) -> int:
        """Delete results checked before ``before`` (ms), in chunks; returns how many."""
        total = 0
        while True:
            async with self._write() as conn:
                chunk = (
                    select(check_results.c.id)
                    .where(check_results.c.checked_at < before)
                    .limit(PURGE_CHUNK_ROWS)
                    .scalar_subquery()
                )
                rows = (
                    await conn.execute(
                        delete(check_results)
                        .where(check_results.c.id.in_(chunk))
                        .returning(check_results.c.monitor_id)
                    )
                ).all()
                per_monitor = Counter(r.monitor_id for r in rows)
                if per_monitor:
                    await conn.execute(
                        update(monitors)
                        .where(monitors.c.id == bindparam("b_id"))
                        .values(result_count=monitors.c.result_count - bindparam("b_n")),
                        [{"b_id": k, "b_n": n} for k, n in per_monitor.items()],
                    )
            total += len(rows)
            if len(rows) < PURGE_CHUNK_ROWS:
                return total


def _monitor_updates(
    results: Sequence[CheckResult], live: dict[str, LiveRow]
) -> tuple[list[FreshRow], list[StaleRow]]:
    """One row per monitor: how many results were added and, unless the stored last check
    is newer (batches may land out of order), the newest result as its last check.
    Returns (rows with a new last check, rows with a count only)."""
    newest: dict[str, CheckResult] = {}
    counts: Counter[str] = Counter()
    for r in results:
        counts[r.monitor_id] += 1
        if r.monitor_id not in newest or r.checked_at >= newest[r.monitor_id].checked_at:
            newest[r.monitor_id] = r
    fresh: list[FreshRow] = []
    stale: list[StaleRow] = []
    for monitor_id, r in newest.items():
        stored = live[monitor_id][2]
        if stored is None or stored <= r.checked_at:
            fresh.append(
                (monitor_id, counts[monitor_id], r.checked_at, r.status.value, r.response_time_ms)
            )
        else:
            stale.append((monitor_id, counts[monitor_id]))
    return fresh, stale


class Rows(Protocol):
    def first(self) -> Sequence[Any] | None: ...

    def all(self) -> Sequence[Sequence[Any]]: ...


class Reads(Protocol):
    """What read methods need of a connection: _SyncReads or _PgReads."""

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows: ...

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any: ...


class _SyncReads:
    """A synchronous connection behind the async read interface (SQLite reads)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows:
        return self._conn.execute(statement, parameters)

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        return self._conn.scalar(statement, parameters)


class _Records:
    def __init__(self, records: list[Any]) -> None:
        self._records = records

    def first(self) -> Sequence[Any] | None:
        return self._records[0] if self._records else None

    def all(self) -> Sequence[Sequence[Any]]:
        return self._records


class _PgReads:
    """Reads on an asyncpg connection: each statement compiled once by SQLAlchemy for
    PostgreSQL, then prepared and cached by asyncpg on each connection."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self._raw = raw
        self._dialect = dialect

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows:
        sql, args = _for_asyncpg(statement, self._dialect, parameters)
        return _Records(await self._raw.fetch(sql, *args))

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        sql, args = _for_asyncpg(statement, self._dialect, parameters)
        return await self._raw.fetchval(sql, *args)


@functools.lru_cache(maxsize=256)
def _compiled(statement: ClauseElement, dialect: Dialect) -> SQLCompiler:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    return compiled


def _for_asyncpg(
    statement: Executable, dialect: Dialect, parameters: Mapping[str, Any] | None
) -> tuple[str, list[Any]]:
    assert isinstance(statement, ClauseElement)
    compiled = _compiled(statement, dialect)
    given = parameters or {}
    names = compiled.positiontup or ()
    return str(compiled), [given[n] if n in given else compiled.params[n] for n in names]


@asynccontextmanager
async def _mapped_errors() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        failure = _unavailable(exc)
        if failure is exc:
            raise
        raise failure from exc


# asyncpg's errors that mean "no database (now)", whether asyncpg raised them itself
# (the hot paths use it directly) or SQLAlchemy wrapped them: connection failures, an
# administrator's shutdown, a database that refuses connections (ALLOW_CONNECTIONS
# false, or starting up), no connection slot free.
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


def _unavailable(exc: Exception) -> Exception:
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
            return DatabaseUnavailable(f"database unavailable: {_short(exc)}")
        seen = getattr(seen, "orig", None) or seen.__cause__
    return exc


def _short(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
