"""The checker driven step by step with an injected clock, against real listeners."""

import asyncio
from functools import partial

import pytest
from sqlalchemy import func, select

from tests.support.listeners import closed_port, listener
from tests.support.receivers import receiving
from tests.support.seeding import team_id
from upwatch.chores import Chore, Supervisor
from upwatch.clock import FakeClock, SystemClock
from upwatch.config import Settings
from upwatch.domain import (
    DueCheck,
    IpFamily,
    MonitorChanges,
    NewMonitor,
    Observation,
    Outcome,
    Status,
)
from upwatch.metrics import CheckerMetrics, new_registry
from upwatch.notifications import ChannelType
from upwatch.probes.tcp import probe
from upwatch.scheduler import Worker
from upwatch.scheduler.batcher import ResultBatcher
from upwatch.scheduler.planning import plan
from upwatch.store import Store
from upwatch.store.tables import check_results


@pytest.fixture
async def acme(store: Store) -> int:
    await store.teams.create("acme", None, at=0)
    return await team_id(store)


def worker(store: Store, clock: FakeClock, **kw: object) -> Worker:
    return Worker(Settings(), store, clock=clock, lookahead_ms=0, **kw)  # type: ignore[arg-type]


async def step(w: Worker, clock: FakeClock) -> int:
    scheduled = await w.run_once(clock.now_ms())
    await w.drain()
    return scheduled


async def total(store: Store, team: int, monitor_id: str) -> int:
    return (await store.results.page(team, monitor_id, limit=1, offset=0))[1]


async def test_a_new_monitor_is_checked_at_once_then_every_interval(
    store: Store, acme: int, clock: FakeClock
) -> None:
    with listener() as sock:
        port = sock.getsockname()[1]
        m = await store.monitors.create(
            acme, NewMonitor("up", "127.0.0.1", port, interval_s=10), at=clock.now_ms()
        )
        w = worker(store, clock)
        assert await step(w, clock) == 1
        clock.advance(9.9)
        assert await step(w, clock) == 0
        clock.advance(0.1)
        assert await step(w, clock) == 1
    results, count = await store.results.page(acme, m.id, limit=10, offset=0)
    assert count == 2
    assert [r.status for r in results] == [Status.UP, Status.UP]
    assert results[0].checked_at - results[1].checked_at == 10_000
    after = await store.monitors.get(acme, m.id)
    assert after.last_checked_at == results[0].checked_at
    assert after.last_status is Status.UP


async def test_a_check_stores_its_phase_timings_and_follows_the_ip_family(
    store: Store, acme: int, clock: FakeClock
) -> None:
    with listener() as sock:
        port = sock.getsockname()[1]
        auto = await store.monitors.create(acme, NewMonitor("a", "localhost", port), at=0)
        v6 = await store.monitors.create(
            acme, NewMonitor("b", "localhost", port, ip_family=IpFamily.IPV6), at=0
        )
        clock.set(0)
        await step(worker(store, clock), clock)
    [up], _ = await store.results.page(acme, auto.id, limit=10, offset=0)
    assert up.status is Status.UP
    assert (up.dns_time_ms is not None, up.connect_time_ms is not None) == (True, True)
    assert up.resolved_address == "127.0.0.1"
    # Nothing listens on ::1 here (or localhost has no IPv6 address): never 127.0.0.1.
    [other], _ = await store.results.page(acme, v6.id, limit=10, offset=0)
    assert other.status is Status.DOWN
    assert other.resolved_address in (None, "::1")


async def test_a_closed_port_is_stored_as_down(store: Store, acme: int, clock: FakeClock) -> None:
    m = await store.monitors.create(acme, NewMonitor("x", "127.0.0.1", closed_port()), at=0)
    clock.set(0)
    await step(worker(store, clock), clock)
    [r], _ = await store.results.page(acme, m.id, limit=10, offset=0)
    assert (r.status, r.error, r.response_time_ms) == (Status.DOWN, "Connection refused", None)


async def test_checks_are_counted_on_the_registry_the_worker_is_given(
    store: Store, acme: int, clock: FakeClock
) -> None:
    with listener() as sock:
        up = sock.getsockname()[1]
        await store.monitors.create(acme, NewMonitor("up", "127.0.0.1", up), at=0)
        await store.monitors.create(acme, NewMonitor("down", "127.0.0.1", closed_port()), at=0)
        clock.set(250)  # both were due at 0
        registry = new_registry()
        w = worker(store, clock, metrics=CheckerMetrics(registry))
        assert await step(w, clock) == 2
    for status, count in (("up", 1), ("down", 1), ("timeout", 0)):
        assert registry.get_sample_value("upwatch_checks_total", {"status": status}) == count
    assert registry.get_sample_value("upwatch_check_lateness_seconds_count") == 2
    # Planning spreads late checks over their interval: each started at 0.25 s late or more.
    assert registry.get_sample_value("upwatch_check_lateness_seconds_bucket", {"le": "0.1"}) == 0
    assert new_registry().get_sample_value("upwatch_checks_total", {"status": "up"}) is None


async def test_a_port_that_closes_and_reopens_gives_one_incident(
    store: Store, acme: int, clock: FakeClock
) -> None:
    """Checked for real: up, then refused for three intervals, then up again."""
    port = closed_port()
    m = await store.monitors.create(
        acme, NewMonitor("flaky", "127.0.0.1", port, interval_s=10, confirmation_checks=2), at=0
    )
    clock.set(0)
    w = worker(store, clock)
    timeline = []
    for second in range(0, 60, 10):
        if second:
            clock.advance(10)
        if second == 0 or second >= 40:
            with listener(port=port):
                await step(w, clock)
        else:
            await step(w, clock)
        timeline.append((await store.monitors.get(acme, m.id)).state.value)
    assert timeline == ["up", "up", "down", "down", "up", "up"]
    [incident], total = await store.incidents.of_monitor(acme, m.id, limit=10, offset=0)
    assert total == 1
    assert (incident.started_at, incident.confirmed_at, incident.resolved_at) == (
        10_000,
        20_000,
        40_000,
    )
    assert (incident.cause_status, incident.cause_error) == (Status.DOWN, "Connection refused")


async def test_disabled_monitors_are_never_checked(
    store: Store, acme: int, clock: FakeClock
) -> None:
    m = await store.monitors.create(
        acme, NewMonitor("off", "127.0.0.1", closed_port(), is_enabled=False), at=clock.now_ms()
    )
    w = worker(store, clock)
    for _ in range(3):
        assert await step(w, clock) == 0
        clock.advance(3600)
    assert await total(store, acme, m.id) == 0


async def test_re_enabled_and_retargeted_monitors_are_checked_at_once(
    store: Store, acme: int, clock: FakeClock
) -> None:
    m = await store.monitors.create(
        acme, NewMonitor("m", "127.0.0.1", closed_port(), interval_s=3600), at=clock.now_ms()
    )
    w = worker(store, clock)
    assert await step(w, clock) == 1
    clock.advance(5)
    await store.monitors.update(acme, m.id, MonitorChanges(port=closed_port()), at=clock.now_ms())
    assert await step(w, clock) == 1
    await store.monitors.update(acme, m.id, MonitorChanges(is_enabled=False), at=clock.now_ms())
    clock.advance(5)
    await store.monitors.update(acme, m.id, MonitorChanges(is_enabled=True), at=clock.now_ms())
    assert await step(w, clock) == 1
    assert await total(store, acme, m.id) == 3


@pytest.mark.parametrize("change", ["delete", "disable", "retarget"])
async def test_a_check_in_flight_for_a_changed_monitor_writes_nothing(
    store: Store, acme: int, clock: FakeClock, change: str
) -> None:
    gate = asyncio.Event()

    async def gated(check: DueCheck) -> Outcome:
        await gate.wait()
        return await probe(check.host, check.port, check.timeout_ms)

    m = await store.monitors.create(acme, NewMonitor("m", "127.0.0.1", closed_port()), at=0)
    clock.set(0)
    w = worker(store, clock, probe=gated)
    assert await w.run_once(clock.now_ms()) == 1
    if change == "delete":
        await store.monitors.delete(acme, m.id, at=0)
    elif change == "disable":
        await store.monitors.update(acme, m.id, MonitorChanges(is_enabled=False), at=1)
    else:
        await store.monitors.update(acme, m.id, MonitorChanges(host="localhost"), at=1)
    gate.set()
    await w.drain()
    assert w.batcher.written == 1  # the outcome reached the store, which refused it
    async with store.engine.connect() as conn:
        rows = await conn.scalar(
            select(func.count())
            .select_from(check_results)
            .where(check_results.c.monitor_id == m.id)
        )
    assert rows == 0
    if change != "delete":
        assert (await store.monitors.get(acme, m.id)).last_checked_at is None


async def test_checks_missed_during_downtime_are_spread_not_burst(
    store: Store, acme: int, clock: FakeClock
) -> None:
    port = closed_port()
    for i in range(100):
        await store.monitors.create(
            acme, NewMonitor(f"m{i}", "127.0.0.1", port, interval_s=60), at=clock.now_ms()
        )
    clock.advance(3600)  # the checker was down for an hour
    w = worker(store, clock)
    assert await step(w, clock) == 0
    per_step = []
    for _ in range(60):  # one claim a second (the checker polls four times a second)
        clock.advance(1)
        per_step.append(await step(w, clock))
    assert sum(per_step) == 100
    assert max(per_step) <= 10  # about 100 / 60 a second, never the whole backlog


@pytest.mark.parametrize("jump_s", [-3600, -90, -30, 30, 3600])
async def test_a_wall_clock_jump_neither_bursts_nor_stalls(
    store: Store, acme: int, clock: FakeClock, jump_s: int
) -> None:
    """60 monitors at 60 s, one due each second; then the wall clock jumps. A jump costs
    each monitor one interval's delay at most, once: it is checked again within two
    intervals of its last check, as time really passes; no second sees more than a
    handful of checks; a jump back by whole intervals leaves every monitor on its grid.
    (Without the pull-in, a jump back of an hour stops all checks for an hour.)"""
    port = closed_port()
    for i in range(60):  # each monitor told apart by its timeout
        await store.monitors.create(
            acme,
            NewMonitor(f"m{i}", "127.0.0.1", port, timeout_ms=1000 + i, interval_s=60),
            at=clock.now_ms() + i * 1000,
        )
    checked: dict[int, list[int]] = {1000 + i: [] for i in range(60)}  # monotonic ms

    async def recording(check: DueCheck) -> Outcome:
        checked[check.timeout_ms].append(clock.monotonic_ms())
        return await probe(check.host, check.port, check.timeout_ms)

    w = worker(store, clock, probe=recording)

    async def seconds(n: int) -> list[int]:
        per_second = []
        for _ in range(n):
            per_second.append(await step(w, clock))
            clock.advance(1)
        return per_second

    assert await seconds(60) == [1] * 60
    jumped_at = clock.monotonic_ms()
    clock.jump(jump_s)
    after = await seconds(120)
    assert max(after) <= 5, after  # no burst
    for monitor, times in checked.items():
        first_after = next(t for t in times if t >= jumped_at)
        last_before = max(t for t in times if t < jumped_at)
        assert first_after - last_before <= 2 * 60_000, (monitor, times)  # no stall
        assert len(times) <= 4, (monitor, times)  # 3 in 180 s on the grid, 1 more at most
    if jump_s == -3600:
        assert after == [1] * 120  # on the same grid as before


async def test_run_checks_on_the_real_clock_and_flushes_on_stop(store: Store, acme: int) -> None:
    with listener() as sock:
        m = await store.monitors.create(
            acme, NewMonitor("up", "127.0.0.1", sock.getsockname()[1]), at=SystemClock().now_ms()
        )
        w = Worker(Settings(), store)
        stop = asyncio.Event()
        running = asyncio.create_task(w.run(stop))
        for _ in range(100):  # at most 5 s
            if w.batcher.written or len(w.batcher):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(running, timeout=10)
    [r], _ = await store.results.page(acme, m.id, limit=10, offset=0)
    assert r.status is Status.UP


async def test_the_worker_sends_the_notifications_its_checks_cause(store: Store, acme: int) -> None:
    """Worker.run on the real clock: a refused port confirms an outage at its first
    check, and the sender chore delivers incident.opened to a real receiver."""
    async with receiving() as rx:
        channel = await store.channels.create(
            acme,
            name="ops",
            type=ChannelType.WEBHOOK,
            config={"url": rx.url()},
            is_enabled=True,
            at=SystemClock().now_ms(),
        )
        new = NewMonitor(
            "gone", "127.0.0.1", closed_port(), confirmation_checks=1, channel_ids=(channel.id,)
        )
        await store.monitors.create(acme, new, at=SystemClock().now_ms())
        w = Worker(Settings(), store)
        stop = asyncio.Event()
        running = asyncio.create_task(w.run(stop))
        try:
            [received] = await rx.wait_for(1, timeout_s=10)
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=10)
    assert received.json()["type"] == "incident.opened"
    assert w.chores.health()["sending notifications"].healthy


async def test_the_checker_applies_the_operators_target_policy(
    store: Store, acme: int, clock: FakeClock
) -> None:
    with listener() as sock:
        m = await store.monitors.create(
            acme, NewMonitor("meta", "localhost", sock.getsockname()[1]), at=clock.now_ms()
        )
        settings = Settings(target_deny="127.0.0.0/8,::1/128")
        w = Worker(settings, store, clock=clock, lookahead_ms=0)
        await step(w, clock)
    [r], _ = await store.results.page(acme, m.id, limit=10, offset=0)
    assert (r.status, r.error) == (Status.DOWN, "Target address not allowed")


async def test_a_batch_write_cancelled_at_shutdown_is_not_written_twice(
    store: Store, acme: int, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown cancels the batcher's loop. A write the database has already committed,
    but whose await has not returned, must not be written again by the final flush."""
    m = await store.monitors.create(acme, NewMonitor("m", "127.0.0.1", closed_port()), at=0)
    [planned] = await store.schedule.claim_due(horizon=1, limit=10, planner=partial(plan, at=0))
    committed = asyncio.Event()
    save = store.results.save

    async def committed_then_slow(batch: list[Observation]) -> None:
        await save(batch)
        committed.set()
        await asyncio.sleep(0.5)  # the await returns late, as under load

    monkeypatch.setattr(store.results, "save", committed_then_slow)
    batcher = ResultBatcher(store, buffer_max_rows=1000)
    batcher.add(Observation(planned.check, Outcome(Status.DOWN, error="refused"), 1))
    chores = Supervisor([Chore("writing results", 0.25, batcher.run_once, batcher.full)], clock)
    chores.start()
    await asyncio.wait_for(committed.wait(), 5)  # written at the first step
    await chores.stop(5)
    await batcher.flush()  # as Worker._shutdown does
    assert await total(store, acme, m.id) == 1
