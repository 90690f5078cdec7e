"""Faults survived with nothing lost: a PostgreSQL database that goes away and comes
back while 1,000 monitors are being checked, or for longer than an interval, or while
the API is used. Bounded in time."""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, update

from tests.support.databases import fresh_store, pg_url
from tests.support.listeners import accepting
from tests.support.seeding import make_key
from upwatch.api import create_app
from upwatch.clock import SystemClock
from upwatch.config import Settings
from upwatch.domain import NewMonitor
from upwatch.scheduler import Worker
from upwatch.store import Store
from upwatch.store.tables import check_results, monitors

pytestmark = pytest.mark.slow

OUTAGE_S = 3.0
MONITORS = 1_000


@contextlib.asynccontextmanager
async def database_away(url: str) -> AsyncIterator[None]:
    """The database refuses new connections and every session on it is cut, as in a
    restart; afterwards it accepts connections again."""
    database = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()


async def seed(store: Store, port: int, count: int, *, interval_s: int, over_ms: int) -> int:
    """``count`` monitors on ``port``, due one after the other over ``over_ms`` from half
    a second after they are all stored. Returns when the first is due."""
    clock = SystemClock()
    team = (await store.teams.create("faults", 10_000, at=0)).id
    began = clock.now_ms()
    for i in range(count):
        new = NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=interval_s)
        await store.monitors.create(team, new, at=began + 500 + i * over_ms // count)
    shift = clock.now_ms() - began  # storing them took a while
    async with store.engine.begin() as conn:
        await conn.execute(update(monitors).values(next_due_at=monitors.c.next_due_at + shift))
    return began + shift + 500


async def run_worker(
    worker: Worker, url: str, *, before_s: float, away_s: float, after_s: float
) -> int:
    """Run ``worker``; the database goes away after ``before_s`` for ``away_s``; stop
    ``after_s`` later. Returns how many results the worker held when it came back."""
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(before_s)
        # And until it has claimed and begun checking: on a busy machine its first claim
        # can take longer than ``before_s``, and a worker holding nothing has nothing to
        # keep through the outage.
        for _ in range(100):
            if worker.checks_run:
                break
            await asyncio.sleep(0.05)
        async with database_away(url):
            await asyncio.sleep(away_s)
            held = len(worker.batcher)
        await asyncio.sleep(after_s)  # reconnect and write
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=15)
    return held


async def stored_times(store: Store) -> dict[str, list[int]]:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(select(check_results.c.monitor_id, check_results.c.checked_at))
        ).all()
    times: dict[str, list[int]] = {}
    for monitor_id, checked_at in rows:
        times.setdefault(monitor_id, []).append(checked_at)
    return {m: sorted(t) for m, t in times.items()}


async def run_through_outage(count: int, buffer_rows: int) -> tuple[Worker, int, int]:
    """A worker claims ``count`` monitors due over the next 4 s at once (a long
    look-ahead), and the database is away for most of that. Returns the worker, the
    results it held at the end of the outage and the results stored afterwards."""
    url = pg_url()
    store = await fresh_store(url)
    try:
        async with accepting() as port:
            await seed(store, port, count, interval_s=60, over_ms=4000)
            worker = Worker(Settings(result_buffer_rows=buffer_rows), store, lookahead_ms=6000)
            held = await run_worker(worker, url, before_s=0.3, away_s=OUTAGE_S, after_s=3)
        async with store.engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(check_results))
        return worker, held, int(stored or 0)
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
    store = await fresh_store(url)
    count = 200
    try:
        async with accepting() as port:
            first_due = await seed(store, port, count, interval_s=10, over_ms=2000)
            worker = Worker(Settings(), store)
            # One more round on the database after it is back.
            await run_worker(worker, url, before_s=3, away_s=12, after_s=10)
        times = await stored_times(store)
    finally:
        await store.close()
    assert worker.checks_offline == count  # one round ran while the database was away
    assert worker.batcher.dropped == 0
    assert len(times) == count
    for monitor_id, checks in times.items():
        assert len(checks) == 3, (monitor_id, [c - first_due for c in checks])
        gaps = [b - a for a, b in itertools.pairwise(checks)]
        assert all(9_500 <= g <= 10_500 for g in gaps), (monitor_id, gaps)  # on the grid


async def test_the_api_answers_503_not_500_while_the_database_is_away() -> None:
    url = pg_url()
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
            async with database_away(url):
                answers = [
                    await client.get("/healthz"),
                    await client.get("/v1/tcp-monitors", headers=headers),
                    await client.get(f"/v1/tcp-monitors/{monitor}/results", headers=headers),
                    await client.post("/v1/tcp-monitors", headers=headers, json=body),
                    await client.put(f"/v1/tcp-monitors/{monitor}", headers=headers, json=body),
                    await client.delete(f"/v1/tcp-monitors/{monitor}", headers=headers),
                ]
            after = await client.get(f"/v1/tcp-monitors/{monitor}", headers=headers)
    finally:
        await store.close()
    assert [a.status_code for a in answers] == [503] * len(answers), [a.text for a in answers]
    assert all(a.json()["error"]["code"] == "SERVICE_UNAVAILABLE" for a in answers[1:])
    assert after.status_code == 200  # nothing was changed meanwhile
    assert after.json()["data"]["name"] == "n"
