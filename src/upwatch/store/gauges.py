"""What /metrics shows of a team's monitors: each one's last check, state and open
incident, read in one statement however many monitors the team has (plus the team's
maintenance windows, which say which of them are in maintenance now)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from upwatch.domain import MonitorState, Status
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector
from upwatch.store.tables import monitors

_M = monitors.c
_OF_TEAM = (
    select(
        _M.id,
        _M.name,
        _M.host,
        _M.port,
        _M.last_checked_at,
        _M.last_status,
        _M.last_response_time_ms,
        _M.state,
        _M.open_incident_id,
    )
    .where(_M.team_id == bindparam("b_team"))
    .order_by(_M.created_at, _M.id)
)


@dataclass(frozen=True, slots=True)
class MonitorGauge:
    """One monitor as a scrape sees it."""

    id: str
    name: str
    host: str
    port: int
    last_checked_at: int | None  # ms; None: never checked
    last_status: Status | None
    last_response_time_ms: int | None
    state: MonitorState
    in_maintenance: bool
    incident_open: bool


class Gauges:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def of_team(self, team_id: int, *, at: int) -> list[MonitorGauge]:
        """The team's monitors, oldest first; in maintenance as of ``at``."""
        async with self._db.read() as reads:
            rows = await reads.rows(_OF_TEAM, {"b_team": team_id})
            windows = await window_rows.of_teams(reads, [team_id]) if rows else []
        return [
            MonitorGauge(
                id=r.id,
                name=r.name,
                host=r.host,
                port=r.port,
                last_checked_at=r.last_checked_at,
                last_status=None if r.last_status is None else Status(r.last_status),
                last_response_time_ms=r.last_response_time_ms,
                state=MonitorState(r.state),
                in_maintenance=window_rows.in_maintenance(windows, r.id, at),
                incident_open=r.open_incident_id is not None,
            )
            for r in rows
        ]
