"""Background chores under one supervisor.

A chore is one step, ``run_once(at)``, repeated every ``interval_s`` (sooner when its
``wake`` event is set). The supervisor runs each chore's first step at start, logs a
failing step and retries it with backoff (a database outage is a warning, anything
else is logged with its traceback), keeps each chore's health, and stops them all
within a deadline. Modelled on saq's ``upkeep`` and procrastinate's side tasks, small
enough to write here: neither library runs a step that is not one of its own jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from upwatch.clock import Clock
from upwatch.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Chore:
    name: str  # in log lines: "claim due checks", "purge old results"
    interval_s: float
    run_once: Callable[[int], Awaitable[object]]  # takes ``at`` (ms)
    wake: asyncio.Event | None = None  # set it to run the next step now


@dataclass(frozen=True, slots=True)
class Health:
    runs: int = 0  # steps that succeeded
    failures: int = 0  # steps that failed since the last success
    last_ok_at: int | None = None
    last_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.failures == 0


@dataclass
class Supervisor:
    chores: Sequence[Chore]
    clock: Clock
    backoff_max_s: float = BACKOFF_MAX_S
    _health: dict[str, Health] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [c.name for c in self.chores]
        if len(set(names)) != len(names):
            raise ValueError(f"chore names must be unique: {names}")
        self._health = {c.name: Health() for c in self.chores}

    def health(self) -> dict[str, Health]:
        return dict(self._health)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep(c), name=f"upwatch-chore-{c.name}") for c in self.chores
        ]

    async def stop(self, deadline_s: float) -> None:
        """Cancel every chore and wait for them, at most ``deadline_s``."""
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=deadline_s)
        if late:
            log.error(
                "chores still running %.1f s after being stopped: %s",
                deadline_s,
                ", ".join(sorted(t.get_name() for t in late)),
            )
        self._tasks = list(late)

    async def _keep(self, chore: Chore) -> None:
        me = asyncio.current_task()
        while True:
            delay = chore.interval_s
            try:
                await chore.run_once(self.clock.now_ms())
                if me is not None and me.cancelling():
                    # Stopped while the step ran, and the step swallowed it.
                    raise asyncio.CancelledError
            except DatabaseUnavailable as exc:
                delay = self._failed(chore, exc)
                log.warning("%s failed: %s; retrying in %.1f s", chore.name, exc, delay)
            except Exception as exc:
                delay = self._failed(chore, exc)
                log.exception("%s failed; retrying in %.1f s", chore.name, delay)
            else:
                self._succeeded(chore)
            await self._pause(chore, delay)

    def _failed(self, chore: Chore, exc: Exception) -> float:
        """Record the failure; returns how long to wait before the next step."""
        before = self._health[chore.name]
        failures = before.failures + 1
        self._health[chore.name] = replace(
            before, failures=failures, last_error=str(exc) or type(exc).__name__
        )
        return backoff_s(chore.interval_s, failures, self.backoff_max_s)

    def _succeeded(self, chore: Chore) -> None:
        before = self._health[chore.name]
        if before.failures:
            log.info("%s works again after %d failures", chore.name, before.failures)
        self._health[chore.name] = Health(
            runs=before.runs + 1, last_ok_at=self.clock.now_ms(), last_error=before.last_error
        )

    async def _pause(self, chore: Chore, delay_s: float) -> None:
        if chore.wake is None:
            await asyncio.sleep(delay_s)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chore.wake.wait(), timeout=delay_s)
        chore.wake.clear()


def backoff_s(interval_s: float, failures: int, backoff_max_s: float) -> float:
    """The interval doubled per failure in a row, up to the larger of the interval and
    ``backoff_max_s``: a chore that runs every 10 minutes is not retried sooner."""
    ceiling = max(interval_s, backoff_max_s)
    return min(interval_s * float(2 ** min(failures, 32)), ceiling)
