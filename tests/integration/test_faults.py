"""Faults survived with nothing lost: a database that goes away and comes back.
Bounded in time."""

import asyncio

import asyncpg
from sqlalchemy import func, select

from tests.conftest import fresh_store, pg_url
from upwatch.clock import SystemClock
from upwatch.config import Settings
from upwatch.domain import NewMonitor
from upwatch.scheduler import Worker
from upwatch.store import Store
from upwatch.store.tables import check_results

OUTAGE_S = 3.0
MONITORS = 200


async def count_results(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(check_results)) or 0)


async def test_results_are_kept_through_a_database_outage_and_written_after() -> None:
    url = pg_url()
    database = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    store = await fresh_store(url)
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    team = (await store.create_team("faults", None, at=0)).id
    now = SystemClock().now_ms()
    for i in range(MONITORS):
        # Due over the next 4 s, and all claimed at once (long look-ahead): most checks
        # run while the database is away.
        await store.create_monitor(
            team, NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=60), at=now + 500 + i * 20
        )
    worker = Worker(Settings(), store, lookahead_ms=6000)
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
        assert held > 0, "the outage should have caught results in the buffer"
        assert worker.batcher.dropped == 0
        assert worker.checks_run == MONITORS
        assert await count_results(store) == MONITORS  # nothing lost
    finally:
        await store.close()
