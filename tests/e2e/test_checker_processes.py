"""`serve --checker-processes N` (checkers.py): the checks run in N processes of their
own that split the monitors between them, each check once; `/metrics` sums theirs; a
checker that dies stops `serve` with a clear message; a `serve` that is killed leaves
no checker behind."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.databases import fresh_store, sqlite_url
from tests.support.listeners import accepting
from tests.support.seeding import make_key
from tests.support.servers import free_port, results, wait_for_rows
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor

pytestmark = pytest.mark.slow

MONITORS = 200
INTERVAL_S = 10
STARTED = "checker started"
STOPPED = re.compile(r"checker stopped: (\d+) checks run, (\d+) results written")


async def served(db: Path, port: int, processes: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    env |= {"UPWATCH_DATABASE_URL": f"sqlite:///{db}"}
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "upwatch", "serve", "--port", str(port)),
        *("--checker-processes", str(processes)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.1)
    return False


async def test_two_checker_processes_split_the_monitors_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    db = tmp_path / "upwatch.db"
    store = await fresh_store(sqlite_url(tmp_path))
    key = await make_key(store, "acme")
    team = (await store.teams.all())[0].id
    now = SystemClock().now_ms()
    async with accepting() as up_port:
        for i in range(MONITORS):
            new = NewMonitor(f"m{i}", "127.0.0.1", up_port, 1_000, interval_s=INTERVAL_S)
            await store.monitors.create(team, new, at=now)
        await store.close()
        port = free_port()
        proc = await served(db, port, 2)
        try:
            # Two rounds of checks: every monitor twice.
            await wait_for_rows(db, MONITORS * 2, 3 * INTERVAL_S + 30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                r = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200
            assert len(children_of(proc.pid)) == 2
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(proc.communicate(), 40)
    log = output.decode()
    assert proc.returncode == 0, log
    assert log.count(STARTED) == 2, log
    stopped = [tuple(map(int, m)) for m in STOPPED.findall(log)]
    assert len(stopped) == 2, log
    assert all(run > 0 for run, _ in stopped), log  # both took a share
    stored = results(db)
    assert sum(written for _, written in stopped) == len(stored)  # nothing lost
    # Each monitor was checked once per slot, not once per process: two processes
    # checking one slot would store two results within moments of each other.
    per_monitor: dict[str, list[int]] = defaultdict(list)
    for monitor, at in stored:
        per_monitor[monitor].append(at)
    assert len(per_monitor) == MONITORS
    for monitor, times in per_monitor.items():
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g > 1000 for g in gaps), (monitor, times)
    # /metrics summed the two processes' checks into one series per status.
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    checks = [s for s in families["upwatch_checks"].samples if s.name == "upwatch_checks_total"]
    assert sorted(s.labels["status"] for s in checks) == ["down", "timeout", "up"]
    assert sum(s.value for s in checks) >= MONITORS * 2


async def test_a_checker_process_that_dies_stops_serve_with_a_clear_message(
    tmp_path: Path,
) -> None:
    proc = await served(tmp_path / "upwatch.db", free_port(), 1)
    try:
        assert await until(lambda: len(children_of(proc.pid)) == 1, 30)
        (child,) = children_of(proc.pid)
        await asyncio.sleep(3)  # started, not only spawned
        os.kill(child, signal.SIGKILL)
        output, _ = await asyncio.wait_for(proc.communicate(), 40)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = output.decode()
    assert proc.returncode == 1, log
    assert "a checker process stopped unexpectedly: exit status -9" in log, log


async def test_no_checker_outlives_a_killed_serve(tmp_path: Path) -> None:
    proc = await served(tmp_path / "upwatch.db", free_port(), 2)
    checkers: list[int] = []
    try:
        assert await until(lambda: len(children_of(proc.pid)) == 2, 30)
        checkers = children_of(proc.pid)
        await asyncio.sleep(3)
        proc.kill()  # SIGKILL: no chance to stop them
        await proc.wait()
        # Their input ends with the parent: each stops as on SIGTERM.
        assert await until(lambda: not any(alive(c) for c in checkers), 30)
    finally:
        for c in checkers:
            if alive(c):
                os.kill(c, signal.SIGKILL)
