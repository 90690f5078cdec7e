"""The chore supervisor: steps repeated, failures logged and retried with backoff,
health kept, early wake-ups, and a stop within its deadline."""

import asyncio
import logging

import pytest

from upwatch.chores import Chore, Supervisor, backoff_s
from upwatch.clock import FakeClock
from upwatch.errors import DatabaseUnavailable


def test_backoff_doubles_up_to_the_larger_of_the_cap_and_the_interval() -> None:
    assert [backoff_s(0.25, n, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_s(600, 1, 5.0) == 600  # a slow chore is not retried sooner
    assert backoff_s(0.25, 10_000, 5.0) == 5.0  # no overflow after a long outage


async def test_a_failing_chore_is_logged_retried_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def flaky(at: int) -> None:
        calls.append(at)
        if len(calls) == 1:
            raise DatabaseUnavailable("database unavailable: refused")
        if len(calls) == 2:
            raise KeyError("a bug")

    clock = FakeClock()
    chores = Supervisor([Chore("flaky", 0.001, flaky)], clock, backoff_max_s=0.01)
    with caplog.at_level(logging.INFO, logger="upwatch.chores"):
        chores.start()
        for _ in range(200):  # at most 2 s
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
        await chores.stop(1.0)
    assert len(calls) >= 4
    assert calls[0] == clock.now_ms()  # each step is given ``at``
    health = chores.health()["flaky"]
    assert health.healthy
    assert health.runs >= 2
    assert health.last_error == "'a bug'"
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        "WARNING",
        "flaky failed: database unavailable: refused; retrying in 0.0 s",
    ) in messages
    [crash] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert crash.getMessage().startswith("flaky failed; retrying in")
    assert crash.exc_info is not None  # the traceback of a bug is logged
    assert ("INFO", "flaky works again after 2 failures") in messages


async def test_health_counts_failures_in_a_row() -> None:
    async def down(at: int) -> None:
        raise DatabaseUnavailable("database unavailable: gone")

    chores = Supervisor([Chore("down", 0.001, down)], FakeClock(), backoff_max_s=0.001)
    chores.start()
    for _ in range(200):
        if chores.health()["down"].failures >= 3:
            break
        await asyncio.sleep(0.01)
    await chores.stop(1.0)
    health = chores.health()["down"]
    assert not health.healthy
    assert health.failures >= 3
    assert health.last_ok_at is None
    assert health.last_error == "database unavailable: gone"


async def test_a_wake_runs_the_next_step_now() -> None:
    steps = asyncio.Queue[int]()
    wake = asyncio.Event()

    async def record(at: int) -> None:
        steps.put_nowait(at)

    chores = Supervisor([Chore("slow", 3600, record, wake=wake)], FakeClock())
    chores.start()
    await asyncio.wait_for(steps.get(), 1)  # the first step runs at start
    wake.set()
    await asyncio.wait_for(steps.get(), 1)  # not an hour later
    await chores.stop(1.0)


async def test_stop_gives_up_on_a_chore_after_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn(at: int) -> None:
        started.set()
        while not release.is_set():  # swallows cancellation, as a buggy step would
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    chores = Supervisor([Chore("stubborn", 1, stubborn)], FakeClock())
    chores.start()
    await asyncio.wait_for(started.wait(), 1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await chores.stop(0.2)
    assert loop.time() - began < 1.0
    assert "upwatch-chore-stubborn" in caplog.text
    release.set()  # the step returns; the chore ends at once, the stop remembered
    caplog.clear()
    began = loop.time()
    await chores.stop(1.0)
    assert loop.time() - began < 0.5
    assert "still running" not in caplog.text


def test_chore_names_are_unique() -> None:
    async def nothing(at: int) -> None:
        return None

    with pytest.raises(ValueError, match="unique"):
        Supervisor([Chore("a", 1, nothing), Chore("a", 2, nothing)], FakeClock())
