"""The checker's schedule: each monitor's next due time lives on its row. Claiming
moves it on; these are the claim, its release, and the repairs after an outage or a
clock jump."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import BigInteger, Update, bindparam, update

from upwatch.domain import DueCheck, Plan
from upwatch.store.connector import Connector
from upwatch.store.fastpath import FastPath
from upwatch.store.tables import monitors

Planner = Callable[[Sequence[DueCheck]], Sequence[Plan]]

_RELEASE = (
    update(monitors)
    .where(
        monitors.c.id == bindparam("b_id"),
        monitors.c.next_due_at == bindparam("b_claimed"),
    )
    .values(next_due_at=bindparam("b_due"))
)


def _pull_in() -> Update:
    now = bindparam("b_at", type_=BigInteger)
    slack = bindparam("b_slack", type_=BigInteger)
    interval_ms = monitors.c.interval_s * 1000
    due = monitors.c.next_due_at
    return (
        update(monitors)
        .where(due > now + interval_ms + slack)
        .values(next_due_at=due - ((due - now) // interval_ms) * interval_ms)
    )


_PULL_IN = _pull_in()


class Schedule:
    def __init__(self, db: Connector, fast: FastPath) -> None:
        self._db = db
        self._fast = fast

    async def claim_due(self, *, horizon: int, limit: int, planner: Planner) -> list[Plan]:
        """Claim up to ``limit`` enabled monitors due by ``horizon``, and move each one's
        due time to what ``planner`` says. Moving the due time is the claim: no other
        worker sees the monitor until then (a worker that dies loses one check at most).
        On PostgreSQL, rows another worker is claiming are skipped, not waited for."""
        async with self._db.write(bulk=True) as tx:
            due = await self._fast.claim(tx.driver, horizon, limit)
            if not due:
                return []
            plans = list(planner(due))
            await self._fast.move_due(
                tx.driver, [(p.check.monitor_id, p.next_due_at) for p in plans]
            )
        return plans

    async def release(self, plans: Sequence[Plan]) -> None:
        """Give back claims that will not be run (shutdown): each monitor is due again at
        the time it was claimed for, unless something else has moved it since the claim
        moved it to ``next_due_at``."""
        if not plans:
            return
        given_back = [
            {"b_id": p.check.monitor_id, "b_claimed": p.next_due_at, "b_due": p.check.due_at}
            for p in plans
        ]
        async with self._db.write(bulk=True) as tx:
            await tx.execute_many(_RELEASE, given_back)

    async def advance_due(self, moves: Sequence[tuple[str, int, int]]) -> int:
        """Move each (monitor id, generation, due time) on to that due time where it is
        earlier and the monitor is unchanged since: a worker that went on checking
        through a database outage tells the database what it already did. Returns how
        many moved."""
        if not moves:
            return 0
        async with self._db.write(bulk=True) as tx:
            return await self._fast.advance_due(tx.driver, moves)

    async def pull_in_far_future(self, *, at: int, slack_ms: int) -> int:
        """Bring back monitors due more than one interval (plus ``slack_ms``) after ``at``.
        Nothing schedules that far ahead, so they are there because the wall clock went
        back: each moves back by whole intervals to within one interval of ``at``, on
        its own grid, so it waits at most one interval more than it would have.
        Monitors that were spread stay spread; a jump of whole intervals changes only
        the dates. Idempotent, so several workers may do it. Returns how many moved."""
        async with self._db.write(bulk=True) as tx:
            return await tx.execute(_PULL_IN, {"b_at": at, "b_slack": slack_ms})
