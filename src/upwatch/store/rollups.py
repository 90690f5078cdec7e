"""Rollups: per monitor, hour and UTC day, the check counts and a response-time sketch
(SPEC §9), so that statistics over a year read a year of days, not of checks.

Exactly once, by construction: each batch of results writes one ``rollup_pending`` row
in its own transaction (``add_pending``), and the compactor folds pending rows into the
rollups and deletes them in one transaction (``Rollups.compact``), one process at a
time (``rollup_lock``). A crash on either side rolls back both halves together, and a
result written late (after an outage) is folded into the hour it was checked in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, insert, select

from upwatch import folding
from upwatch.domain import CheckResult
from upwatch.stats import DAY_MS, HOUR_MS
from upwatch.store.connector import Connector, Reads, Row, Tx
from upwatch.store.fastpath import FastPath
from upwatch.store.tables import monitors, rollup_lock, rollup_pending, rollups

HOUR_S, DAY_S = HOUR_MS // 1000, DAY_MS // 1000
SPANS_S = (HOUR_S, DAY_S)
# Pending rows folded per transaction. The fold holds SQLite's one write lock while it
# writes, and API writes wait for it. Each transaction writes the rollups of nearly
# every monitor its batches name, so smaller ones cost more in all. On the
# 10,000-monitor soak (one run each): 200 held the lock ~290 ms a transaction, PUT p99
# 257 ms, lateness p99 103 ms; 50 held it ~105 ms, PUT p99 126 ms, lateness p99 11 ms,
# for ~1.4 x the lock time in all.
COMPACT_BATCHES = 50
# Between two of its transactions the fold lets go of SQLite's write lock for this
# long, so that writers waiting for it (an API write looks again within 4 ms) get in.
COMPACT_PAUSE_S = 0.01

_STATUS_CODES = {"up": folding.UP, "down": folding.DOWN, "timeout": folding.TIMEOUT}

_ADD_PENDING = insert(rollup_pending).values(results=bindparam("b_results"))
_LOCK = select(rollup_lock.c.id).where(rollup_lock.c.id == 1).with_for_update()
_PENDING = (
    select(rollup_pending.c.id, rollup_pending.c.results)
    .order_by(rollup_pending.c.id)
    .limit(bindparam("b_limit"))
)
_DONE = delete(rollup_pending).where(rollup_pending.c.id.in_(bindparam("b_ids", expanding=True)))
_LIVE = select(monitors.c.id).where(monitors.c.id.in_(bindparam("b_ids", expanding=True)))
_COLUMNS = (
    rollups.c.monitor_id,
    rollups.c.span,
    rollups.c.start,
    rollups.c.up,
    rollups.c.down,
    rollups.c.timeout,
    rollups.c.rt_sum,
    rollups.c.rt_min,
    rollups.c.rt_max,
    rollups.c.sketch,
    rollups.c.rt_median,
)
_EXISTING = select(*_COLUMNS).where(
    rollups.c.monitor_id.in_(bindparam("b_ids", expanding=True)),
    rollups.c.start.in_(bindparam("b_starts", expanding=True)),
)
# Rollup rows are few (a day of 1,000 monitors is 25,000): one statement per purge.
_PURGE = delete(rollups).where(rollups.c.start < bindparam("b_before"))
_OF_MONITOR = (
    select(*_COLUMNS)
    .where(
        rollups.c.monitor_id == bindparam("b_id"),
        rollups.c.span == bindparam("b_span"),
        rollups.c.start >= bindparam("b_from"),
        rollups.c.start < bindparam("b_to"),
    )
    .order_by(rollups.c.start)
)
_TEAM_IN_RANGE = (
    (monitors.c.team_id == bindparam("b_team"))
    & (rollups.c.span == bindparam("b_span"))
    & (rollups.c.start >= bindparam("b_from"))
    & (rollups.c.start < bindparam("b_to"))
)
_OF_TEAM = (
    select(*_COLUMNS).join(monitors, monitors.c.id == rollups.c.monitor_id).where(_TEAM_IN_RANGE)
)
_MEDIANS_OF_TEAM = (
    select(rollups.c.monitor_id, rollups.c.start, rollups.c.rt_median)
    .join(monitors, monitors.c.id == rollups.c.monitor_id)
    .where(_TEAM_IN_RANGE, rollups.c.rt_median.is_not(None))
)


async def add_pending(tx: Tx, results: Sequence[CheckResult]) -> None:
    """In the results' own transaction: what the rollups have still to count."""
    encoded = [
        [r.monitor_id, r.checked_at, _STATUS_CODES[r.status.value], r.response_time_ms]
        for r in results
    ]
    await tx.execute(
        _ADD_PENDING, {"b_results": json.dumps(encoded, separators=(",", ":")).encode()}
    )


class Rollups:
    def __init__(self, db: Connector, fast: FastPath) -> None:
        self._db = db
        self._fast = fast

    async def compact(self) -> int:
        """Fold every pending batch into the rollups; returns how many results."""
        folded = 0
        while True:
            n, more = await self._compact_some()
            folded += n
            if not more:
                return folded
            await asyncio.sleep(COMPACT_PAUSE_S)

    async def _compact_some(self) -> tuple[int, bool]:
        async with self._db.write(bulk=True) as tx:
            await tx.first(
                _LOCK
            )  # one compactor at a time (PostgreSQL; SQLite's writes are serial)
            pending = await tx.rows(_PENDING, {"b_limit": COMPACT_BATCHES})
            if not pending:
                return 0, False
            results = [r for row in pending for r in json.loads(row.results)]
            await self._fold(tx, folding.tally(results, SPANS_S))
            await tx.execute(_DONE, {"b_ids": [r.id for r in pending]})
        return len(results), len(pending) == COMPACT_BATCHES

    async def _fold(self, tx: Tx, tallied: folding.Tally) -> None:
        ids = sorted({k[0] for k in tallied.keys})
        live = {r.id for r in await tx.rows(_LIVE, {"b_ids": ids})}  # deleted ones go
        if not live:
            return
        starts = sorted({k[2] for k in tallied.keys})
        params = {"b_ids": sorted(live), "b_starts": starts}
        stored = {(r.monitor_id, r.span, r.start): r for r in await tx.rows(_EXISTING, params)}
        rows = [r for r in folding.fold(tallied, stored) if r[0] in live]
        await self._fast.upsert_rollups(tx.driver, rows)

    async def purge(self, *, before: int) -> int:
        """Delete rollups that start before ``before`` (ms); returns how many."""
        async with self._db.write(bulk=True) as tx:
            return await tx.execute(_PURGE, {"b_before": before})


async def of_monitor(reads: Reads, monitor_id: str, span_s: int, start: int, end: int) -> list[Row]:
    """The monitor's rollups of ``span_s`` starting in [start, end), oldest first."""
    return await reads.rows(
        _OF_MONITOR, {"b_id": monitor_id, "b_span": span_s, "b_from": start, "b_to": end}
    )


async def medians_of_team(
    reads: Reads, team_id: int, span_s: int, start: int, end: int
) -> list[Row]:
    """(monitor_id, start, rt_median) of the team's rollups of ``span_s`` starting in
    [start, end) that timed a check: no sketch read."""
    return await reads.rows(
        _MEDIANS_OF_TEAM, {"b_team": team_id, "b_span": span_s, "b_from": start, "b_to": end}
    )


async def of_team(reads: Reads, team_id: int, span_s: int, start: int, end: int) -> list[Row]:
    return await reads.rows(
        _OF_TEAM, {"b_team": team_id, "b_span": span_s, "b_from": start, "b_to": end}
    )
