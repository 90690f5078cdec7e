"""What a status page shows, read in one go: its monitors now, 90 days of daily bars
from their incidents, pauses and maintenance (the time figures of SPEC §9, exact), open
incidents, and maintenance now and in the coming week."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select

from upwatch.domain import Monitor
from upwatch.maintenance import Window, active, next_window, occurrences
from upwatch.stats import DAY_MS, History, Span, daily, time_in
from upwatch.statuspages import (
    DAYS,
    Day,
    IncidentView,
    MaintenanceView,
    MonitorView,
    PageView,
    StatusPage,
    bar,
    overall,
    shown_state,
)
from upwatch.store import pauses
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector, Reads
from upwatch.store.rows import MONITOR_COLUMNS, monitor
from upwatch.store.tables import incidents, monitors

UPCOMING_MS = 7 * DAY_MS  # maintenance this soon is announced

_MONITORS = select(*MONITOR_COLUMNS).where(
    monitors.c.team_id == bindparam("b_team"),
    monitors.c.id.in_(bindparam("b_ids", expanding=True)),
)
_I = incidents.c
_INCIDENTS = select(
    _I.monitor_id, _I.started_at, _I.resolved_at, _I.cause_status, _I.cause_error
).where(
    _I.team_id == bindparam("b_team"),
    _I.monitor_id.in_(bindparam("b_ids", expanding=True)),
    _I.resolved_at.is_(None) | (_I.resolved_at > bindparam("b_from")),
)


class StatusViews:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def view(self, page: StatusPage, *, now: int) -> PageView:
        today = now - now % DAY_MS
        start = today - (DAYS - 1) * DAY_MS
        async with self._db.read() as reads:
            found = await _monitors(reads, page)
            ids = [m.id for m in found]
            rows = (
                await reads.rows(
                    _INCIDENTS, {"b_team": page.team_id, "b_ids": ids, "b_from": start}
                )
                if ids
                else []
            )
            paused = await pauses.of_team(reads, page.team_id, start, now, now)
            window_list = await window_rows.of_teams(reads, [page.team_id])
        spans: dict[str, list[Span]] = {}
        for r in rows:
            spans.setdefault(r.monitor_id, []).append(
                (r.started_at, now if r.resolved_at is None else r.resolved_at)
            )
        occurring = [
            (w, [o for o in occurrences(w.schedule, until_ms=now) if o[1] > start])
            for w in window_list
        ]
        views = []
        for m in found:
            history = History(
                created_at=m.created_at,
                paused=paused.get(m.id, ()),
                incidents=spans.get(m.id, ()),
                maintenance=[o for w, os in occurring if w.covers(m.id) for o in os],
            )
            in_window = any(w.covers(m.id) and active(w.schedule, now) for w in window_list)
            days = tuple(
                Day(d, bar(t.down_ms, t.span_ms - t.unmonitored_ms - t.maintenance_ms), t.down_ms)
                for d, t in zip(
                    _days(start, today), daily(history, start, now, DAY_MS), strict=True
                )
            )
            views.append(
                MonitorView(
                    m.id,
                    m.name,
                    m.host,
                    m.port,
                    shown_state(m.state, in_maintenance=in_window, is_enabled=m.is_enabled),
                    days,
                    time_in(history, start, now).availability,
                )
            )
        names = {m.id: m.name for m in found}
        open_now = sorted(
            (
                IncidentView(names[r.monitor_id], r.started_at, r.cause_status, r.cause_error)
                for r in rows
                if r.resolved_at is None
            ),
            key=lambda i: -i.started_at,
        )
        return PageView(
            page,
            overall([v.shown for v in views]),
            tuple(views),
            tuple(open_now),
            tuple(_maintenance(window_list, set(ids), now)),
            now,
        )


async def _monitors(reads: Reads, page: StatusPage) -> list[Monitor]:
    """The page's monitors that still exist, in the page's order."""
    if not page.monitor_ids:
        return []
    rows = await reads.rows(_MONITORS, {"b_team": page.team_id, "b_ids": list(page.monitor_ids)})
    by_id = {r.id: monitor(r) for r in rows}
    return [by_id[i] for i in page.monitor_ids if i in by_id]


def _days(start: int, today: int) -> range:
    return range(start, today + 1, DAY_MS)


def _maintenance(window_list: Sequence[Window], ids: set[str], now: int) -> list[MaintenanceView]:
    if not ids:
        return []
    shown = []
    for w in window_list:
        if w.monitor_ids and not ids.intersection(w.monitor_ids):
            continue
        upcoming = next_window(w.schedule, now)
        if upcoming is None:
            continue
        starts, ends = upcoming
        if starts <= now < ends or starts - now <= UPCOMING_MS:
            shown.append(MaintenanceView(w.name, starts, ends, starts <= now < ends))
    return sorted(shown, key=lambda v: v.starts_at)
