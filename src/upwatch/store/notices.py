"""Incident changes become deliveries, in the transaction that makes the change: the
payload carries the incident and the monitor as the API shows them at that moment."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import BigInteger, bindparam, func, select, update

from upwatch.notifications import Event
from upwatch.store import channels as channel_rows
from upwatch.store import deliveries as delivery_rows
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector, Tx
from upwatch.store.incidents import COLUMNS as incident_columns
from upwatch.store.incidents import incident
from upwatch.store.rows import MONITORS_BY_IDS, monitor
from upwatch.store.tables import incidents, monitors
from upwatch.wire import incident_json, monitor_json

log = logging.getLogger(__name__)

_INCIDENTS_BY_IDS = select(incidents.c.team_id, *incident_columns).where(
    incidents.c.id.in_(bindparam("b_ids", expanding=True))
)


async def notify(tx: Tx, changes: Sequence[tuple[str, Event]], *, at: int) -> int:
    """For each (incident id, event), a delivery per enabled channel of its monitor.
    Returns how many deliveries were written."""
    if not changes:
        return 0
    found = {r.id: r for r in await tx.rows(_INCIDENTS_BY_IDS, {"b_ids": [i for i, _ in changes]})}
    monitor_ids = sorted({r.monitor_id for r in found.values()})
    monitors = {r.id: monitor(r) for r in await tx.rows(MONITORS_BY_IDS, {"b_ids": monitor_ids})}
    links = await channel_rows.ids_of(tx, monitor_ids)
    per_team: dict[int, list[delivery_rows.Notice]] = defaultdict(list)
    for incident_id, event in changes:
        row = found.get(incident_id)
        m = monitors.get(row.monitor_id) if row is not None else None
        if row is None or m is None:
            continue
        data = {
            "incident": incident_json(incident(row)),
            "monitor": monitor_json(replace(m, channel_ids=links.get(m.id, ()))),
        }
        per_team[row.team_id].append(delivery_rows.Notice(m.id, incident_id, event, data))
        log.info(
            "%s: incident %s of monitor %s",
            event.value,
            incident_id,
            m.id,
            extra={"incident_id": incident_id, "monitor_id": m.id},
        )
    written = 0
    for team_id, notices in per_team.items():
        written += await delivery_rows.enqueue(tx, team_id, notices, at=at)
    return written


REMINDERS_PER_STEP = 500

_DUE_REMINDERS = (
    select(incidents.c.id, incidents.c.team_id, incidents.c.monitor_id)
    .join(monitors, monitors.c.id == incidents.c.monitor_id)
    .where(
        incidents.c.status == "open",
        monitors.c.remind_every_minutes > 0,
        func.coalesce(incidents.c.notified_at, incidents.c.confirmed_at)
        + monitors.c.remind_every_minutes * 60_000
        <= bindparam("b_at", type_=BigInteger),
    )
    .order_by(incidents.c.id)
    .limit(bindparam("b_limit"))
    .with_for_update(of=incidents, skip_locked=True)  # SQLite: nothing (writers take turns)
)
_NOTIFIED = (
    update(incidents)
    .where(incidents.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(notified_at=bindparam("b_at"))
)


class Reminders:
    """``remindEveryMinutes``: while an incident stays open, its monitor's channels are
    told again that often, counted from the last time they were told."""

    def __init__(self, db: Connector) -> None:
        self._db = db

    async def send_due(self, *, at: int) -> int:
        """Write the reminders due at ``at`` (each incident's, in one transaction with
        the time it was reminded, so two workers never both remind it). Returns how
        many deliveries were written."""
        async with self._db.write(bulk=True) as tx:
            rows = await tx.rows(_DUE_REMINDERS, {"b_at": at, "b_limit": REMINDERS_PER_STEP})
            windows = await window_rows.of_teams(tx, [r.team_id for r in rows]) if rows else []
            # A monitor in maintenance is not reminded of; it is once the window ends.
            due = [r.id for r in rows if not window_rows.in_maintenance(windows, r.monitor_id, at)]
            if not due:
                return 0
            await tx.execute(_NOTIFIED, {"b_ids": due, "b_at": at})
            return await notify(tx, [(i, Event.REMINDER) for i in due], at=at)
