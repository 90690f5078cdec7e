"""Faults survived with nothing lost: a database that goes away and comes back while
1,000 monitors are being checked. Bounded in time."""

import asyncio
import logging

import asyncpg
import pytest
from sqlalchemy import func, select, update

from tests.conftest import fresh_store, pg_url
from upwatch.clock import SystemClock
from upwatch.config import Settings
from upwatch.domain import NewMonitor
from upwatch.scheduler import Worker
from upwatch.store import Store
from upwatch.store.tables import check_results, monitors

OUTAGE_S = 3.0
MONITORS = 1_000


async def count_results(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(check_results)) or 0)


async def run_through_outage(count: int, buffer_rows: int) -> tuple[Worker, int, int]:
    """A worker checks ``count`` monitors, due over the next 4 s, while the database
    refuses connections for OUTAGE_S. Returns the worker, the results it held at the
    end of the outage and the results stored afterwards."""
    url = pg_url()
    database = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    store = await fresh_store(url)
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    team = (await store.create_team("faults", 10_000, at=0)).id
    clock = SystemClock()
    now = clock.now_ms()
    spacing_ms = 4000 // count
    for i in range(count):
        # Due over the next 4 s, and all claimed at once (long look-ahead): most checks
        # run while the database is away.
        await store.create_monitor(
            team,
            NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=60),
            at=now + 500 + i * spacing_ms,
        )
    async with store.engine.begin() as conn:  # creating them took a while: due from now
        await conn.execute(
            update(monitors).values(next_due_at=monitors.c.next_due_at + (clock.now_ms() - now))
        )
    worker = Worker(Settings(result_buffer_rows=buffer_rows), store, lookahead_ms=6000)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.3)
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await asyncio.sleep(OUTAGE_S)
        held = len(worker.batcher)
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
        await asyncio.sleep(3)  # reconnect and write
        stop.set()
        await asyncio.wait_for(running, timeout=15)
        server.close()
    try:
        return worker, held, await count_results(store)
    finally:
        await store.close()


async def test_results_are_kept_through_a_database_outage_and_written_after() -> None:
    worker, held, stored = await run_through_outage(MONITORS, buffer_rows=200_000)
    assert held > 0, "the outage should have caught results in the buffer"
    assert worker.batcher.dropped == 0
    assert worker.checks_run == MONITORS
    assert stored == MONITORS  # nothing lost


async def test_results_past_the_buffer_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="upwatch.scheduler.batcher")
    worker, held, stored = await run_through_outage(1_600, buffer_rows=1_000)
    assert held == 1_000
    assert worker.batcher.dropped > 0
    assert stored == worker.checks_run - worker.batcher.dropped  # the rest were written
    assert any("result buffer full (1000 rows)" in r.getMessage() for r in caplog.records)
