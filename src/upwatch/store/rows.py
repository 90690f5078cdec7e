"""Rows to domain objects, for the aggregates that read another's rows: a monitor (with
its state), and a monitor's state-machine columns."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import bindparam, select

from upwatch.domain import IpFamily, Monitor, MonitorState, Status
from upwatch.incidents import Tracker
from upwatch.store.connector import Row
from upwatch.store.fastpath import TrackerRow
from upwatch.store.tables import monitors

# The dataclass's fields that are the table's columns, in the dataclass's order.
MONITOR_COLUMNS = tuple(monitors.c[f.name] for f in fields(Monitor) if f.name in monitors.c)
MONITORS_BY_IDS = select(*MONITOR_COLUMNS).where(
    monitors.c.id.in_(bindparam("b_ids", expanding=True))
)


# Enum members by value: a dict lookup, where calling the enum costs ten times more
# (a list of 10,000 monitors makes 30,000 of them).
_STATUSES = {s.value: s for s in Status}
_STATES = {s.value: s for s in MonitorState}
_FAMILIES = {f.value: f for f in IpFamily}


def monitor(
    row: Row, *, channel_ids: tuple[str, ...] = (), in_maintenance: bool = False
) -> Monitor:
    """From MONITOR_COLUMNS (further columns are ignored; channel ids are read apart and
    passed in, as is whether a window covers it now: one object made, not copied)."""
    return Monitor(
        id=row.id,
        team_id=row.team_id,
        name=row.name,
        host=row.host,
        port=row.port,
        timeout_ms=row.timeout_ms,
        interval_s=row.interval_s,
        is_enabled=row.is_enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_checked_at=row.last_checked_at,
        last_status=_STATUSES[row.last_status] if row.last_status else None,
        last_response_time_ms=row.last_response_time_ms,
        confirmation_checks=row.confirmation_checks,
        recovery_checks=row.recovery_checks,
        state=_STATES[row.state],
        state_changed_at=row.state_changed_at,
        open_incident_id=row.open_incident_id,
        remind_every_minutes=row.remind_every_minutes,
        ip_family=_FAMILIES[row.ip_family],
        channel_ids=channel_ids,
        in_maintenance=in_maintenance,
    )


def tracker(row: TrackerRow) -> Tracker:
    return Tracker(
        state=MonitorState(row.state),
        state_changed_at=row.state_changed_at,
        open_incident_id=row.open_incident_id,
        run_failing=row.run_failing,
        run_length=row.run_length,
        run_started_at=row.run_started_at,
        cause_status=None if row.cause_status is None else Status(row.cause_status),
        cause_error=row.cause_error,
    )


def tracker_row(t: Tracker) -> TrackerRow:
    return TrackerRow(
        t.state.value,
        t.state_changed_at,
        t.open_incident_id,
        t.run_failing,
        t.run_length,
        t.run_started_at,
        None if t.cause_status is None else t.cause_status.value,
        t.cause_error,
    )
