"""Monitors: a team's targets, within the team's limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, fields, replace

from sqlalchemy import bindparam, delete, func, insert, select, update

from upwatch.domain import (
    Monitor,
    MonitorChanges,
    NewMonitor,
    family_problem,
    new_monitor_id,
    reschedule,
)
from upwatch.errors import FamilyMismatch, MonitorLimitExceeded, MonitorNotFound
from upwatch.incidents import EndReason, Resolved, reset
from upwatch.maintenance import Window
from upwatch.notifications import Event
from upwatch.stats import HOUR_MS
from upwatch.store import channels as channel_rows
from upwatch.store import incidents as incident_rows
from upwatch.store import notices, pauses
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector, Tx
from upwatch.store.fastpath import TRACKER_COLUMNS
from upwatch.store.rows import MONITOR_COLUMNS, monitor, tracker_row
from upwatch.store.tables import monitors, teams

COLUMNS = MONITOR_COLUMNS
LIST_CHUNK = 500  # monitors built between two turns of the event loop
# A monitor with more rows than this is deleted off the event loop on SQLite: its
# results and rollups go with it (~3 us a row, so this many take ~15 ms). Rollups are
# counted as one an hour since it was created (hourly ones; kept for a year and more).
BULK_DELETE_ROWS = 5_000

_OWNED = (monitors.c.id == bindparam("b_id")) & (monitors.c.team_id == bindparam("b_team"))
_GET = select(*COLUMNS).where(_OWNED)
_LIST = (
    select(*COLUMNS)
    .where(monitors.c.team_id == bindparam("b_team"))
    .order_by(monitors.c.created_at, monitors.c.id)
)
_EXISTS = select(monitors.c.id).where(_OWNED)
# One conditional UPDATE takes a slot: it holds under any concurrency, since PostgreSQL
# re-checks the condition on the locked row and SQLite serialises writers.
_TAKE_SLOT = (
    update(teams)
    .where(
        teams.c.id == bindparam("b_team"),
        teams.c.monitor_count < func.coalesce(teams.c.max_monitors, bindparam("b_default")),
    )
    .values(monitor_count=teams.c.monitor_count + 1)
)
_GIVE_SLOT = (
    update(teams)
    .where(teams.c.id == bindparam("b_team"))
    .values(monitor_count=teams.c.monitor_count - 1)
)
_INSERT = insert(monitors)
# FOR UPDATE on PostgreSQL; SQLite renders nothing for it (its writers are serialised).
_LOCK = (
    select(*COLUMNS, monitors.c.next_due_at, monitors.c.generation).where(_OWNED).with_for_update()
)
_CHANGE = (
    update(monitors)
    .where(monitors.c.id == bindparam("b_id"))
    .values(
        name=bindparam("b_name"),
        host=bindparam("b_host"),
        port=bindparam("b_port"),
        timeout_ms=bindparam("b_timeout_ms"),
        interval_s=bindparam("b_interval_s"),
        is_enabled=bindparam("b_is_enabled"),
        confirmation_checks=bindparam("b_confirmation_checks"),
        recovery_checks=bindparam("b_recovery_checks"),
        remind_every_minutes=bindparam("b_remind_every_minutes"),
        ip_family=bindparam("b_ip_family"),
        updated_at=bindparam("b_updated_at"),
        next_due_at=bindparam("b_next_due_at"),
        generation=bindparam("b_generation"),
    )
)
_DELETE = delete(monitors).where(_OWNED)
_SIZE = select(monitors.c.result_count, monitors.c.created_at).where(_OWNED)
_RESET_STATE = (
    update(monitors)
    .where(monitors.c.id == bindparam("b_id"))
    .values({c: bindparam(f"b_{c}") for c in TRACKER_COLUMNS})
)


class Monitors:
    def __init__(self, db: Connector, *, default_max_monitors: int) -> None:
        self._db = db
        self._default_max = default_max_monitors

    async def create(self, team_id: int, new: NewMonitor, *, at: int) -> Monitor:
        created = Monitor(
            id=new_monitor_id(),
            team_id=team_id,
            name=new.name,
            host=new.host,
            port=new.port,
            timeout_ms=new.timeout_ms,
            interval_s=new.interval_s,
            is_enabled=new.is_enabled,
            confirmation_checks=new.confirmation_checks,
            recovery_checks=new.recovery_checks,
            channel_ids=new.channel_ids,
            remind_every_minutes=new.remind_every_minutes,
            ip_family=new.ip_family,
            created_at=at,
            updated_at=at,
            last_checked_at=None,
            last_status=None,
            last_response_time_ms=None,
        )
        async with self._db.write() as tx:
            taken = await tx.execute(
                _TAKE_SLOT, {"b_team": team_id, "b_default": self._default_max}
            )
            if taken != 1:
                raise MonitorLimitExceeded
            # A new monitor is due at once.
            row = {k: v for k, v in asdict(created).items() if k in monitors.c}
            row.update(state=created.state.value, ip_family=created.ip_family.value)
            await tx.execute(_INSERT, {**row, "next_due_at": at})
            if created.channel_ids:
                await channel_rows.link(tx, team_id, created.id, created.channel_ids)
            await pauses.record(
                tx, created.id, was_enabled=True, is_enabled=created.is_enabled, at=at
            )
            windows = await window_rows.of_teams(tx, [team_id])
        return _maintained(created, windows, at)

    async def get(self, team_id: int, monitor_id: str, *, at: int | None = None) -> Monitor:
        """The monitor; with ``at``, whether it is in a maintenance window then."""
        async with self._db.read() as reads:
            row = await reads.first(_GET, {"b_id": monitor_id, "b_team": team_id})
            if row is None:
                raise MonitorNotFound
            links = await channel_rows.ids_of(reads, [monitor_id])
            windows = [] if at is None else await window_rows.of_teams(reads, [team_id])
        return _maintained(monitor(row, channel_ids=links.get(monitor_id, ())), windows, at)

    async def list_for(self, team_id: int, *, at: int | None = None) -> list[Monitor]:
        """The team's monitors, oldest first (``in_maintenance`` as of ``at``, if given)."""
        return [m async for chunk in self.chunks_for(team_id, at=at) for m in chunk]

    async def chunks_for(
        self, team_id: int, *, at: int | None = None, size: int = LIST_CHUNK
    ) -> AsyncIterator[list[Monitor]]:
        """``list_for``, ``size`` monitors at a time from one read, the event loop free
        to serve others between chunks: building 10,000 takes it ~40 ms."""
        async with self._db.read() as reads:
            rows = await reads.rows(_LIST, {"b_team": team_id})
            links = await channel_rows.ids_of_team(reads, team_id)
            windows = [] if at is None else await window_rows.of_teams(reads, [team_id])
        covering = windows if at is not None else []
        when = at or 0
        for first in range(0, len(rows), size):
            if first:
                await asyncio.sleep(0)
            yield [
                monitor(
                    r,
                    channel_ids=links.get(r.id, ()),
                    in_maintenance=bool(covering)
                    and window_rows.in_maintenance(covering, r.id, when),
                )
                for r in rows[first : first + size]
            ]

    async def require(self, team_id: int, monitor_id: str) -> None:
        """Raise MonitorNotFound unless the team has this monitor."""
        async with self._db.read() as reads:
            found = await reads.scalar(_EXISTS, {"b_id": monitor_id, "b_team": team_id})
        if found is None:
            raise MonitorNotFound

    async def update(
        self, team_id: int, monitor_id: str, changes: MonitorChanges, *, at: int
    ) -> Monitor:
        async with self._db.write() as tx:
            row = await tx.first(_LOCK, {"b_id": monitor_id, "b_team": team_id})
            if row is None:
                raise MonitorNotFound
            links = await channel_rows.ids_of(tx, [monitor_id])
            before = replace(monitor(row), channel_ids=links.get(monitor_id, ()))
            plan = reschedule(before, changes, at)
            given = {f.name: getattr(changes, f.name) for f in fields(MonitorChanges)}
            after = replace(
                before, **{k: v for k, v in given.items() if v is not None}, updated_at=at
            )
            if problem := family_problem(after.host, after.ip_family):
                raise FamilyMismatch(problem)
            await tx.execute(
                _CHANGE,
                {
                    "b_id": monitor_id,
                    "b_name": after.name,
                    "b_host": after.host,
                    "b_port": after.port,
                    "b_timeout_ms": after.timeout_ms,
                    "b_interval_s": after.interval_s,
                    "b_is_enabled": after.is_enabled,
                    "b_confirmation_checks": after.confirmation_checks,
                    "b_recovery_checks": after.recovery_checks,
                    "b_remind_every_minutes": after.remind_every_minutes,
                    "b_ip_family": after.ip_family.value,
                    "b_updated_at": at,
                    "b_next_due_at": row.next_due_at
                    if plan.next_due_at is None
                    else plan.next_due_at,
                    "b_generation": row.generation + 1 if plan.new_generation else row.generation,
                },
            )
            if changes.channel_ids is not None:
                await channel_rows.link(tx, team_id, monitor_id, changes.channel_ids)
            await pauses.record(
                tx, monitor_id, was_enabled=before.is_enabled, is_enabled=after.is_enabled, at=at
            )
            if plan.new_generation:
                after = await _reset_state(tx, before, after, at)
            windows = await window_rows.of_teams(tx, [team_id])
        return _maintained(after, windows, at)

    async def delete(self, team_id: int, monitor_id: str, *, at: int) -> None:
        """The monitor goes with its results and incidents; an open incident is first
        ended (``deleted``) and its channels told, in the same transaction."""
        async with self._db.read() as reads:
            size = await reads.first(_SIZE, {"b_id": monitor_id, "b_team": team_id})
        if size is None:
            raise MonitorNotFound
        rows = size.result_count + max(0, at - size.created_at) // HOUR_MS
        async with self._db.write(bulk=rows > BULK_DELETE_ROWS) as tx:
            row = await tx.first(_LOCK, {"b_id": monitor_id, "b_team": team_id})
            if row is None:
                raise MonitorNotFound
            if row.open_incident_id is not None:
                ended = Resolved(row.open_incident_id, at, EndReason.DELETED)
                await incident_rows.record(tx, [], [ended])
                await notices.notify(tx, [(ended.incident_id, Event.RESOLVED)], at=at)
            await tx.execute(_DELETE, {"b_id": monitor_id, "b_team": team_id})
            await tx.execute(_GIVE_SLOT, {"b_team": team_id})


def _maintained(m: Monitor, windows: list[Window], at: int | None) -> Monitor:
    if at is None or not windows:
        return m
    return replace(m, in_maintenance=window_rows.in_maintenance(windows, m.id, at))


async def _reset_state(tx: Tx, before: Monitor, after: Monitor, at: int) -> Monitor:
    """The target changed or checking stopped: the state is unknown again and an open
    incident ends, ``paused`` when disabled, else ``retargeted`` (SPEC §7)."""
    reason = EndReason.PAUSED if not after.is_enabled else EndReason.RETARGETED
    tracker, ended = reset(before.open_incident_id, reason, at)
    values = tracker_row(tracker)._asdict()
    await tx.execute(_RESET_STATE, {"b_id": before.id, **{f"b_{k}": v for k, v in values.items()}})
    if ended is not None:
        await incident_rows.record(tx, [], [ended])
        await notices.notify(tx, [(ended.incident_id, Event.RESOLVED)], at=at)
    return replace(
        after,
        state=tracker.state,
        state_changed_at=tracker.state_changed_at,
        open_incident_id=None,
    )
