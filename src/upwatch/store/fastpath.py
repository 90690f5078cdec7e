"""The checker's hot path in each driver's own SQL: claiming due monitors and writing
result batches, thousands of rows a second.

SQLAlchemy Core is used for everything else; here its per-row parameter processing
cost more than the database did (measured: bench/checker.py, README "Performance"), so
these statements go to the driver connection underneath the same transaction:
aiosqlite's ``executemany`` on SQLite, arrays with ``unnest`` and ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from upwatch.domain import CheckResult, DueCheck

ClaimRow = tuple[str, str, int, int, int, int, int]
LiveRow = tuple[str, int, int | None]  # id, generation, last_checked_at
# (id, n, checked_at, status, response_time_ms) / (id, n)
FreshRow = tuple[str, int, int, str, int | None]
StaleRow = tuple[str, int]

_RESULT_COLUMNS = ("id", "monitor_id", "checked_at", "status", "response_time_ms", "error")


class FastPath(Protocol):
    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]: ...

    async def move_due(self, raw: Any, moves: Sequence[tuple[str, int]]) -> None: ...

    async def lock_live(self, raw: Any, ids: Sequence[str]) -> list[LiveRow]: ...

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None: ...

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None: ...


def _due(row: Sequence[Any]) -> DueCheck:
    return DueCheck(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _result_row(r: CheckResult) -> tuple[Any, ...]:
    return (r.id, r.monitor_id, r.checked_at, r.status.value, r.response_time_ms, r.error)


class SqliteFastPath:
    """The caller holds a write transaction (BEGIN IMMEDIATE): nothing else writes."""

    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]:
        cursor = await raw.execute(
            "SELECT id, host, port, timeout_ms, interval_s, generation, next_due_at "
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
        cursor = await raw.execute(
            "SELECT id, generation, last_checked_at FROM monitors "  # noqa: S608
            f"WHERE is_enabled = 1 AND id IN ({marks})",
            tuple(ids),
        )
        rows = await cursor.fetchall()
        await cursor.close()
        return [(r[0], r[1], r[2]) for r in rows]

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None:
        await raw.executemany(
            "INSERT INTO check_results "
            "(id, monitor_id, checked_at, status, response_time_ms, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [_result_row(r) for r in results],
        )

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None:
        if fresh:
            await raw.executemany(
                "UPDATE monitors SET result_count = result_count + ?, last_checked_at = ?, "
                "last_status = ?, last_response_time_ms = ? WHERE id = ?",
                [(n, at, status, rt, i) for i, n, at, status, rt in fresh],
            )
        if stale:
            await raw.executemany(
                "UPDATE monitors SET result_count = result_count + ? WHERE id = ?",
                [(n, i) for i, n in stale],
            )


class PostgresFastPath:
    """One statement per step, whatever the batch size: arrays in, ``unnest`` out."""

    async def claim(self, raw: Any, horizon: int, limit: int) -> list[DueCheck]:
        # SKIP LOCKED: rows another worker is claiming right now are left to it.
        rows = await raw.fetch(
            "SELECT id, host, port, timeout_ms, interval_s, generation, next_due_at "
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
            "SELECT id, generation, last_checked_at FROM monitors "
            "WHERE id = ANY($1::varchar[]) AND is_enabled ORDER BY id FOR UPDATE",
            list(ids),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def insert_results(self, raw: Any, results: Sequence[CheckResult]) -> None:
        await raw.copy_records_to_table(
            "check_results", records=[_result_row(r) for r in results], columns=_RESULT_COLUMNS
        )

    async def update_monitors(
        self, raw: Any, fresh: Sequence[FreshRow], stale: Sequence[StaleRow]
    ) -> None:
        if fresh:
            await raw.execute(
                "UPDATE monitors AS m SET result_count = m.result_count + v.n, "
                "last_checked_at = v.at, last_status = v.status, last_response_time_ms = v.rt "
                "FROM unnest($1::varchar[], $2::int[], $3::bigint[], $4::varchar[], $5::int[]) "
                "AS v(id, n, at, status, rt) WHERE m.id = v.id",
                *(list(column) for column in zip(*fresh, strict=True)),
            )
        if stale:
            await raw.execute(
                "UPDATE monitors AS m SET result_count = m.result_count + v.n "
                "FROM unnest($1::varchar[], $2::int[]) AS v(id, n) WHERE m.id = v.id",
                [i for i, _ in stale],
                [n for _, n in stale],
            )
