"""The checker's hot path in each driver's own SQL: claiming due monitors and writing
result batches, thousands of rows a second.

SQLAlchemy Core is used for everything else (store/connector.py); here its per-row
parameter processing cost more than the database did (measured: bench/checker.py,
README "Performance"), so these statements go to ``Tx.driver``, the driver connection
underneath the same transaction: aiosqlite's ``executemany`` on SQLite, arrays with
``unnest`` and ``COPY`` on PostgreSQL. Hand-written by necessity; the contract tests in
tests/integration/test_store.py run every one of them on both databases.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from upwatch.domain import CheckResult, DueCheck, IpFamily
from upwatch.folding import Folded

# check_results' columns, the one list: written here, read by store/results.py.
RESULT_COLUMNS = (
    "id",
    "monitor_id",
    "status",
    "response_time_ms",
    "error",
    "checked_at",
    "dns_time_ms",
    "connect_time_ms",
    "resolved_address",
)


# A monitor's state-machine columns (upwatch/incidents.py's Tracker), in this order.
TRACKER_COLUMNS = (
    "state",
    "state_changed_at",
    "open_incident_id",
    "run_failing",
    "run_length",
    "run_started_at",
    "cause_status",
    "cause_error",
)


class TrackerRow(NamedTuple):
    state: str
    state_changed_at: int | None
    open_incident_id: str | None
    run_failing: bool | None
    run_length: int
    run_started_at: int | None
    cause_status: str | None
    cause_error: str | None


class LiveRow(NamedTuple):
    """A monitor that results are being written for, locked until the commit."""

    id: str
    generation: int
    last_checked_at: int | None
    team_id: int
    confirmation_checks: int
    recovery_checks: int
    tracker: TrackerRow


_LIVE_COLUMNS = (
    "id, generation, last_checked_at, team_id, confirmation_checks, recovery_checks, "
    + ", ".join(TRACKER_COLUMNS)
)


def _live(row: Sequence[Any]) -> LiveRow:
    t = list(row[6:])
    t[3] = None if t[3] is None else bool(t[3])  # SQLite's 0/1
    return LiveRow(row[0], row[1], row[2], row[3], row[4], row[5], TrackerRow(*t))


class FreshRow(NamedTuple):
    """Results added to a monitor, the newest of which is its new last check, and the
    monitor's state after them."""

    id: str
    n: int
    checked_at: int
    status: str
    response_time_ms: int | None
    tracker: TrackerRow


class StaleRow(NamedTuple):
    """Results added to a monitor whose stored last check is newer."""

    id: str
    n: int


class FastPath(Protocol):
    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]: ...

    async def move_due(self, raw: Any, moves: Sequence[tuple[str, int]]) -> None: ...

    async def lock_live(self, raw: Any, ids: Sequence[str]) -> list[LiveRow]: ...

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None: ...

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None: ...

    async def advance_due(self, raw: Any, moves: Sequence[tuple[str, int, int]]) -> int: ...

    async def upsert_rollups(self, raw: Any, rows: Sequence[Folded]) -> None: ...


# rollups' columns as upwatch/folding.py's Folded rows hold them; the first three are the key.
ROLLUP_COLUMNS = (
    "monitor_id",
    "span",
    "start",
    "up",
    "down",
    "timeout",
    "rt_sum",
    "rt_min",
    "rt_max",
    "sketch",
    "rt_median",
)
_ROLLUP_CHANGES = ", ".join(f"{c} = excluded.{c}" for c in ROLLUP_COLUMNS[3:])
_ROLLUP_CONFLICT = f"ON CONFLICT (monitor_id, span, start) DO UPDATE SET {_ROLLUP_CHANGES}"


def fastpath_for(dialect: str) -> FastPath:
    return PostgresFastPath() if dialect == "postgresql" else SqliteFastPath()


_CLAIM_COLUMNS = "id, host, port, timeout_ms, interval_s, generation, next_due_at, ip_family"


def _due(row: Sequence[Any]) -> DueCheck:
    """From _CLAIM_COLUMNS: DueCheck's fields, in order."""
    i, host, port, timeout_ms, interval_s, generation, due_at, family = row
    return DueCheck(i, host, port, timeout_ms, interval_s, generation, due_at, IpFamily(family))


def _result_row(r: CheckResult) -> tuple[Any, ...]:
    """In RESULT_COLUMNS' order."""
    return (
        r.id,
        r.monitor_id,
        r.status.value,
        r.response_time_ms,
        r.error,
        r.checked_at,
        r.dns_time_ms,
        r.connect_time_ms,
        pack_address(r.resolved_address),
    )


def pack_address(address: str | None) -> bytes | None:
    """An IP address as its 4 or 16 bytes: the results table is the biggest thing
    upwatch keeps, and text would take up to 39."""
    return None if address is None else ipaddress.ip_address(address).packed


def unpack_address(packed: bytes | None) -> str | None:
    return None if packed is None else str(ipaddress.ip_address(packed))


class SqliteFastPath:
    """The caller holds a write transaction (BEGIN IMMEDIATE): nothing else writes."""

    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]:
        cursor = await raw.execute(
            f"SELECT {_CLAIM_COLUMNS} "  # noqa: S608 (a constant)
            "FROM monitors WHERE is_enabled = 1 AND next_due_at <= ? "
            "ORDER BY next_due_at LIMIT ?",
            (horizon, limit),
        )
        rows = await cursor.fetchall()
        await cursor.close()
        return [_due(r) for r in rows]

    async def move_due(self, raw: Any, moves: Sequence[tuple[str, int]]) -> None:
        await raw.executemany(
            "UPDATE monitors SET next_due_at = ? WHERE id = ?", [(n, i) for i, n in moves]
        )

    async def lock_live(self, raw: Any, ids: Sequence[str]) -> list[LiveRow]:
        marks = ",".join("?" * len(ids))  # only placeholders go into the text
        rows = await raw.execute_fetchall(
            f"SELECT {_LIVE_COLUMNS} FROM monitors "  # noqa: S608 (constants and ?s)
            f"WHERE is_enabled = 1 AND id IN ({marks})",
            tuple(ids),
        )
        return [_live(r) for r in rows]

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None:
        await raw.executemany(
            f"INSERT INTO check_results ({', '.join(RESULT_COLUMNS)}) "  # noqa: S608 (constants)
            f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
            [_result_row(r) for r in results],
        )

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None:
        if fresh:
            await raw.executemany(
                "UPDATE monitors SET result_count = result_count + ?, last_checked_at = ?, "  # noqa: S608 (constants)
                "last_status = ?, last_response_time_ms = ?, "
                + ", ".join(f"{c} = ?" for c in TRACKER_COLUMNS)
                + " WHERE id = ?",
                [(n, at, status, rt, *t, i) for i, n, at, status, rt, t in fresh],
            )
        if stale:
            await raw.executemany(
                "UPDATE monitors SET result_count = result_count + ? WHERE id = ?",
                [(n, i) for i, n in stale],
            )

    async def advance_due(self, raw: Any, moves: Sequence[tuple[str, int, int]]) -> int:
        cursor = await raw.executemany(
            "UPDATE monitors SET next_due_at = ? "
            "WHERE id = ? AND generation = ? AND next_due_at < ?",
            [(due, i, generation, due) for i, generation, due in moves],
        )
        return int(cursor.rowcount)  # summed over the parameter sets

    async def upsert_rollups(self, raw: Any, rows: Sequence[Folded]) -> None:
        await raw.executemany(
            f"INSERT INTO rollups ({', '.join(ROLLUP_COLUMNS)}) "  # noqa: S608 (constants)
            f"VALUES ({', '.join('?' * len(ROLLUP_COLUMNS))}) {_ROLLUP_CONFLICT}",
            rows,
        )


_PG_TRACKER_TYPES = ("varchar", "bigint", "varchar", "bool", "int", "bigint", "varchar", "varchar")
_PG_FRESH = (
    "UPDATE monitors AS m SET result_count = m.result_count + v.n, "  # noqa: S608 (constants)
    "last_checked_at = v.at, last_status = v.status, last_response_time_ms = v.rt, "
    + ", ".join(f"{c} = v.{c}" for c in TRACKER_COLUMNS)
    + " FROM unnest($1::varchar[], $2::int[], $3::bigint[], $4::varchar[], $5::int[], "
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate(_PG_TRACKER_TYPES, start=6))
    + ") AS v(id, n, at, status, rt, "
    + ", ".join(TRACKER_COLUMNS)
    + ") WHERE m.id = v.id"
)


_PG_ROLLUP_TYPES = (
    "varchar",
    "int",
    "bigint",
    "int",
    "int",
    "int",
    "bigint",
    "int",
    "int",
    "bytea",
    "float8",
)
_PG_ROLLUPS = (
    f"INSERT INTO rollups ({', '.join(ROLLUP_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608 (constants)
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate(_PG_ROLLUP_TYPES, start=1))
    + f") {_ROLLUP_CONFLICT}"
)


def _pg_fresh_arrays(fresh: Sequence[FreshRow]) -> list[list[Any]]:
    """One array per column of _PG_FRESH."""
    flat = [(i, n, at, status, rt, *t) for i, n, at, status, rt, t in fresh]
    return [list(column) for column in zip(*flat, strict=True)]


class PostgresFastPath:
    """One statement per step, whatever the batch size: arrays in, ``unnest`` out."""

    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]:
        # SKIP LOCKED: rows another worker is claiming right now are left to it.
        rows = await raw.fetch(
            f"SELECT {_CLAIM_COLUMNS} "  # noqa: S608 (a constant)
            "FROM monitors WHERE is_enabled AND next_due_at <= $1 "
            "ORDER BY next_due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            horizon,
            limit,
        )
        return [_due(r) for r in rows]

    async def move_due(self, raw: Any, moves: Sequence[tuple[str, int]]) -> None:
        await raw.execute(
            "UPDATE monitors AS m SET next_due_at = v.next_due_at "
            "FROM unnest($1::varchar[], $2::bigint[]) AS v(id, next_due_at) WHERE m.id = v.id",
            [i for i, _ in moves],
            [n for _, n in moves],
        )

    async def lock_live(self, raw: Any, ids: Sequence[str]) -> list[LiveRow]:
        # Locked in id order, so two writers never wait on each other in a cycle.
        rows = await raw.fetch(
            f"SELECT {_LIVE_COLUMNS} FROM monitors "  # noqa: S608 (a constant)
            "WHERE id = ANY($1::varchar[]) AND is_enabled ORDER BY id FOR UPDATE",
            list(ids),
        )
        return [_live(r) for r in rows]

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None:
        await raw.copy_records_to_table(
            "check_results", records=[_result_row(r) for r in results], columns=RESULT_COLUMNS
        )

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None:
        if fresh:
            await raw.execute(_PG_FRESH, *_pg_fresh_arrays(fresh))
        if stale:
            await raw.execute(
                "UPDATE monitors AS m SET result_count = m.result_count + v.n "
                "FROM unnest($1::varchar[], $2::int[]) AS v(id, n) WHERE m.id = v.id",
                [i for i, _ in stale],
                [n for _, n in stale],
            )

    async def advance_due(self, raw: Any, moves: Sequence[tuple[str, int, int]]) -> int:
        status: str = await raw.execute(
            "UPDATE monitors AS m SET next_due_at = v.due "
            "FROM unnest($1::varchar[], $2::int[], $3::bigint[]) AS v(id, generation, due) "
            "WHERE m.id = v.id AND m.generation = v.generation AND m.next_due_at < v.due",
            *(list(column) for column in zip(*moves, strict=True)),
        )
        return int(status.rsplit(" ", 1)[-1])

    async def upsert_rollups(self, raw: Any, rows: Sequence[Folded]) -> None:
        if rows:
            await raw.execute(_PG_ROLLUPS, *(list(column) for column in zip(*rows, strict=True)))
