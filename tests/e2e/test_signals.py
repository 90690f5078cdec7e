"""Stopping under load: SIGTERM to `serve` while 1,000 monitors are being checked (some
of them hanging until their timeout) exits 0 within 10 s with every finished check
written; SIGKILL to `worker` leaves an intact database on which checking resumes on
schedule."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.support.databases import fresh_store, sqlite_url
from tests.support.listeners import accepting, blackhole, closed_port
from tests.support.servers import free_port, results, wait_for_rows
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor

MONITORS_UP = 800
MONITORS_HANGING = 100
MONITORS_REFUSED = 100
INTERVAL_S = 10
HANG_TIMEOUT_MS = 4_000
STOP_LIMIT_S = 10.0
STOPPED = re.compile(
    r"checker stopped: (\d+) checks run, (\d+) results written \((\d+) at shutdown\), "
    r"(\d+) dropped"
)

pytestmark = pytest.mark.slow


async def start(command: str, db: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    env |= {"UPWATCH_DATABASE_URL": f"sqlite:///{db}"}
    args = [command] if command == "worker" else [command, "--port", str(free_port())]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "upwatch",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_sigterm_under_load_then_sigkill_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "upwatch.db"
    store = await fresh_store(sqlite_url(tmp_path))
    team = (await store.teams.create("load", 2_000, at=0)).id
    now = SystemClock().now_ms()
    async with accepting() as up_port:
        with blackhole() as hanging_port:
            targets = (
                [(up_port, 1_000)] * MONITORS_UP
                + [(hanging_port, HANG_TIMEOUT_MS)] * MONITORS_HANGING
                + [(closed_port(), 1_000)] * MONITORS_REFUSED
            )
            for i, (port, timeout_ms) in enumerate(targets):
                new = NewMonitor(f"m{i}", "127.0.0.1", port, timeout_ms, interval_s=INTERVAL_S)
                await store.monitors.create(team, new, at=now)
            await store.close()

            # 1. SIGTERM to `serve` while checks run, some of them hanging.
            proc = await start("serve", db)
            await wait_for_rows(db, 200, 20)
            proc.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            output, _ = await asyncio.wait_for(proc.communicate(), STOP_LIMIT_S + 5)
            took = time.monotonic() - stopping
            log = output.decode()
            assert proc.returncode == 0, log
            assert took < STOP_LIMIT_S, f"took {took:.1f} s to stop\n{log}"
            stopped = STOPPED.search(log)
            assert stopped, log
            run, written, _, dropped = map(int, stopped.groups())
            assert dropped == 0
            assert run == written == len(results(db)), log  # every finished check is stored

            # 2. SIGKILL to `worker` while checks run; the database stays intact.
            before = len(results(db))
            proc = await start("worker", db)
            await wait_for_rows(db, before + 100, 20)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.communicate(), 10)
            killed_at = SystemClock().now_ms()
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

            # 3. After a restart every monitor is checked again within about an interval:
            # claims the killed worker held come due one interval after they were made.
            proc = await start("worker", db)
            try:
                deadline = time.monotonic() + INTERVAL_S + 8
                fresh: set[str] = set()
                while time.monotonic() < deadline and len(fresh) < len(targets):
                    await asyncio.sleep(0.5)
                    fresh = {m for m, at in results(db) if at > killed_at}
            finally:
                proc.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(proc.communicate(), STOP_LIMIT_S + 5)
    assert proc.returncode == 0, output.decode()
    assert len(fresh) == len(targets), f"{len(targets) - len(fresh)} monitors not resumed"
