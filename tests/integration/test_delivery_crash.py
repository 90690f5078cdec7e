"""Crash safety of notifications on PostgreSQL (SPEC §7): three `upwatch worker`
processes, 200 monitors whose targets flap, every incident change notified to a real
receiver; one worker is killed with SIGKILL while it is sending. Afterwards every
delivery is delivered and arrived, and the only duplicates are sends cut off after the
receiver got them (the same webhook-id twice), counted and reported. The kill comes
while incident.opened notifications are going out, the receiver taking 200 ms each."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from tests.support.databases import fresh_store, pg_url
from tests.support.listeners import closed_port, listener
from tests.support.receivers import receiving
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor
from upwatch.notifications import ChannelType
from upwatch.store.tables import deliveries

pytestmark = pytest.mark.slow

MONITORS = 200
PORTS = 4
INTERVAL_S = 10
FLAP_S = 12  # each target is up this long, then down this long
FLAPPING_S = 36
KILL_AFTER_SENDS = 20  # the kill comes once this many have arrived: others are in flight
LEASE_S = 30
SENDS_IN_FLIGHT = 64
SETTLE_DEADLINE_S = 60  # after the flapping: leases expire, the others send what was cut


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    env |= {
        "UPWATCH_LOG_LEVEL": "warning",
        "UPWATCH_DELIVERY_LEASE_S": str(LEASE_S),
        "UPWATCH_MAX_SENDS_IN_FLIGHT": str(SENDS_IN_FLIGHT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "upwatch", "worker", "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def flap(ports: list[int], stop: asyncio.Event) -> None:
    """Targets up for FLAP_S, down for FLAP_S, until ``stop``; up at the end."""
    while not stop.is_set():
        with contextlib.ExitStack() as open_now:
            for port in ports:
                open_now.enter_context(listener(port=port))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLAP_S)
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FLAP_S)


async def test_a_killed_worker_loses_no_notification() -> None:
    url = pg_url()
    store = await fresh_store(url)
    clock = SystemClock()
    ports = [closed_port() for _ in range(PORTS)]
    async with receiving() as rx:
        rx.delay_s = 0.2  # sends take a while: the kill finds some in flight
        team = (await store.teams.create("flappy", MONITORS, at=0)).id
        channel = await store.channels.create(
            team,
            name="ops",
            type=ChannelType.WEBHOOK,
            config={"url": rx.url()},
            is_enabled=True,
            at=clock.now_ms(),
        )
        for i in range(MONITORS):
            new = NewMonitor(
                f"m{i}",
                "127.0.0.1",
                ports[i % PORTS],
                interval_s=INTERVAL_S,
                confirmation_checks=1,
                channel_ids=(channel.id,),
            )
            await store.monitors.create(team, new, at=clock.now_ms())
        stop_flapping = asyncio.Event()
        flapping = asyncio.create_task(flap(ports, stop_flapping))
        workers = [start_worker(url) for _ in range(3)]
        started = time.monotonic()
        try:
            with contextlib.suppress(TimeoutError):
                await rx.wait_for(KILL_AFTER_SENDS, timeout_s=FLAPPING_S)
            sent_before_kill = len(rx.requests)
            workers[0].send_signal(signal.SIGKILL)
            await asyncio.sleep(max(0.0, FLAPPING_S - (time.monotonic() - started)))
            stop_flapping.set()
            await flapping
            deadline = time.monotonic() + SETTLE_DEADLINE_S
            pending = -1
            while time.monotonic() < deadline:  # bounded: until all are sent, or a minute
                await asyncio.sleep(1)
                async with store.engine.connect() as conn:
                    pending = await conn.scalar(
                        select(func.count()).where(deliveries.c.status != "delivered")
                    )
                if pending == 0:
                    break
        finally:
            stop_flapping.set()
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
            logs = [w.communicate(timeout=20)[1] for w in workers]
        received = Counter(r.headers["webhook-id"] for r in rx.requests)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries.c.id, deliveries.c.status))).all()
    await store.close()
    assert [w.returncode for w in workers] == [-signal.SIGKILL, 0, 0], logs
    assert sent_before_kill > 0  # the kill came while notifications were going out
    ids = {r.id for r in rows}
    assert len(ids) >= MONITORS  # every monitor went down at least once
    assert pending == 0, f"{pending} deliveries not delivered"
    assert {r.status for r in rows} == {"delivered"}
    assert ids <= set(received), f"never arrived: {sorted(ids - set(received))[:5]}"
    duplicates = sum(n - 1 for n in received.values())
    # Only sends the killed worker had in flight may arrive twice.
    assert duplicates <= SENDS_IN_FLIGHT, duplicates
    print(f"{len(ids)} deliveries, all arrived; {duplicates} arrived twice (cut off by the kill)")
