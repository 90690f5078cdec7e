"""The dashboard's front page (SPEC §10): the team's monitors, their state, last check,
last response time, a sparkline of the last 24 hours' response times and 24-hour
availability, filtered by state and name with a plain GET form (it works without
JavaScript).

The sparklines are drawn here, as inline SVG paths (no script per row), from the hourly
rollups the 24-hour availability already reads (store.statistics.team_hours): a
thousand monitors' sparklines cost no query of their own."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.domain import Monitor
from upwatch.stats import DAY_MS, Summary
from upwatch.statuspages import Shown, shown_state
from upwatch.store.statistics import Hours
from upwatch.web import session
from upwatch.web.pages import page

router = APIRouter(include_in_schema=False)

STATES = tuple(s.value for s in Shown)
# A sparkline's drawing space (viewBox units): an hour a step, the line kept off the
# edges so that its round caps are not cut.
SPARK_STEP = 10
SPARK_HEIGHT = 40
SPARK_MARGIN = 3


@dataclass(frozen=True, slots=True)
class Spark:
    """A sparkline: an SVG path's ``d``, the box it is drawn in (the SVG's viewBox) and
    what it says in words (its aria-label)."""

    path: str
    view_box: str
    label: str


@dataclass(frozen=True, slots=True)
class Row:
    monitor: Monitor
    shown: Shown
    availability: float | None
    spark: Spark | None = None


def ms_text(value: float) -> str:
    """12 ms, 1.5 ms: whole milliseconds from 10 up, one decimal below."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")


def sparkline(hours: Hours | None, median: float | None) -> Spark | None:
    """The hours' medians as a line (from 0 ms at the bottom to the slowest hour at the
    top), broken where an hour had no timed check; None without any. ``median`` is the
    whole range's, for the words."""
    if hours is None:
        return None
    values = hours.medians
    top = max((v for v in values if v is not None), default=None)
    if top is None:
        return None
    scale = (SPARK_HEIGHT - 2 * SPARK_MARGIN) / top if top > 0 else 0.0
    base = SPARK_HEIGHT - SPARK_MARGIN
    path: list[str] = []
    run = 0  # points in the current stretch of hours with a median
    for i, v in enumerate(values):
        if v is None:
            if run == 1:
                path.append("h0")  # a lone hour: a zero-length segment, drawn as a dot
            run = 0
            continue
        path.append(f"{'L' if run else 'M'}{i * SPARK_STEP} {base - round(v * scale)}")
        run += 1
    if run == 1:
        path.append("h0")
    said = f"median {ms_text(median)} ms, " if median is not None else ""
    label = f"Response time over the last 24 hours: {said}slowest hour {ms_text(top)} ms"
    return Spark("".join(path), f"0 0 {(len(values) - 1) * SPARK_STEP} {SPARK_HEIGHT}", label)


def _spark(hours: Hours | None, summary: Summary | None) -> Spark | None:
    if hours is None or summary is None:
        return None
    return sparkline(hours, summary.checks.percentile(0.5))


@router.get("/")
async def monitors(request: Request) -> Response:
    s: Services = request.app.state.services
    who = await session.visitor(request)
    if who is None:
        target = "/login" if await s.store.users.count() else "/setup"
        return RedirectResponse(target, status_code=303)
    now = s.clock.now_ms()
    team = who.user.team_id
    found = await s.store.monitors.list_for(team, at=now)
    summaries, hours = await s.store.statistics.team_hours(team, now - DAY_MS, now, now=now)
    by_monitor = {x.monitor_id: x for x in summaries}
    state = request.query_params.get("state", "")
    if state not in STATES:
        state = ""
    query = request.query_params.get("q", "").strip()[:100]
    rows = [
        Row(
            m,
            shown_state(m.state, in_maintenance=m.in_maintenance, is_enabled=m.is_enabled),
            x.time.availability if (x := by_monitor.get(m.id)) is not None else None,
        )
        for m in found
    ]
    counts = {v: sum(r.shown.value == v for r in rows) for v in STATES}
    shown = [
        replace(r, spark=_spark(hours.get(r.monitor.id), by_monitor.get(r.monitor.id)))
        for r in rows
        if (not state or r.shown.value == state)
        and (not query or query.casefold() in r.monitor.name.casefold())
    ]
    return page(
        request,
        "monitors.html",
        visitor=who,
        rows=shown,
        total=len(rows),
        counts=counts,
        state=state,
        query=query,
        states=STATES,
    )
