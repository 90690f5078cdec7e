"""The worker loop: claim due monitors, probe them on time, hand outcomes to the batcher.

``run_once(at)`` is one step (tests drive it with an injected clock); ``run`` repeats
it, with the batcher, the purge and the held schedule, as chores under one supervisor
(upwatch.chores), and shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from upwatch.chores import Chore, Supervisor
from upwatch.clock import Clock, SystemClock
from upwatch.config import Settings
from upwatch.delivery import sender
from upwatch.domain import DueCheck, Observation, Outcome, Plan, TargetPolicy
from upwatch.errors import DatabaseUnavailable
from upwatch.metrics import CheckerMetrics, new_registry
from upwatch.probes import tcp
from upwatch.scheduler.batcher import FLUSH_INTERVAL_S, ResultBatcher
from upwatch.scheduler.held import HeldSchedule
from upwatch.scheduler.planning import plan
from upwatch.store import Store

log = logging.getLogger(__name__)

Probe = Callable[[DueCheck], Awaitable[Outcome]]

POLL_INTERVAL_S = 0.25  # new, re-enabled and re-targeted monitors start within this
CLAIM_LOOKAHEAD_MS = 500  # claim a little early, then start each check on its due time
CLAIM_BATCH = 1_000
PURGE_INTERVAL_S = 600.0
REMINDER_INTERVAL_S = 10.0  # reminders are minutes apart: within 10 s is on time
SHUTDOWN_GRACE_S = 5.0  # in-flight checks get this long to finish at shutdown
CHORES_STOP_S = 5.0  # and the chores this long to stop
DNS_RESOLVER_THREADS = 64  # getaddrinfo blocks a thread; the default pool has ~6
CLAIM_TIMEOUT_S = 5.0  # a claim that takes longer counts as the database being away
TIMER_SLACK_MS = 1
# The wall clock moving this much more or less than the monotonic clock is a jump.
CLOCK_JUMP_MS = 1_000
# Monitors due further ahead than an interval plus this are pulled back (clock went
# back). Generous, so that workers on machines whose clocks differ a little never pull
# in each other's claims.
CLOCK_SKEW_TOLERANCE_MS = 5_000
# Results are folded into hourly and daily rollups this often (store/rollups.py):
# statistics beyond raw results are this fresh.
ROLLUP_INTERVAL_S = 60.0


async def _probe_tcp(check: DueCheck, *, policy: TargetPolicy) -> Outcome:
    return await tcp.probe(
        check.host, check.port, check.timeout_ms, family=check.ip_family, policy=policy
    )


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock | None = None,
        probe: Probe | None = None,
        lookahead_ms: int = CLAIM_LOOKAHEAD_MS,
        metrics: CheckerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock or SystemClock()
        self._probe = probe or partial(_probe_tcp, policy=settings.target_policy)
        self._lookahead_ms = lookahead_ms
        self.metrics = metrics or CheckerMetrics(new_registry())
        self._slots = asyncio.Semaphore(settings.check_concurrency)
        self._pending: dict[int, tuple[asyncio.TimerHandle, Plan]] = {}
        self._next_token = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._clock_offset: int | None = None  # wall minus monotonic, at the last step
        self.held = HeldSchedule()
        self.batcher = ResultBatcher(
            store, buffer_max_rows=settings.result_buffer_rows, dropped=self.metrics.results_dropped
        )
        self.checks_run = 0
        retention_ms = settings.result_retention_days * 86_400_000
        rollup_retention_ms = settings.rollup_retention_days * 86_400_000
        self.sender = sender.Sender(
            settings, store, self._clock, metrics=self.metrics.notifications
        )
        batch_ready = self.batcher.full
        self.chores = Supervisor(
            [
                Chore("claiming due checks", POLL_INTERVAL_S, self.run_once, wake=self._wake),
                Chore("writing results", FLUSH_INTERVAL_S, self.batcher.run_once, wake=batch_ready),
                Chore(
                    "purging old results",
                    PURGE_INTERVAL_S,
                    partial(self._purge, retention_ms, rollup_retention_ms),
                ),
                Chore("rolling up results", ROLLUP_INTERVAL_S, self._roll_up),
                # While the database is away, the claims back off; the held schedule
                # still needs its checks started on time.
                Chore("running held checks", POLL_INTERVAL_S, self._run_held_if_offline),
                Chore("writing reminders", REMINDER_INTERVAL_S, self._remind),
                Chore(
                    "sending notifications",
                    sender.POLL_INTERVAL_S,
                    self.sender.run_once,
                    wake=self.sender.wake,
                ),
            ],
            self._clock,
        )

    @property
    def checks_offline(self) -> int:
        return self.held.checks_offline

    # -- one step ----------------------------------------------------------------------

    async def run_once(self, at: int) -> int:
        """Claim what is due at ``at`` (or within the look-ahead) and schedule it; while
        the database is unavailable, schedule what this worker holds on its own (and
        raise DatabaseUnavailable). Returns how many checks were scheduled."""
        try:
            await self._follow_clock(at)
            if self.held.offline:
                await self._back_online(at)
            return await self._claim(at)
        except DatabaseUnavailable:
            if self.held.went_offline(at):
                log.warning(
                    "database unavailable: checking the %d monitors this worker holds on "
                    "their own schedule until it is back",
                    len(self.held),
                )
            self._clock_offset = None  # sweep again once the database is back
            self._run_held(at)
            raise

    async def _claim(self, at: int) -> int:
        horizon = at + self._lookahead_ms
        scheduled = 0
        while True:
            try:
                async with asyncio.timeout(CLAIM_TIMEOUT_S):
                    plans = await self._store.schedule.claim_due(
                        horizon=horizon, limit=CLAIM_BATCH, planner=partial(plan, at=at)
                    )
            except TimeoutError:
                raise DatabaseUnavailable(
                    f"database unavailable: no answer within {CLAIM_TIMEOUT_S:g} s"
                ) from None
            scheduled += self._carry_out(plans)
            if len(plans) < CLAIM_BATCH:
                break
        # A monitor we held that came due and that this round did not claim again was
        # claimed by another worker (or disabled or deleted): no longer ours to check.
        self.held.take_due(horizon)
        return scheduled

    def _carry_out(self, plans: Sequence[Plan]) -> int:
        """Hold each planned monitor for its next time and schedule the checks to run.
        Returns how many were scheduled."""
        # Timers count from now, not from the planning time: claiming took time. One
        # more millisecond, because the loop's timers may fire up to 1 ms early.
        now = self._clock.now_ms() - TIMER_SLACK_MS
        scheduled = 0
        for p in plans:
            self.held.hold(p)
            if p.run_at is not None:
                self._schedule(p, delay_s=(p.run_at - now) / 1000)
                scheduled += 1
        return scheduled

    # -- the schedule held through a database outage -----------------------------------

    def _run_held(self, at: int) -> None:
        """Run the held monitors due within the look-ahead, on their grid, and hold each
        for its next time (late ones are spread, as planning does)."""
        due_now = self.held.take_due(at + self._lookahead_ms)
        self.held.checks_offline += self._carry_out(plan(due_now, at=at))

    async def _run_held_if_offline(self, at: int) -> None:
        if self.held.offline:
            self._run_held(at)

    async def _back_online(self, at: int) -> None:
        """Before claiming again, move the held monitors' due times on past the checks
        run meanwhile, so that none is checked twice."""
        moved = await self._store.schedule.advance_due(self.held.moves())
        away_s, checks = self.held.came_back(at)
        log.warning(
            "database back after %.1f s: %d checks ran on the held schedule, %d due times moved on",
            away_s,
            checks,
            moved,
        )

    async def _follow_clock(self, at: int) -> None:
        """Notice the wall clock jumping. Forward needs nothing: every monitor is late
        and planning spreads late checks over their interval. Back would leave every
        monitor due far ahead, and no check would run until the clock caught up: those
        are pulled back within their interval. The same is done once at start, for a
        clock that went back while no checker ran."""
        offset = at - self._clock.monotonic_ms()
        previous, self._clock_offset = self._clock_offset, offset
        if previous is not None:
            jump = offset - previous
            if abs(jump) <= CLOCK_JUMP_MS:
                return
            log.warning("the wall clock jumped %+.1f s", jump / 1000)
            if jump > 0:
                return
        moved = await self._store.schedule.pull_in_far_future(
            at=at, slack_ms=self._lookahead_ms + CLOCK_SKEW_TOLERANCE_MS
        )
        if moved:
            log.warning(
                "%d monitors were due more than an interval ahead (the clock went back): "
                "each is due again within its interval",
                moved,
            )

    async def drain(self) -> None:
        """Wait for every scheduled and running check, then write all results."""
        while self._pending or self._in_flight:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            else:
                await asyncio.sleep(0.01)
        await self.batcher.flush()

    def wake(self) -> None:
        """Look for due monitors now (a monitor was created or changed in this process)."""
        self._wake.set()

    # -- checks ------------------------------------------------------------------------

    def _schedule(self, planned: Plan, *, delay_s: float) -> None:
        if delay_s <= 0:
            self._start(planned.check)
            return
        token = self._next_token
        self._next_token += 1
        handle = asyncio.get_running_loop().call_later(delay_s, self._fire, token)
        self._pending[token] = (handle, planned)

    def _fire(self, token: int) -> None:
        _, planned = self._pending.pop(token)
        self._start(planned.check)

    def _start(self, check: DueCheck) -> None:
        task = asyncio.create_task(self._check(check))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _check(self, check: DueCheck) -> None:
        async with self._slots:
            checked_at = self._clock.now_ms()
            self.metrics.lateness.observe(max(0, checked_at - check.due_at) / 1000)
            try:
                outcome = await self._probe(check)
            except Exception:
                log.exception(
                    "probe of %s:%d failed unexpectedly",
                    check.host,
                    check.port,
                    extra={"monitor_id": check.monitor_id},
                )
                return
        self.checks_run += 1
        self.metrics.checks[outcome.status].inc()
        self.batcher.add(Observation(check, outcome, checked_at))

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set; then finish or drop in-flight checks, give back
        unstarted claims and flush every result."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(DNS_RESOLVER_THREADS, thread_name_prefix="upwatch-dns")
        )
        raise_fd_limit()
        self.chores.start()
        log.info("checker started (concurrency %d)", self._settings.check_concurrency)
        try:
            await stop.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        await self.chores.stop(CHORES_STOP_S)
        await self.sender.close(SHUTDOWN_GRACE_S)
        for handle, _ in self._pending.values():
            handle.cancel()
        unstarted = [planned for _, planned in self._pending.values()]
        self._pending.clear()
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=SHUTDOWN_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                log.warning("dropped %d checks still running at shutdown", len(late))
        try:
            await self._store.schedule.release(unstarted)
            written = await self.batcher.flush()
            log.info(
                "checker stopped: %d checks run, %d results written (%d at shutdown), %d dropped",
                self.checks_run,
                self.batcher.written,
                written,
                self.batcher.dropped,
            )
        except DatabaseUnavailable as exc:
            log.error(
                "checker stopped; %d results could not be written: %s", len(self.batcher), exc
            )

    async def _remind(self, at: int) -> None:
        if await self._store.reminders.send_due(at=at):
            self.sender.wake.set()

    async def _purge(self, retention_ms: int, rollup_retention_ms: int, at: int) -> None:
        purged = await self._store.results.purge(before=at - retention_ms)
        if purged:
            log.info("purged %d results older than %d days", purged, retention_ms // 86_400_000)
        purged = await self._store.rollups.purge(before=at - rollup_retention_ms)
        if purged:
            days = rollup_retention_ms // 86_400_000
            log.info("purged %d rollups older than %d days", purged, days)

    async def _roll_up(self, at: int) -> None:
        del at  # what is pending, whenever it was checked
        await self._store.rollups.compact()


def raise_fd_limit() -> None:
    """Every check in flight holds a socket: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
