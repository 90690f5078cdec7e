"""What a worker holds: the monitors whose latest claim is its own, each with when it is
due next. While the database is away, the worker goes on checking them on that
schedule; when it is back, the database is told what ran meanwhile."""

from __future__ import annotations

import dataclasses
import heapq

from upwatch.domain import DueCheck, Plan


class HeldSchedule:
    def __init__(self) -> None:
        self._held: dict[str, tuple[DueCheck, int]] = {}  # monitor id -> (check, next due)
        self._order: list[tuple[int, str]] = []  # heap of (next due, monitor id)
        self.offline_since: int | None = None  # when the database went away (ms)
        self._checks_before = 0
        self.checks_offline = 0  # checks run on this schedule, in all outages

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, plan: Plan) -> None:
        self._held[plan.check.monitor_id] = (plan.check, plan.next_due_at)
        heapq.heappush(self._order, (plan.next_due_at, plan.check.monitor_id))

    def take_due(self, horizon: int) -> list[DueCheck]:
        """Let go of the monitors due by ``horizon``; returns them, each as due then."""
        due_now = []
        while self._order and self._order[0][0] <= horizon:
            due, monitor_id = heapq.heappop(self._order)
            held = self._held.get(monitor_id)
            if held is not None and held[1] == due:  # else a stale entry of the heap
                del self._held[monitor_id]
                due_now.append(dataclasses.replace(held[0], due_at=due))
        return due_now

    def moves(self) -> list[tuple[str, int, int]]:
        """(monitor id, generation, next due) of each held monitor: for the database."""
        return [(c.monitor_id, c.generation, due) for c, due in self._held.values()]

    # -- outages -------------------------------------------------------------------------

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    def went_offline(self, at: int) -> bool:
        """Note the database gone at ``at``; False if it already was."""
        if self.offline_since is not None:
            return False
        self.offline_since = at
        self._checks_before = self.checks_offline
        return True

    def came_back(self, at: int) -> tuple[float, int]:
        """Note the database back; returns (seconds away, checks run meanwhile)."""
        away_s = (at - (self.offline_since or at)) / 1000
        self.offline_since = None
        return away_s, self.checks_offline - self._checks_before
