"""Maintenance windows, and which monitors are in one at a given time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from upwatch.errors import MonitorsUnknown, WindowNotFound
from upwatch.maintenance import Once, Recurring, Schedule, Window, active, new_window_id
from upwatch.store.connector import Connector, Reads, Row, Tx
from upwatch.store.tables import maintenance_windows, monitors

_W = maintenance_windows.c
_COLUMNS = (_W.id, _W.team_id, _W.name, _W.monitor_ids, _W.schedule, _W.created_at, _W.updated_at)
_OWNED = (_W.id == bindparam("b_id")) & (_W.team_id == bindparam("b_team"))
_GET = select(*_COLUMNS).where(_OWNED)
_ALL = select(*_COLUMNS).where(_W.team_id == bindparam("b_team")).order_by(_W.created_at, _W.id)
_OF_TEAMS = select(*_COLUMNS).where(_W.team_id.in_(bindparam("b_teams", expanding=True)))
_INSERT = insert(maintenance_windows)
_CHANGE = (
    update(maintenance_windows)
    .where(_OWNED)
    .values(
        name=bindparam("b_name"),
        monitor_ids=bindparam("b_monitor_ids"),
        schedule=bindparam("b_schedule"),
        updated_at=bindparam("b_at"),
    )
)
_DELETE = delete(maintenance_windows).where(_OWNED)
_TEAMS_MONITORS = select(monitors.c.id).where(
    monitors.c.team_id == bindparam("b_team"),
    monitors.c.id.in_(bindparam("b_ids", expanding=True)),
)


def schedule_json(s: Schedule) -> dict[str, Any]:
    """As stored (times in ms), not as the API shows it."""
    if isinstance(s, Once):
        return {"type": "once", "starts_at": s.starts_at, "ends_at": s.ends_at}
    return {
        "type": "recurring",
        "rrule": s.rrule,
        "start_time": s.start_time,
        "duration_minutes": s.duration_minutes,
        "timezone": s.timezone,
        "starts_on": s.starts_on,
    }


def _schedule(stored: dict[str, Any]) -> Schedule:
    if stored["type"] == "once":
        return Once(stored["starts_at"], stored["ends_at"])
    return Recurring(
        stored["rrule"],
        stored["start_time"],
        stored["duration_minutes"],
        stored["timezone"],
        stored["starts_on"],
    )


def window(row: Row) -> Window:
    return Window(
        id=row.id,
        team_id=row.team_id,
        name=row.name,
        monitor_ids=tuple(row.monitor_ids),
        schedule=_schedule(row.schedule),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def of_teams(reads: Reads, team_ids: Sequence[int]) -> list[Window]:
    return [window(r) for r in await reads.rows(_OF_TEAMS, {"b_teams": sorted(set(team_ids))})]


def in_maintenance(windows: Sequence[Window], monitor_id: str, at: int) -> bool:
    return any(w.covers(monitor_id) and active(w.schedule, at) for w in windows)


async def check_monitors(tx: Tx, team_id: int, monitor_ids: Sequence[str]) -> None:
    """MonitorsUnknown unless every id is one of the team's monitors."""
    if not monitor_ids:
        return
    found = {
        r.id
        for r in await tx.rows(_TEAMS_MONITORS, {"b_team": team_id, "b_ids": list(monitor_ids)})
    }
    unknown = [m for m in monitor_ids if m not in found]
    if unknown:
        raise MonitorsUnknown(unknown)


class Windows:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def create(
        self, team_id: int, *, name: str, monitor_ids: Sequence[str], schedule: Schedule, at: int
    ) -> Window:
        created = Window(new_window_id(), team_id, name, tuple(monitor_ids), schedule, at, at)
        async with self._db.write() as tx:
            await check_monitors(tx, team_id, monitor_ids)
            await tx.execute(
                _INSERT,
                {
                    "id": created.id,
                    "team_id": team_id,
                    "name": name,
                    "monitor_ids": list(monitor_ids),
                    "schedule": schedule_json(schedule),
                    "created_at": at,
                    "updated_at": at,
                },
            )
        return created

    async def all(self, team_id: int) -> list[Window]:
        async with self._db.read() as reads:
            return [window(r) for r in await reads.rows(_ALL, {"b_team": team_id})]

    async def get(self, team_id: int, window_id: str) -> Window:
        async with self._db.read() as reads:
            row = await reads.first(_GET, {"b_id": window_id, "b_team": team_id})
        if row is None:
            raise WindowNotFound
        return window(row)

    async def update(
        self,
        team_id: int,
        window_id: str,
        *,
        name: str | None,
        monitor_ids: Sequence[str] | None,
        schedule: Schedule | None,
        at: int,
    ) -> Window:
        async with self._db.write() as tx:
            row = await tx.first(_GET, {"b_id": window_id, "b_team": team_id})
            if row is None:
                raise WindowNotFound
            before = window(row)
            if monitor_ids is not None:
                await check_monitors(tx, team_id, monitor_ids)
            after = Window(
                before.id,
                team_id,
                before.name if name is None else name,
                before.monitor_ids if monitor_ids is None else tuple(monitor_ids),
                before.schedule if schedule is None else schedule,
                before.created_at,
                at,
            )
            await tx.execute(
                _CHANGE,
                {
                    "b_id": window_id,
                    "b_team": team_id,
                    "b_name": after.name,
                    "b_monitor_ids": list(after.monitor_ids),
                    "b_schedule": schedule_json(after.schedule),
                    "b_at": at,
                },
            )
        return after

    async def delete(self, team_id: int, window_id: str) -> None:
        async with self._db.write() as tx:
            if await tx.execute(_DELETE, {"b_id": window_id, "b_team": team_id}) != 1:
                raise WindowNotFound
