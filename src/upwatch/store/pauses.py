"""When monitors were paused (``isEnabled: false``): time that counts as not
monitored in statistics (SPEC §9). Written in the transaction that pauses or resumes."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from upwatch.stats import Span
from upwatch.store.connector import Reads, Tx
from upwatch.store.tables import monitor_pauses, monitors

_P = monitor_pauses.c
_START = insert(monitor_pauses).values(
    monitor_id=bindparam("b_id"), started_at=bindparam("b_at"), ended_at=None
)
_END = (
    update(monitor_pauses)
    .where(_P.monitor_id == bindparam("b_id"), _P.ended_at.is_(None))
    .values(ended_at=bindparam("b_at"))
)
_OVERLAPPING = (_P.started_at < bindparam("b_to")) & (
    _P.ended_at.is_(None) | (_P.ended_at > bindparam("b_from"))
)
_OF_MONITOR = select(_P.monitor_id, _P.started_at, _P.ended_at).where(
    _P.monitor_id == bindparam("b_id"), _OVERLAPPING
)
_OF_TEAM = (
    select(_P.monitor_id, _P.started_at, _P.ended_at)
    .join(monitors, monitors.c.id == _P.monitor_id)
    .where(monitors.c.team_id == bindparam("b_team"), _OVERLAPPING)
)


async def record(tx: Tx, monitor_id: str, *, was_enabled: bool, is_enabled: bool, at: int) -> None:
    """A pause starts when a monitor is disabled and ends when it is enabled again."""
    if was_enabled and not is_enabled:
        await tx.execute(_START, {"b_id": monitor_id, "b_at": at})
    elif is_enabled and not was_enabled:
        await tx.execute(_END, {"b_id": monitor_id, "b_at": at})


async def of_monitor(reads: Reads, monitor_id: str, start: int, end: int, now: int) -> list[Span]:
    rows = await reads.rows(_OF_MONITOR, {"b_id": monitor_id, "b_from": start, "b_to": end})
    return [(r.started_at, now if r.ended_at is None else r.ended_at) for r in rows]


async def of_team(
    reads: Reads, team_id: int, start: int, end: int, now: int
) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = {}
    for r in await reads.rows(_OF_TEAM, {"b_team": team_id, "b_from": start, "b_to": end}):
        found.setdefault(r.monitor_id, []).append(
            (r.started_at, now if r.ended_at is None else r.ended_at)
        )
    return found
