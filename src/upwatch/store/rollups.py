"""Rollups: per monitor, hour and UTC day, the check counts and a response-time sketch
(SPEC §9), so that statistics over a year read a year of days, not of checks.

Exactly once, by construction: each batch of results writes one ``rollup_pending`` row
in its own transaction (``add_pending``), and the compactor folds pending rows into the
rollups and deletes them in one transaction (``Rollups.compact``), one process at a
time (``rollup_lock``). A crash on either side rolls back both halves together, and a
result written late (after an outage) is folded into the hour it was checked in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from upwatch.domain import CheckResult
from upwatch.sketch import Sketch, medians
from upwatch.stats import DAY_MS, HOUR_MS
from upwatch.store.connector import Connector, Reads, Row, Tx
from upwatch.store.tables import monitors, rollup_lock, rollup_pending, rollups

HOUR_S, DAY_S = HOUR_MS // 1000, DAY_MS // 1000
SPANS_MS = {HOUR_S: HOUR_MS, DAY_S: DAY_MS}
COMPACT_BATCHES = 200  # pending rows folded per transaction

_STATUS_CODES = {"up": 0, "down": 1, "timeout": 2}

_ADD_PENDING = insert(rollup_pending).values(results=bindparam("b_results"))
_LOCK = select(rollup_lock.c.id).where(rollup_lock.c.id == 1).with_for_update()
_PENDING = (
    select(rollup_pending.c.id, rollup_pending.c.results)
    .order_by(rollup_pending.c.id)
    .limit(bindparam("b_limit"))
)
_DONE = delete(rollup_pending).where(rollup_pending.c.id.in_(bindparam("b_ids", expanding=True)))
_LIVE = select(monitors.c.id).where(monitors.c.id.in_(bindparam("b_ids", expanding=True)))
ROLLUP_COLUMNS = (
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
_EXISTING = select(*ROLLUP_COLUMNS).where(
    rollups.c.monitor_id.in_(bindparam("b_ids", expanding=True)),
    rollups.c.start.in_(bindparam("b_starts", expanding=True)),
)
_INSERT = insert(rollups)
_UPDATE = (
    update(rollups)
    .where(
        rollups.c.monitor_id == bindparam("b_monitor_id"),
        rollups.c.span == bindparam("b_span"),
        rollups.c.start == bindparam("b_start"),
    )
    .values(
        up=bindparam("b_up"),
        down=bindparam("b_down"),
        timeout=bindparam("b_timeout"),
        rt_sum=bindparam("b_rt_sum"),
        rt_min=bindparam("b_rt_min"),
        rt_max=bindparam("b_rt_max"),
        sketch=bindparam("b_sketch"),
        rt_median=bindparam("b_rt_median"),
    )
)
# Rollup rows are few (a day of 1,000 monitors is 25,000): one statement per purge.
_PURGE = delete(rollups).where(rollups.c.start < bindparam("b_before"))
_OF_MONITOR = (
    select(*ROLLUP_COLUMNS)
    .where(
        rollups.c.monitor_id == bindparam("b_id"),
        rollups.c.span == bindparam("b_span"),
        rollups.c.start >= bindparam("b_from"),
        rollups.c.start < bindparam("b_to"),
    )
    .order_by(rollups.c.start)
)
_MEDIANS_OF_TEAM = (
    select(rollups.c.monitor_id, rollups.c.start, rollups.c.rt_median)
    .join(monitors, monitors.c.id == rollups.c.monitor_id)
    .where(
        monitors.c.team_id == bindparam("b_team"),
        rollups.c.span == bindparam("b_span"),
        rollups.c.start >= bindparam("b_from"),
        rollups.c.start < bindparam("b_to"),
        rollups.c.rt_median.is_not(None),
    )
)
_OF_TEAM = (
    select(*ROLLUP_COLUMNS)
    .join(monitors, monitors.c.id == rollups.c.monitor_id)
    .where(
        monitors.c.team_id == bindparam("b_team"),
        rollups.c.span == bindparam("b_span"),
        rollups.c.start >= bindparam("b_from"),
        rollups.c.start < bindparam("b_to"),
    )
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


@dataclass(slots=True)
class Tally:
    """One rollup row's figures, as they are being added up."""

    up: int = 0
    down: int = 0
    timeout: int = 0
    times: list[int] = field(default_factory=list)  # of the up checks, this compaction
    stored: Row | None = None  # the row as it was, if there was one

    def add(self, status: int, rt: int | None) -> None:
        if status == 0:
            self.up += 1
            if rt is not None:
                self.times.append(rt)
        elif status == 1:
            self.down += 1
        else:
            self.timeout += 1

    def row(self, key: tuple[str, int, int]) -> dict[str, Any]:
        """The rollup row after this compaction, by column name, but for its median
        (``Rollups._fold`` reads all of a fold's medians at once)."""
        sketch = Sketch()
        sketch.add_all(self.times)
        up, down, timeout = self.up, self.down, self.timeout
        rt_sum = sum(self.times)
        rt_min = min(self.times) if self.times else None
        rt_max = max(self.times) if self.times else None
        if (old := self.stored) is not None:
            up, down, timeout = up + old.up, down + old.down, timeout + old.timeout
            rt_sum += old.rt_sum
            rt_min = _least(rt_min, old.rt_min)
            rt_max = _most(rt_max, old.rt_max)
            sketch.merge(Sketch.decode(old.sketch))
        return {
            "monitor_id": key[0],
            "span": key[1],
            "start": key[2],
            "up": up,
            "down": down,
            "timeout": timeout,
            "rt_sum": rt_sum,
            "rt_min": rt_min,
            "rt_max": rt_max,
            "sketch": sketch.encode(),
        }


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _most(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class Rollups:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def compact(self) -> int:
        """Fold every pending batch into the rollups; returns how many results."""
        folded = 0
        while True:
            n, more = await self._compact_some()
            folded += n
            if not more:
                return folded

    async def _compact_some(self) -> tuple[int, bool]:
        async with self._db.write() as tx:
            await tx.first(
                _LOCK
            )  # one compactor at a time (PostgreSQL; SQLite's writes are serial)
            pending = await tx.rows(_PENDING, {"b_limit": COMPACT_BATCHES})
            if not pending:
                return 0, False
            tallies: dict[tuple[str, int, int], Tally] = {}
            count = 0
            for row in pending:
                for monitor_id, checked_at, status, rt in json.loads(row.results):
                    count += 1
                    for span_s, span_ms in SPANS_MS.items():
                        key = (monitor_id, span_s, checked_at - checked_at % span_ms)
                        tally = tallies.get(key)
                        if tally is None:
                            tally = tallies[key] = Tally()
                        tally.add(status, rt)
            await self._fold(tx, tallies)
            await tx.execute(_DONE, {"b_ids": [r.id for r in pending]})
        return count, len(pending) == COMPACT_BATCHES

    async def _fold(self, tx: Tx, tallies: dict[tuple[str, int, int], Tally]) -> None:
        ids = sorted({k[0] for k in tallies})
        live = {r.id for r in await tx.rows(_LIVE, {"b_ids": ids})}  # deleted ones go
        starts = sorted({k[2] for k in tallies})
        existing: dict[tuple[str, int, int], Row] = {}
        if live:
            params = {"b_ids": sorted(live), "b_starts": starts}
            existing = {
                (r.monitor_id, r.span, r.start): r for r in await tx.rows(_EXISTING, params)
            }
        folded: list[dict[str, Any]] = []
        stored: list[bool] = []
        for key, tally in tallies.items():
            if key[0] not in live:
                continue
            tally.stored = existing.get(key)
            folded.append(tally.row(key))
            stored.append(tally.stored is not None)
        found = medians(
            [r["sketch"] for r in folded],
            [r["rt_min"] for r in folded],
            [r["rt_max"] for r in folded],
        )
        updates, inserts = [], []
        for row, median, was_stored in zip(folded, found.tolist(), stored, strict=True):
            row["rt_median"] = None if median != median else median  # NaN: no timed check
            if was_stored:
                updates.append({f"b_{k}": v for k, v in row.items()})
            else:
                inserts.append(row)
        if updates:
            await tx.execute_many(_UPDATE, updates)
        if inserts:
            await tx.execute_many(_INSERT, inserts)

    async def purge(self, *, before: int) -> int:
        """Delete rollups that start before ``before`` (ms); returns how many."""
        async with self._db.write() as tx:
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
