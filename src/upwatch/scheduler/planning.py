"""Pure planning: given claimed monitors and the time, when does each run and when is it
due next. No I/O, no clock: ``at`` is a parameter."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from upwatch.domain import DueCheck, Plan

# A check this late missed its slot (the checker was down or overloaded): it is
# re-spread over its interval instead of joining a burst of catch-up checks.
LATE_THRESHOLD_MS = 2_000
# ...but a daily monitor is not left waiting a day after a restart.
CATCHUP_WINDOW_MAX_MS = 300_000


def plan(due: Sequence[DueCheck], *, at: int) -> list[Plan]:
    return [plan_one(check, at=at) for check in due]


def plan_one(check: DueCheck, *, at: int) -> Plan:
    interval_ms = check.interval_s * 1000
    if at - check.due_at > LATE_THRESHOLD_MS:
        window = min(interval_ms, CATCHUP_WINDOW_MAX_MS)
        return Plan(check, run_at=None, next_due_at=at + phase(check.monitor_id, window))
    # On time (or due within the look-ahead): run at the due time and stay on the
    # monitor's grid, so its phase never drifts.
    return Plan(check, run_at=max(check.due_at, at), next_due_at=check.due_at + interval_ms)


def phase(monitor_id: str, window_ms: int) -> int:
    """A stable offset in [0, window_ms) for this monitor: catch-up checks of many
    monitors land evenly over the window, and the same monitor always lands alike."""
    digest = hashlib.blake2b(monitor_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % max(window_ms, 1)
