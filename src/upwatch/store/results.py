"""Check results: stored in batches from the checker, read a page at a time, purged by
age. Each monitor's last check and result count are kept in step, in the same
transaction."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select, update

from upwatch.domain import CheckResult, Observation, Status, new_result_id
from upwatch.errors import MonitorNotFound
from upwatch.incidents import Opened, Resolved, advance
from upwatch.maintenance import Window
from upwatch.notifications import Event
from upwatch.store import incidents as incident_rows
from upwatch.store import notices
from upwatch.store import rollups as rollup_rows
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector, Row, Tx
from upwatch.store.fastpath import (
    RESULT_COLUMNS,
    FastPath,
    FreshRow,
    LiveRow,
    StaleRow,
    unpack_address,
)
from upwatch.store.rows import tracker, tracker_row
from upwatch.store.tables import check_results, monitors

PURGE_CHUNK_ROWS = 5_000

COLUMNS = tuple(check_results.c[name] for name in RESULT_COLUMNS)

_COUNT = select(monitors.c.result_count).where(
    (monitors.c.id == bindparam("b_id")) & (monitors.c.team_id == bindparam("b_team"))
)
_PAGE = (
    select(*COLUMNS)
    .where(check_results.c.monitor_id == bindparam("b_id"))
    .order_by(check_results.c.checked_at.desc(), check_results.c.id.desc())
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
_PURGE_CHUNK = (
    delete(check_results)
    .where(
        check_results.c.id.in_(
            select(check_results.c.id)
            .where(check_results.c.checked_at < bindparam("b_before"))
            .limit(bindparam("b_chunk"))
            .scalar_subquery()
        )
    )
    .returning(check_results.c.monitor_id)
)
_UNCOUNT = (
    update(monitors)
    .where(monitors.c.id == bindparam("b_id"))
    .values(result_count=monitors.c.result_count - bindparam("b_n"))
)


def result(row: Row) -> CheckResult:
    return CheckResult(
        id=row.id,
        monitor_id=row.monitor_id,
        status=Status(row.status),
        response_time_ms=row.response_time_ms,
        error=row.error,
        checked_at=row.checked_at,
        dns_time_ms=row.dns_time_ms,
        connect_time_ms=row.connect_time_ms,
        resolved_address=unpack_address(row.resolved_address),
    )


async def insert(tx: Tx, fast: FastPath, observations: Sequence[Observation]) -> list[CheckResult]:
    """Store observations inside ``tx``, update each monitor's last-check fields, and
    apply the new results to its state (upwatch/incidents.py), opening and resolving
    incidents. Observations for deleted or disabled monitors, or claimed before a
    change of target, are dropped. Returns what was stored."""
    ids = sorted({o.check.monitor_id for o in observations})
    live = {row.id: row for row in await fast.lock_live(tx.driver, ids)}
    stored = [
        CheckResult(
            id=new_result_id(o.checked_at),
            monitor_id=o.check.monitor_id,
            status=o.outcome.status,
            response_time_ms=o.outcome.response_time_ms,
            error=o.outcome.error,
            checked_at=o.checked_at,
            dns_time_ms=o.outcome.dns_time_ms,
            connect_time_ms=o.outcome.connect_time_ms,
            resolved_address=o.outcome.resolved_address,
        )
        for o in observations
        if (m := live.get(o.check.monitor_id)) is not None and m.generation == o.check.generation
    ]
    if stored:
        await fast.insert_results(tx.driver, stored)
        await rollup_rows.add_pending(tx, stored)
        failing = {r.monitor_id for r in stored if r.status is not Status.UP}
        teams = sorted({live[m].team_id for m in failing})
        windows = await window_rows.of_teams(tx, teams) if teams else []
        fresh, stale, opened, ended = _monitor_updates(stored, live, windows)
        await fast.update_monitors(tx.driver, fresh, stale)
        if opened or ended:
            await incident_rows.record(tx, opened, ended)
            changes = [(o.incident_id, Event.OPENED) for _, _, o in opened]
            changes += [(e.incident_id, Event.RESOLVED) for e in ended]
            await notices.notify(tx, changes, at=max(r.checked_at for r in stored))
    return stored


class Results:
    def __init__(self, db: Connector, fast: FastPath) -> None:
        self._db = db
        self._fast = fast

    async def page(
        self, team_id: int, monitor_id: str, *, limit: int, offset: int
    ) -> tuple[list[CheckResult], int]:
        """A page of results, newest first, and the monitor's total result count."""
        async with self._db.read() as reads:
            total = await reads.scalar(_COUNT, {"b_id": monitor_id, "b_team": team_id})
            if total is None:
                raise MonitorNotFound
            rows = await reads.rows(
                _PAGE, {"b_id": monitor_id, "b_limit": limit, "b_offset": offset}
            )
        return [result(r) for r in rows], int(total)

    async def save(self, observations: Sequence[Observation]) -> list[CheckResult]:
        """Store a batch of observations in one transaction (see ``insert``)."""
        if not observations:
            return []
        async with self._db.write(bulk=True) as tx:
            return await insert(tx, self._fast, observations)

    async def purge(self, *, before: int) -> int:
        """Delete results checked before ``before`` (ms), in chunks; returns how many."""
        total = 0
        while True:
            async with self._db.write(bulk=True) as tx:
                rows = await tx.rows(
                    _PURGE_CHUNK, {"b_before": before, "b_chunk": PURGE_CHUNK_ROWS}
                )
                per_monitor = Counter(r.monitor_id for r in rows)
                await tx.execute_many(
                    _UNCOUNT, [{"b_id": k, "b_n": n} for k, n in per_monitor.items()]
                )
            total += len(rows)
            if len(rows) < PURGE_CHUNK_ROWS:
                return total


def _monitor_updates(
    stored: Sequence[CheckResult], live: dict[str, LiveRow], windows: Sequence[Window] = ()
) -> tuple[list[FreshRow], list[StaleRow], list[tuple[int, str, Opened]], list[Resolved]]:
    """Per monitor: how many results were added and, unless the stored last check is
    newer (batches may land out of order), the newest result as its last check and the
    state after the results newer than the stored last check, in checkedAt order (an
    older result is stored but changes nothing). A failure checked in one of the
    monitor's maintenance ``windows`` counts towards nothing (no incident opens for
    it); an up one counts as always (an open incident may resolve). Returns (rows with
    a new last check, rows with a count only, incidents opened, incidents resolved)."""
    per_monitor: dict[str, list[CheckResult]] = defaultdict(list)
    for r in stored:
        per_monitor[r.monitor_id].append(r)
    fresh: list[FreshRow] = []
    stale: list[StaleRow] = []
    opened: list[tuple[int, str, Opened]] = []
    ended: list[Resolved] = []
    for monitor_id, results in per_monitor.items():
        m = live[monitor_id]
        results.sort(key=lambda r: r.checked_at)
        newest = results[-1]
        if m.last_checked_at is not None and newest.checked_at < m.last_checked_at:
            stale.append(StaleRow(monitor_id, len(results)))
            continue
        state = tracker(m.tracker)
        for r in results:
            if m.last_checked_at is not None and r.checked_at <= m.last_checked_at:
                continue  # older than (or as old as) a result already applied
            if (
                windows
                and r.status is not Status.UP
                and window_rows.in_maintenance(windows, monitor_id, r.checked_at)
            ):
                continue
            state, change = advance(
                state,
                r.status,
                r.error,
                r.checked_at,
                confirmation_checks=m.confirmation_checks,
                recovery_checks=m.recovery_checks,
            )
            if isinstance(change, Opened):
                opened.append((m.team_id, monitor_id, change))
            elif change is not None:
                ended.append(change)
        fresh.append(
            FreshRow(
                monitor_id,
                len(results),
                newest.checked_at,
                newest.status.value,
                newest.response_time_ms,
                tracker_row(state),
            )
        )
    return fresh, stale, opened, ended
