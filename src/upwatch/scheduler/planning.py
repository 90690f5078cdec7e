"""Pure planning: given claimed monitors and the time, when does each run and when is it
due next. No I/O, no clock: ``at`` is a parameter."""

from __future__ import annotations

from collections.abc import Sequence

from upwatch.domain import DueCheck, Plan

# A check this late missed its slot (the checker was down or overloaded): it is
# re-spread over its interval instead of joining a burst of catch-up checks.
LATE_THRESHOLD_MS = 2_000
# ...but a daily monitor is not left waiting a day after a restart.
CATCHUP_WINDOW_MAX_MS = 300_000


def plan(due: Sequence[DueCheck], *, at: int) -> list[Plan]:
    """Plan a claimed batch. An on-time check runs at its due time and stays on its grid,
    so its phase never drifts. A late one is not run now: the late checks are laid out
    evenly over their catch-up window (the interval, capped), in the order they fell
    due, the k-th of n in the middle of the k-th n-th of the window. Evenly, not at
    random: 60 late monitors at 60 s land one a second, where random offsets put six in
    some second one time in 35."""
    late = sorted(
        (c for c in due if at - c.due_at > LATE_THRESHOLD_MS),
        key=lambda c: (c.due_at, c.monitor_id),
    )
    n = len(late)
    caught_up = {c.monitor_id: at + _window(c) * (2 * k + 1) // (2 * n) for k, c in enumerate(late)}
    return [
        Plan(c, run_at=None, next_due_at=caught_up[c.monitor_id])
        if c.monitor_id in caught_up
        else Plan(c, run_at=max(c.due_at, at), next_due_at=c.due_at + c.interval_s * 1000)
        for c in due
    ]


def _window(check: DueCheck) -> int:
    """The catch-up window of a late check: its interval, capped."""
    return min(check.interval_s * 1000, CATCHUP_WINDOW_MAX_MS)
