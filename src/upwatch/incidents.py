"""A monitor's state and its incidents (SPEC §7), as pure rules over its results.

Each monitor keeps a ``Tracker``: its state, and the run of like results it is in
(failures or ups: how many, since when, and the first failure's cause). ``advance``
applies one result, in ``checkedAt`` order, and says what changed: an incident opened
or resolved. The store applies it where results are written, in the same transaction
(store/results.py), so state, incidents and results never disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from upwatch.domain import CHECKS_MAX, MonitorState, Status, random_base62

INCIDENT_ID_PREFIX = "tcpi_"
RUN_CAP = CHECKS_MAX  # a run longer than any threshold counts as this long


class EndReason(enum.StrEnum):
    RECOVERED = "recovered"
    RETARGETED = "retargeted"  # host or port changed
    PAUSED = "paused"  # disabled
    DELETED = "deleted"


def new_incident_id() -> str:
    return INCIDENT_ID_PREFIX + random_base62(22)


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    monitor_id: str
    is_open: bool
    started_at: int
    confirmed_at: int
    resolved_at: int | None  # when it ended: the first up check, or the change that ended it
    cause_status: Status
    cause_error: str | None
    end_reason: EndReason | None


@dataclass(frozen=True, slots=True)
class Tracker:
    state: MonitorState = MonitorState.UNKNOWN
    state_changed_at: int | None = None  # None while unknown
    open_incident_id: str | None = None
    run_failing: bool | None = None  # the current run: of failures, of ups, or none yet
    run_length: int = 0
    run_started_at: int | None = None  # checkedAt of the run's first result
    cause_status: Status | None = None  # the run's first failure (failing runs only)
    cause_error: str | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    incident_id: str
    started_at: int  # the first failed check of the run
    confirmed_at: int  # the check that confirmed it
    cause_status: Status
    cause_error: str | None


@dataclass(frozen=True, slots=True)
class Resolved:
    incident_id: str
    resolved_at: int  # the first up check of the recovery run
    reason: EndReason


Change = Opened | Resolved


def advance(
    tracker: Tracker,
    status: Status,
    error: str | None,
    checked_at: int,
    *,
    confirmation_checks: int,
    recovery_checks: int,
) -> tuple[Tracker, Change | None]:
    """Apply one result (newer than every result applied before it)."""
    failing = status is not Status.UP
    if tracker.run_failing is failing:
        t = replace(tracker, run_length=min(tracker.run_length + 1, RUN_CAP))
    else:
        t = replace(
            tracker,
            run_failing=failing,
            run_length=1,
            run_started_at=checked_at,
            cause_status=status if failing else None,
            cause_error=error if failing else None,
        )
    assert t.run_started_at is not None
    if failing and t.state is not MonitorState.DOWN and t.run_length >= confirmation_checks:
        assert t.cause_status is not None
        opened = Opened(
            new_incident_id(), t.run_started_at, checked_at, t.cause_status, t.cause_error
        )
        down = replace(
            t,
            state=MonitorState.DOWN,
            state_changed_at=checked_at,
            open_incident_id=opened.incident_id,
        )
        return down, opened
    if not failing and t.state is not MonitorState.UP and t.run_length >= recovery_checks:
        up = replace(t, state=MonitorState.UP, state_changed_at=checked_at, open_incident_id=None)
        if t.open_incident_id is None:  # from unknown: no incident to resolve
            return up, None
        return up, Resolved(t.open_incident_id, t.run_started_at, EndReason.RECOVERED)
    return t, None


def reset(
    open_incident_id: str | None, reason: EndReason, at: int
) -> tuple[Tracker, Resolved | None]:
    """The target changed or checking stopped: the state is unknown again (the run of
    the old target no longer counts), and an open incident ends at ``at`` with
    ``reason``."""
    ended = None if open_incident_id is None else Resolved(open_incident_id, at, reason)
    return Tracker(), ended
