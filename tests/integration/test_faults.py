"""Faults survived with nothing lost: a database that goes away and comes back while
1,000 monitors are being checked. Bounded in time."""

import asyncio
import itertools
import logging

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import fresh_store, make_key, pg_url
from upwatch.api import create_app
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


async def test_checking_goes_on_through_an_outage_longer_than_an_interval() -> None:
    """PostgreSQL away for 12 s, monitors at 10 s: the worker goes on checking the
    monitors it holds, on their grid, and afterwards none is checked twice or skipped."""
    url = pg_url()
    database = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    store = await fresh_store(url)
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    team = (await store.create_team("faults", 10_000, at=0)).id
    clock = SystemClock()
    count = 200
    for i in range(count):
        await store.create_monitor(
            team, NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=10), at=0
        )
    start = clock.now_ms()
    async with store.engine.begin() as conn:  # due over the next 2 s
        for i, (monitor_id,) in enumerate(
            (await conn.execute(select(monitors.c.id).order_by(monitors.c.id))).all()
        ):
            await conn.execute(
                update(monitors)
                .where(monitors.c.id == monitor_id)
                .values(next_due_at=start + 500 + i * 10)
            )
    worker = Worker(Settings(), store)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(3)
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await asyncio.sleep(12)
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
        await asyncio.sleep(10)  # reconnect, write, and one more round on the database
        stop.set()
        await asyncio.wait_for(running, timeout=15)
        server.close()
    try:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(select(check_results.c.monitor_id, check_results.c.checked_at))
            ).all()
    finally:
        await store.close()
    times: dict[str, list[int]] = {}
    for monitor_id, checked_at in rows:
        times.setdefault(monitor_id, []).append(checked_at)
    assert worker.checks_offline == count  # one round ran while the database was away
    assert worker.batcher.dropped == 0
    assert len(times) == count
    for monitor_id, checks in times.items():
        checks.sort()
        assert len(checks) == 3, (monitor_id, [c - start for c in checks])
        gaps = [b - a for a, b in itertools.pairwise(checks)]
        assert all(9_500 <= g <= 10_500 for g in gaps), (monitor_id, gaps)  # on the grid


async def test_the_api_answers_503_not_500_while_the_database_is_away() -> None:
    url = pg_url()
    database = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    store = await fresh_store(url)
    key = await make_key(store)
    app = create_app(Settings(database_url=url), store)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"name": "n", "host": "db.example.com", "port": 5432}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            created = await client.post("/v1/tcp-monitors", headers=headers, json=body)
            assert created.status_code == 201
            monitor = created.json()["data"]["id"]
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            answers = [
                await client.get("/healthz"),
                await client.get("/v1/tcp-monitors", headers=headers),
                await client.get(f"/v1/tcp-monitors/{monitor}/results", headers=headers),
                await client.post("/v1/tcp-monitors", headers=headers, json=body),
                await client.put(f"/v1/tcp-monitors/{monitor}", headers=headers, json=body),
                await client.delete(f"/v1/tcp-monitors/{monitor}", headers=headers),
            ]
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            after = await client.get(f"/v1/tcp-monitors/{monitor}", headers=headers)
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
        await store.close()
    assert [a.status_code for a in answers] == [503] * len(answers), [a.text for a in answers]
    assert all(a.json()["error"]["code"] == "SERVICE_UNAVAILABLE" for a in answers[1:])
    assert after.status_code == 200  # nothing was changed meanwhile
    assert after.json()["data"]["name"] == "n"
