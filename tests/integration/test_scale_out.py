"""Scale-out on PostgreSQL (SPEC.md §6): three `upwatch worker` processes share 300
monitors; one is killed with SIGKILL partway. Afterwards no monitor has two results
closer than half an interval (no duplicate) and none has a gap longer than two
intervals (its claims were picked up by the others)."""

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from tests.support.databases import fresh_store, pg_url
from tests.support.listeners import accepting
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor
from upwatch.store.tables import check_results

pytestmark = pytest.mark.slow

MONITORS = 300
INTERVAL_S = 10
RUN_S = 42
KILL_AT_S = 14
# Start-up of a worker process and the clocks of test and workers differ by this much.
JITTER_MS = 500


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "upwatch", "worker", "--database-url", url],
        env={**env, "UPWATCH_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_workers_share_monitors_without_duplicates_or_lasting_gaps() -> None:
    url = pg_url()
    store = await fresh_store(url)
    async with accepting() as port:
        team = (await store.teams.create("scale", MONITORS, at=0)).id
        clock = SystemClock()
        for i in range(MONITORS):
            new = NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=INTERVAL_S)
            await store.monitors.create(team, new, at=clock.now_ms())
        started = clock.now_ms()
        workers = [start_worker(url) for _ in range(3)]
        try:
            await asyncio.sleep(KILL_AT_S)
            workers[0].send_signal(signal.SIGKILL)
            killed_at = clock.now_ms()
            await asyncio.sleep(RUN_S - KILL_AT_S)
        finally:
            stopping_at = clock.now_ms()
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            logs = [
                w.communicate(timeout=max(0.1, deadline - time.monotonic()))[1] for w in workers
            ]
    assert [w.returncode for w in workers] == [-signal.SIGKILL, 0, 0], logs
    ended = clock.now_ms()

    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(select(check_results.c.monitor_id, check_results.c.checked_at))
        ).all()
    await store.close()
    times: dict[str, list[int]] = defaultdict(list)
    for monitor_id, checked_at in rows:
        times[monitor_id].append(checked_at)
    assert len(times) == MONITORS

    interval_ms = INTERVAL_S * 1000
    # When the workers began checking (their start-up takes seconds on a busy machine).
    began = min(min(checks) for checks in times.values())
    for monitor_id, checks in times.items():
        checks.sort()
        gaps = [b - a for a, b in itertools.pairwise(checks)]
        assert min(gaps) >= interval_ms // 2, f"{monitor_id}: duplicate check {gaps}"
        assert max(gaps) <= 2 * interval_ms + JITTER_MS, f"{monitor_id}: gap {gaps}"
        # Nobody was abandoned: checked until the end, long after the kill.
        assert checks[-1] >= ended - interval_ms - JITTER_MS * 4, monitor_id
        # Workers start after the monitors were created: late first checks are spread
        # over one interval from when checking began; one that the killed worker had
        # claimed and not run comes due again an interval after its planned time.
        assert checks[0] <= began + 2 * interval_ms + JITTER_MS, (monitor_id, began - started)
    # Once the killed worker's claims have come due again, every monitor is checked at
    # least once in each full interval until the others are stopped.
    since = killed_at + interval_ms + JITTER_MS
    full_intervals = (stopping_at - since) // interval_ms
    assert full_intervals >= 1
    for monitor_id, checks in times.items():
        after_kill = sum(1 for t in checks if since < t <= stopping_at)
        assert after_kill >= full_intervals, f"{monitor_id}: {after_kill} checks after the kill"
