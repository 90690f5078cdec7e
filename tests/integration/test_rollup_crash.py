"""Rollups count every result exactly once, even when the worker folding them is
killed (SPEC §9). A backlog of results waits to be folded; `upwatch worker` starts
folding it and is killed with SIGKILL part-way; a second worker finishes. Then every
monitor's hourly and daily rollups hold exactly its results, on both databases."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import partial

import pytest
from sqlalchemy import func, select, update

from upwatch.domain import NewMonitor, Observation, Outcome, Status
from upwatch.scheduler.planning import plan
from upwatch.store import Store
from upwatch.store.tables import check_results, monitors, rollup_pending, rollups

pytestmark = pytest.mark.slow

MONITORS = 200
ROUNDS = 600  # batches of one result per monitor: 120,000 results to fold
T0 = int(time.time() * 1000) - 3 * 3_600_000  # recent: the workers' purge keeps them
KILL_DEADLINE_S = 60


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    env |= {"UPWATCH_LOG_LEVEL": "warning"}
    return subprocess.Popen(
        [sys.executable, "-m", "upwatch", "worker", "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def pending(store: Store) -> int:
    async with store.db.read() as reads:
        return int(await reads.scalar(select(func.count()).select_from(rollup_pending)))


async def test_a_killed_compaction_counts_every_result_once(
    store: Store, database_url: str
) -> None:
    team = (await store.teams.create("acme", MONITORS, at=0)).id
    for i in range(MONITORS):
        await store.monitors.create(team, NewMonitor(f"m{i}", "127.0.0.1", 9), at=T0)
    # Claimed as if far in the future, so that results can be saved for them.
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=MONITORS, planner=partial(plan, at=10**15)
    )
    checks = [p.check for p in plans]
    statuses = (Status.UP, Status.UP, Status.UP, Status.DOWN, Status.TIMEOUT)
    for r in range(ROUNDS):
        await store.results.save(
            [
                Observation(
                    c,
                    Outcome(statuses[(r + k) % 5], response_time_ms=5 + (r + k) % 40)
                    if statuses[(r + k) % 5] is Status.UP
                    else Outcome(statuses[(r + k) % 5], error="x"),
                    T0 + r * 10_000 + k,
                )
                for k, c in enumerate(checks)
            ]
        )
    # And disabled: a worker pulls a monitor due that far ahead back onto its grid (the
    # clock went back, it reads) and checks it, and each batch of those results is a
    # pending row the next fold, a minute later, would take: "all folded" would then
    # depend on when the last check ran.
    async with store.engine.begin() as conn:
        await conn.execute(update(monitors).values(is_enabled=False))
    backlog = await pending(store)
    assert backlog == ROUNDS

    first = start_worker(database_url)
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while await pending(store) > backlog * 0.7:  # folding, a good part still to go
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the worker never folded anything"
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        if first.stderr:
            first.stderr.close()
    left = await pending(store)
    assert 0 < left < backlog  # killed part-way

    second = start_worker(database_url)
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while await pending(store) > 0:
            assert second.poll() is None
            assert time.monotonic() < deadline, "the second worker did not finish"
            await asyncio.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
        if second.stderr:
            second.stderr.close()
    # A check a worker ran meanwhile may have left a batch after the last fold.
    await store.rollups.compact()

    async with store.db.read() as reads:
        stored = Counter(
            {
                r.monitor_id: r.n
                for r in await reads.rows(
                    select(check_results.c.monitor_id, func.count().label("n")).group_by(
                        check_results.c.monitor_id
                    )
                )
            }
        )
        rolled = await reads.rows(
            select(
                rollups.c.monitor_id,
                rollups.c.span,
                rollups.c.up,
                rollups.c.down,
                rollups.c.timeout,
            )
        )
    for span in (3600, 86400):
        counted: Counter[str] = Counter()
        for r in rolled:
            if r.span == span:
                counted[r.monitor_id] += r.up + r.down + r.timeout
        assert counted == stored, span
    # (The workers may also check a monitor or two: pulled back from the far future.)
    assert sum(stored.values()) >= MONITORS * ROUNDS
