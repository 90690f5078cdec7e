"""Statistics over any range (SPEC §9): reads what a range needs and hands it to the
pure rules of upwatch/stats.py.

Where the figures come from:
- time (availability, downtime, maintenance): always exact, from the monitor's
  incidents, pauses, creation and maintenance windows;
- checks (counts and response times) of one monitor: from raw results when they cover
  the range and it is at most EXACT_SPAN_MS long (exact percentiles); otherwise from
  UTC days and hours of rollups for the whole days and hours inside the range, and raw
  results for its ragged ends (whole rollup hours where raw results are gone);
- the team summary: rollups only, the edge hours whole (a dashboard's figures for a
  thousand monitors, in one read); with its hours (``team_hours``), also each monitor's
  median response time hour by hour, kept in each hourly rollup when it was folded
  (the dashboard's sparklines: no sketch is read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select

from upwatch.errors import MonitorNotFound
from upwatch.maintenance import Window, occurrences
from upwatch.stats import (
    DAY_MS,
    HOUR_MS,
    Bucket,
    Checks,
    History,
    Span,
    Summary,
    Time,
    bucket_starts,
    incident_figures,
    time_in,
    whole_units,
)
from upwatch.store import pauses
from upwatch.store import windows as window_rows
from upwatch.store.connector import Connector, Reads, Row
from upwatch.store.rollups import DAY_S, HOUR_S
from upwatch.store.rollups import medians_of_team as rollup_medians_of_team
from upwatch.store.rollups import of_monitor as rollups_of_monitor
from upwatch.store.rollups import of_team as rollups_of_team
from upwatch.store.tables import check_results, incidents, monitors

EXACT_SPAN_MS = 7 * DAY_MS
TEAM_HOURLY_EDGES_MS = 7 * DAY_MS
TEAM_HOURS_MAX_MS = 7 * DAY_MS  # team_hours reads every hour: a week of them at most

_MONITOR = select(monitors.c.id, monitors.c.created_at).where(
    monitors.c.id == bindparam("b_id"), monitors.c.team_id == bindparam("b_team")
)
_TEAM_MONITORS = (
    select(monitors.c.id, monitors.c.created_at)
    .where(monitors.c.team_id == bindparam("b_team"))
    .order_by(monitors.c.created_at, monitors.c.id)
)
_IN_RANGE = (
    (check_results.c.monitor_id == bindparam("b_id"))
    & (check_results.c.checked_at >= bindparam("b_from"))
    & (check_results.c.checked_at < bindparam("b_to"))
)
_RAW_COUNTS = (
    select(check_results.c.status, func.count().label("n"))
    .where(_IN_RANGE)
    .group_by(check_results.c.status)
)
_RAW_TIMES = select(check_results.c.response_time_ms).where(
    _IN_RANGE,
    check_results.c.status == "up",
    check_results.c.response_time_ms.is_not(None),
)
_RAW_TIMED = select(
    check_results.c.checked_at, check_results.c.status, check_results.c.response_time_ms
).where(
    check_results.c.monitor_id == bindparam("b_id"),
    check_results.c.checked_at >= bindparam("b_from"),
    check_results.c.checked_at < bindparam("b_to"),
)
_I = incidents.c
_INCIDENTS_OVERLAPPING = (_I.started_at < bindparam("b_to")) & (
    _I.resolved_at.is_(None) | (_I.resolved_at > bindparam("b_from"))
)
_INCIDENTS_OF_MONITOR = select(_I.monitor_id, _I.started_at, _I.resolved_at).where(
    _I.monitor_id == bindparam("b_id"), _INCIDENTS_OVERLAPPING
)
_INCIDENTS_OF_TEAM = select(_I.monitor_id, _I.started_at, _I.resolved_at).where(
    _I.team_id == bindparam("b_team"), _INCIDENTS_OVERLAPPING
)


@dataclass(frozen=True, slots=True)
class Hours:
    """A monitor's median response time (ms) hour by hour, from its hourly rollups:
    ``medians[i]`` is the hour starting at ``start + i`` hours, None for an hour without
    a timed check. Within 1 % of the exact median, as every rollup figure."""

    start: int
    medians: list[float | None]


class Statistics:
    def __init__(self, db: Connector) -> None:
        self._db = db

    async def summary(
        self, team_id: int, monitor_id: str, start: int, end: int, *, now: int, raw_since: int
    ) -> Summary:
        """One monitor over [start, end) (end ≤ now); results before ``raw_since`` are
        purged."""
        async with self._db.read() as reads:
            created_at = await _created_at(reads, team_id, monitor_id)
            history, spans = await _history(reads, team_id, monitor_id, created_at, start, end, now)
            checks = await _checks(reads, monitor_id, start, end, raw_since)
        return Summary(
            monitor_id,
            start,
            end,
            time_in(history, start, end),
            incident_figures(spans, start, end, now),
            checks,
        )

    async def summaries(
        self,
        team_id: int,
        monitor_id: str,
        ranges: Sequence[tuple[int, int]],
        *,
        now: int,
        raw_since: int,
    ) -> list[Summary]:
        """``summary`` over each range, in one read: the monitor and its history (incidents,
        pauses, maintenance) are read once for them all (a monitor's page shows four)."""
        if not ranges:
            return []
        first, last = min(r[0] for r in ranges), max(r[1] for r in ranges)
        async with self._db.read() as reads:
            created_at = await _created_at(reads, team_id, monitor_id)
            history, spans = await _history(
                reads, team_id, monitor_id, created_at, first, last, now
            )
            checks = [await _checks(reads, monitor_id, s, e, raw_since) for s, e in ranges]
        return [
            Summary(monitor_id, s, e, time_in(history, s, e), incident_figures(spans, s, e, now), c)
            for (s, e), c in zip(ranges, checks, strict=True)
        ]

    async def series(
        self,
        team_id: int,
        monitor_id: str,
        start: int,
        end: int,
        size_ms: int,
        *,
        now: int,
    ) -> list[Bucket]:
        """Every UTC-aligned bucket from the one holding ``start`` to the one holding the
        last instant before ``end``, each over its whole span (up to ``now``). Closed
        buckets of an hour or more come from rollups; 5-minute buckets and the bucket
        still open, from raw results."""
        starts = bucket_starts(start, end, size_ms)
        first, last = starts[0], min(starts[-1] + size_ms, now)
        async with self._db.read() as reads:
            created_at = await _created_at(reads, team_id, monitor_id)
            history, _ = await _history(reads, team_id, monitor_id, created_at, first, last, now)
            checks = {s: Checks() for s in starts}
            open_from = first if size_ms < HOUR_MS else now - now % size_ms
            if open_from > first:
                span_s = size_ms // 1000
                for row in await rollups_of_monitor(reads, monitor_id, span_s, first, open_from):
                    _add_rollups(checks[row.start], [row])
            if open_from < last:
                if size_ms == DAY_MS and open_from + HOUR_MS <= now:
                    # Today: its closed hours from rollups, the open hour from results.
                    hour = now - now % HOUR_MS
                    today = await rollups_of_monitor(reads, monitor_id, HOUR_S, open_from, hour)
                    _add_rollups(checks[open_from], today)
                    open_from = hour
                raw = await reads.rows(
                    _RAW_TIMED, {"b_id": monitor_id, "b_from": open_from, "b_to": last}
                )
                for r in raw:
                    at = r.checked_at
                    checks[at - at % size_ms].add_exact(r.status, r.response_time_ms)
        return [
            Bucket(s, time_in(history, s, min(s + size_ms, now)), checks[s])
            for s in starts
            if s < now
        ]

    async def team(self, team_id: int, start: int, end: int, *, now: int) -> list[Summary]:
        """Every monitor of the team over [start, end), oldest monitor first."""
        async with self._db.read() as reads:
            read = await _team_read(reads, team_id, start, end, now)
            rows = await _team_rollups(reads, team_id, start, end)
        return _team_summaries(read, rows, start, end, now)

    async def team_hours(
        self, team_id: int, start: int, end: int, *, now: int
    ) -> tuple[dict[str, Time], dict[str, Hours]]:
        """What the dashboard shows of every monitor of the team over [start, end): its
        time figures (as ``team`` gives them), and its median response time for every
        hour the range touches, from the medians kept in hourly rollups. ``team``'s check
        figures are left out: merging a thousand monitors' sketches was most of its
        cost. Ranges up to TEAM_HOURS_MAX_MS."""
        if not 0 < end - start <= TEAM_HOURS_MAX_MS:
            raise ValueError(f"a range of 1 ms to {TEAM_HOURS_MAX_MS} ms, not {end - start}")
        first = start - start % HOUR_MS
        async with self._db.read() as reads:
            read = await _team_read(reads, team_id, start, end, now)
            # Hours throughout (not days inside): the same figures, a day rollup being
            # its hours merged, and the hours are wanted anyway.
            rows = await rollup_medians_of_team(reads, team_id, HOUR_S, first, end)
        count = len(bucket_starts(start, end, HOUR_MS))
        times = {m.id: time_in(h, start, end) for m, _, h in _histories(read, now)}
        return times, hourly_medians(rows, first, count)


@dataclass(frozen=True, slots=True)
class _TeamRead:
    """What a team summary needs besides the check figures."""

    members: list[Row]
    occurring: list[tuple[Window, list[Span]]]
    paused: dict[str, list[Span]]
    spans: dict[str, list[tuple[int, int | None]]]


async def _team_read(reads: Reads, team_id: int, start: int, end: int, now: int) -> _TeamRead:
    members = await reads.rows(_TEAM_MONITORS, {"b_team": team_id})
    window_list = await window_rows.of_teams(reads, [team_id])
    paused = await pauses.of_team(reads, team_id, start, end, now)
    spans: dict[str, list[tuple[int, int | None]]] = {}
    for r in await reads.rows(
        _INCIDENTS_OF_TEAM, {"b_team": team_id, "b_from": start, "b_to": end}
    ):
        spans.setdefault(r.monitor_id, []).append((r.started_at, r.resolved_at))
    return _TeamRead(members, _occurrences(window_list, start, end), paused, spans)


def _team_summaries(
    read: _TeamRead, rows: Sequence[Row], start: int, end: int, now: int
) -> list[Summary]:
    checks = {m.id: Checks() for m in read.members}
    per_monitor: dict[str, list[Row]] = {}
    for row in rows:
        per_monitor.setdefault(row.monitor_id, []).append(row)
    for monitor_id, mine_rows in per_monitor.items():
        if (c := checks.get(monitor_id)) is not None:
            _add_rollups(c, mine_rows)
    return [
        Summary(
            m.id,
            start,
            end,
            time_in(history, start, end),
            incident_figures(mine, start, end, now),
            checks[m.id],
        )
        for m, mine, history in _histories(read, now)
    ]


def _histories(
    read: _TeamRead, now: int
) -> Iterator[tuple[Row, list[tuple[int, int | None]], History]]:
    """Each member, its incidents in the range, and its history."""
    for m in read.members:
        mine = read.spans.get(m.id, [])
        yield (
            m,
            mine,
            History(
                created_at=m.created_at,
                paused=read.paused.get(m.id, ()),
                incidents=[(s, now if e is None else e) for s, e in mine],
                maintenance=_maintenance_of(read.occurring, m.id),
            ),
        )


def hourly_medians(rows: Sequence[Row], first: int, count: int) -> dict[str, Hours]:
    """Each monitor's median per hour from (monitor_id, start, rt_median) rows of
    hourly rollups, ``count`` hours from ``first``; a monitor without a timed check in
    them is left out."""
    found: dict[str, list[float | None]] = {}
    for monitor_id, start, median in rows:
        hour = (start - first) // HOUR_MS
        if 0 <= hour < count:
            line = found.get(monitor_id)
            if line is None:
                line = found[monitor_id] = [None] * count
            line[hour] = median
    return {m: Hours(first, line) for m, line in found.items()}


# -- reading -----------------------------------------------------------------------------


async def _created_at(reads: Reads, team_id: int, monitor_id: str) -> int:
    row = await reads.first(_MONITOR, {"b_id": monitor_id, "b_team": team_id})
    if row is None:
        raise MonitorNotFound
    return int(row.created_at)


async def _history(
    reads: Reads, team_id: int, monitor_id: str, created_at: int, start: int, end: int, now: int
) -> tuple[History, list[tuple[int, int | None]]]:
    span = {"b_id": monitor_id, "b_from": start, "b_to": end}
    spans = [(r.started_at, r.resolved_at) for r in await reads.rows(_INCIDENTS_OF_MONITOR, span)]
    window_list = await window_rows.of_teams(reads, [team_id])
    history = History(
        created_at=created_at,
        paused=await pauses.of_monitor(reads, monitor_id, start, end, now),
        incidents=[(s, now if e is None else e) for s, e in spans],
        maintenance=_maintenance_of(_occurrences(window_list, start, end), monitor_id),
    )
    return history, spans


def _occurrences(
    window_list: Sequence[Window], start: int, end: int
) -> list[tuple[Window, list[Span]]]:
    """Each window's occurrences overlapping [start, end), walked once (not day by day:
    a year of a daily window is 365 steps of its rule)."""
    return [
        (w, [o for o in occurrences(w.schedule, until_ms=end) if o[1] > start]) for w in window_list
    ]


def _maintenance_of(occurring: Sequence[tuple[Window, list[Span]]], monitor_id: str) -> list[Span]:
    return [o for w, spans in occurring if w.covers(monitor_id) for o in spans]


async def _checks(reads: Reads, monitor_id: str, start: int, end: int, raw_since: int) -> Checks:
    checks = Checks()
    if start >= raw_since and end - start <= EXACT_SPAN_MS:
        await _raw(reads, checks, monitor_id, start, end)
        return checks
    hours = whole_units(start, end, HOUR_MS)
    if hours is None:  # no whole hour inside, and results are gone: the hours it touches
        first = start - start % HOUR_MS
        _add_rollups(checks, await rollups_of_monitor(reads, monitor_id, HOUR_S, first, end))
        return checks
    a, b = hours
    for s, e in ((start, a), (b, end)):
        if s >= e:
            continue
        if s >= raw_since:
            await _raw(reads, checks, monitor_id, s, e)
        else:
            hour = s - s % HOUR_MS
            _add_rollups(
                checks, await rollups_of_monitor(reads, monitor_id, HOUR_S, hour, hour + 1)
            )
    days = whole_units(a, b, DAY_MS)
    pieces = (
        [(HOUR_S, a, b)]
        if days is None
        else [
            (HOUR_S, a, days[0]),
            (DAY_S, days[0], days[1]),
            (HOUR_S, days[1], b),
        ]
    )
    rows = [
        row
        for span_s, s, e in pieces
        if s < e
        for row in await rollups_of_monitor(reads, monitor_id, span_s, s, e)
    ]
    _add_rollups(checks, rows)
    return checks


async def _raw(reads: Reads, checks: Checks, monitor_id: str, start: int, end: int) -> None:
    """Counted by the database; the response times, one column, summed here."""
    span = {"b_id": monitor_id, "b_from": start, "b_to": end}
    counts = {r.status: r.n for r in await reads.rows(_RAW_COUNTS, span)}
    times = [r[0] for r in await reads.rows(_RAW_TIMES, span)]
    checks.add_raw(counts.get("up", 0), counts.get("down", 0), counts.get("timeout", 0), times)


async def _team_rollups(reads: Reads, team_id: int, start: int, end: int) -> list[Row]:
    """Day rollups for the whole days inside, hour rollups (whole) for the rest; past
    TEAM_HOURLY_EDGES_MS, day rollups only, the first and last days whole (a thousand
    monitors' ragged hours would be most of the rows read)."""
    first_hour = start - start % HOUR_MS
    if end - start > TEAM_HOURLY_EDGES_MS:
        return await rollups_of_team(reads, team_id, DAY_S, start - start % DAY_MS, end)
    days = whole_units(start, end, DAY_MS)
    if days is None:
        return await rollups_of_team(reads, team_id, HOUR_S, first_hour, end)
    return [
        *await rollups_of_team(reads, team_id, HOUR_S, first_hour, days[0]),
        *await rollups_of_team(reads, team_id, DAY_S, days[0], days[1]),
        *await rollups_of_team(reads, team_id, HOUR_S, days[1], end),
    ]


def _add_rollups(checks: Checks, rows: list[Row]) -> None:
    checks.add_rollups(rows)  # rollup rows are Rolled: named columns
