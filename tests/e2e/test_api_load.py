"""`serve` under API load: the checks stay on schedule.

One event loop for the API and the checker let a client listing monitors over 16
connections starve the checks: claims came seconds late and missed their slot, and a
target answering in 1 ms was reported at 600+ ms. The checker now has a thread and an
event loop of its own."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.databases import fresh_store, sqlite_url
from tests.support.listeners import accepting
from tests.support.servers import free_port, wait_for_rows
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor
from upwatch.scheduler.planning import LATE_THRESHOLD_MS

pytestmark = pytest.mark.slow

MONITORS = 1_000
INTERVAL_S = 10
CONNECTIONS = 16
LOAD_S = 2.5 * INTERVAL_S


async def list_monitors_until(port: int, key: str, deadline: float) -> dict[int, int]:
    """GET the monitor list back to back on one keep-alive connection; statuses seen."""
    request = (
        f"GET /v1/tcp-monitors HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    statuses: dict[int, int] = defaultdict(int)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            length = next(
                int(line.split(":", 1)[1])
                for line in head
                if line.lower().startswith("content-length:")
            )
            await reader.readexactly(length)
            statuses[int(head[0].split()[1])] += 1
    finally:
        writer.close()
    return statuses


async def test_listing_monitors_flat_out_does_not_starve_the_checks(tmp_path: Path) -> None:
    db = tmp_path / "upwatch.db"
    store = await fresh_store(sqlite_url(tmp_path))
    team = (await store.teams.create("busy", MONITORS, at=0)).id
    _, key = await store.keys.create(team="busy", name=None, scopes=["tcp-monitors:read"], at=0)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    # No rate limit and no load shedding: the API load is the whole of what is asked
    # (16 lists of 30 ms at once are a standing queue, which serve would shed).
    env |= {
        "UPWATCH_DATABASE_URL": f"sqlite:///{db}",
        "UPWATCH_RATE_LIMIT_PER_MINUTE": "0",
        "UPWATCH_SHED_TARGET_MS": "0",
        # An access line a request would outgrow what asyncio buffers of the pipe
        # (128 KiB), and a full pipe would stall the server.
        "UPWATCH_LOG_LEVEL": "warning",
    }
    async with accepting() as up_port:
        now = SystemClock().now_ms()
        for i in range(MONITORS):  # due one after the other over the first interval
            new = NewMonitor(f"m{i}", "127.0.0.1", up_port, 2_000, interval_s=INTERVAL_S)
            await store.monitors.create(team, new, at=now + i * INTERVAL_S * 1000 // MONITORS)
        await store.close()
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "upwatch", "serve", "--port", str(port)),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await wait_for_rows(db, MONITORS, INTERVAL_S + 10)  # every monitor checked once
            load_from = SystemClock().now_ms()
            deadline = time.monotonic() + LOAD_S
            answers = await asyncio.gather(
                *(list_monitors_until(port, key, deadline) for _ in range(CONNECTIONS))
            )
            load_until = SystemClock().now_ms()
        finally:
            proc.terminate()
            output, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, output.decode()
    assert {status for seen in answers for status in seen} == {200}
    assert sum(n for seen in answers for n in seen.values()) >= CONNECTIONS  # real load

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT monitor_id, checked_at, status, response_time_ms FROM check_results"
            " ORDER BY monitor_id, checked_at"
        ).fetchall()
    checks: dict[str, list[int]] = defaultdict(list)
    for monitor_id, checked_at, _, _ in rows:
        checks[monitor_id].append(checked_at)
    # No check missed its slot under the load: every gap ending in the load window is
    # an interval, give or take less than the lateness that re-spreads a check.
    gaps = [
        b - a
        for times in checks.values()
        for a, b in itertools.pairwise(times)
        if load_from <= b <= load_until
    ]
    assert len(gaps) >= MONITORS  # each monitor checked at least once more under load
    slow = [g for g in gaps if abs(g - INTERVAL_S * 1000) >= LATE_THRESHOLD_MS]
    assert not slow, f"{len(slow)} of {len(gaps)} gaps off the interval, e.g. {slow[:5]}"
    # And the checks measure the target, not the API's load: loopback answers in ~1 ms.
    under_load = [(s, r) for _, at, s, r in rows if load_from <= at <= load_until]
    assert {s for s, _ in under_load} == {"up"}
    assert max(r for _, r in under_load) < 1_000
