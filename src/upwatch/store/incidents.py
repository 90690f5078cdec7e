"""Incidents: opened and ended inside the transaction that writes the results (or the
monitor change) that cause them; read a page at a time, per monitor or per team."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, insert, select, update

from upwatch.domain import Status
from upwatch.errors import MonitorNotFound
from upwatch.incidents import EndReason, Incident, Opened, Resolved
from upwatch.store.connector import Connector, Row, Tx
from upwatch.store.tables import incidents, monitors

OPEN, RESOLVED = "open", "resolved"

COLUMNS = (
    incidents.c.id,
    incidents.c.monitor_id,
    incidents.c.status,
    incidents.c.started_at,
    incidents.c.confirmed_at,
    incidents.c.resolved_at,
    incidents.c.cause_status,
    incidents.c.cause_error,
    incidents.c.end_reason,
)
_NEWEST_FIRST = (incidents.c.started_at.desc(), incidents.c.id.desc())
_OPEN = insert(incidents)
_END = (
    update(incidents)
    .where(incidents.c.id == bindparam("b_id"), incidents.c.status == OPEN)
    .values(status=RESOLVED, resolved_at=bindparam("b_at"), end_reason=bindparam("b_reason"))
)
_MONITOR_OWNED = select(monitors.c.id).where(
    monitors.c.id == bindparam("b_monitor"), monitors.c.team_id == bindparam("b_team")
)
_OF_MONITOR = (
    select(*COLUMNS)
    .where(incidents.c.monitor_id == bindparam("b_monitor"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
_COUNT_OF_MONITOR = select(func.count()).where(incidents.c.monitor_id == bindparam("b_monitor"))
_OF_TEAM = (
    select(*COLUMNS)
    .where(incidents.c.team_id == bindparam("b_team"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("b_limit"))
    .offset(bindparam("b_offset"))
)
_ONE = select(*COLUMNS).where(
    incidents.c.id == bindparam("b_id"), incidents.c.team_id == bindparam("b_team")
)
_COUNT_OF_TEAM = select(func.count()).where(incidents.c.team_id == bindparam("b_team"))
_OF_TEAM_WITH_STATUS = _OF_TEAM.where(incidents.c.status == bindparam("b_status"))
_COUNT_OF_TEAM_WITH_STATUS = _COUNT_OF_TEAM.where(incidents.c.status == bindparam("b_status"))


def incident(row: Row) -> Incident:
    return Incident(
        id=row.id,
        monitor_id=row.monitor_id,
        is_open=row.status == OPEN,
        started_at=row.started_at,
        confirmed_at=row.confirmed_at,
        resolved_at=row.resolved_at,
        cause_status=Status(row.cause_status),
        cause_error=row.cause_error,
        end_reason=None if row.end_reason is None else EndReason(row.end_reason),
    )


async def record(
    tx: Tx, opened: Sequence[tuple[int, str, Opened]], ended: Sequence[Resolved]
) -> None:
    """Write, inside ``tx``, incidents opened ((team id, monitor id, what opened)) and
    ended. Openings first: one batch may open an incident and resolve it."""
    await tx.execute_many(
        _OPEN,
        [
            {
                "id": o.incident_id,
                "team_id": team_id,
                "monitor_id": monitor_id,
                "status": OPEN,
                "started_at": o.started_at,
                "confirmed_at": o.confirmed_at,
                "resolved_at": None,
                "cause_status": o.cause_status.value,
                "cause_error": o.cause_error,
                "end_reason": None,
                "notified_at": o.confirmed_at,
            }
            for team_id, monitor_id, o in opened
        ],
    )
    await tx.execute_many(
        _END,
        [{"b_id": e.incident_id, "b_at": e.resolved_at, "b_reason": e.reason.value} for e in ended],
    )


class Incidents:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def of_monitor(
        self, team_id: int, monitor_id: str, *, limit: int, offset: int
    ) -> tuple[list[Incident], int]:
        """A page of the monitor's incidents, newest first, and how many it has."""
        async with self._db.read() as reads:
            owned = {"b_monitor": monitor_id, "b_team": team_id}
            if await reads.scalar(_MONITOR_OWNED, owned) is None:
                raise MonitorNotFound
            page = {"b_monitor": monitor_id, "b_limit": limit, "b_offset": offset}
            rows = await reads.rows(_OF_MONITOR, page)
            total = await reads.scalar(_COUNT_OF_MONITOR, {"b_monitor": monitor_id})
        return [incident(r) for r in rows], int(total)

    async def get(self, team_id: int, incident_id: str) -> Incident | None:
        """The team's incident, or None (another team's is not there)."""
        async with self._db.read() as reads:
            row = await reads.first(_ONE, {"b_id": incident_id, "b_team": team_id})
        return None if row is None else incident(row)

    async def of_team(
        self, team_id: int, *, is_open: bool | None, limit: int, offset: int
    ) -> tuple[list[Incident], int]:
        """A page of the team's incidents across monitors, newest first (only open or
        only resolved ones if ``is_open`` says), and how many there are."""
        params: dict[str, object] = {"b_team": team_id}
        page, count = _OF_TEAM, _COUNT_OF_TEAM
        if is_open is not None:
            params["b_status"] = OPEN if is_open else RESOLVED
            page, count = _OF_TEAM_WITH_STATUS, _COUNT_OF_TEAM_WITH_STATUS
        async with self._db.read() as reads:
            rows = await reads.rows(page, {**params, "b_limit": limit, "b_offset": offset})
            total = await reads.scalar(count, params)
        return [incident(r) for r in rows], int(total)
