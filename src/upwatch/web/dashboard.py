"""The dashboard's front page (SPEC §10): the team's monitors, their state, last check,
last response time, a sparkline of the last 24 hours' response times and 24-hour
availability, filtered by state and name with a plain GET form (it works without
JavaScript).

The sparklines are drawn here, as inline SVG paths (no script per row), from the hourly
rollups the 24-hour availability already reads (store.statistics.team_hours): a
thousand monitors' sparklines cost no query of their own. Those 24-hour figures are a
team's, kept for FIGURES_TTL_S (rollups are folded every minute anyway); each monitor's
state, last check and response time are read fresh for every request."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.domain import Monitor
from upwatch.stats import DAY_MS
from upwatch.statuspages import Shown, shown_state
from upwatch.store.statistics import Hours
from upwatch.web import session
from upwatch.web.cache import Cache
from upwatch.web.pages import page

router = APIRouter(include_in_schema=False)

STATES = tuple(s.value for s in Shown)
# A sparkline's drawing space (viewBox units): an hour a step, the line kept off the
# edges so that its round caps are not cut.
SPARK_STEP = 10
SPARK_HEIGHT = 40
SPARK_MARGIN = 3
# The last 24 hours' figures of a team are computed at most this often (the rows' state
# and last check are read fresh for every request).
FIGURES_TTL_S = 10.0


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


def sparkline(hours: Hours | None) -> Spark | None:
    """The hours' medians as a line (from 0 ms at the bottom to the slowest hour at the
    top), broken where an hour had no timed check; None without any."""
    if hours is None:
        return None
    values = hours.medians
    timed = [v for v in values if v is not None]
    if not timed:
        return None
    low, top = min(timed), max(timed)
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
    label = (
        f"Response time over the last 24 hours: hourly medians {ms_text(low)} to {ms_text(top)} ms"
    )
    return Spark("".join(path), f"0 0 {(len(values) - 1) * SPARK_STEP} {SPARK_HEIGHT}", label)


@dataclass(frozen=True, slots=True)
class Day:
    """A monitor's last 24 hours as its row shows them."""

    availability: float | None
    spark: Spark | None


def install_cache(app: FastAPI) -> None:
    app.state.dashboard_cache = Cache[dict[str, Day]](FIGURES_TTL_S)


async def _last_day(s: Services, cache: Cache[dict[str, Day]], team: int) -> dict[str, Day]:
    """Every monitor's last 24 hours, computed at most once per FIGURES_TTL_S for a team
    however many of its people look (the list refreshes itself every 10 s in each
    browser): a thousand monitors' figures are most of the page's cost."""

    async def compute() -> dict[str, Day]:
        now = s.clock.now_ms()
        times, hours = await s.store.statistics.team_hours(team, now - DAY_MS, now, now=now)
        return {m: Day(t.availability, sparkline(hours.get(m))) for m, t in times.items()}

    return await cache.get(str(team), compute)


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
    days = await _last_day(s, request.app.state.dashboard_cache, team)
    state = request.query_params.get("state", "")
    if state not in STATES:
        state = ""
    query = request.query_params.get("q", "").strip()[:100]
    rows = []
    counts = dict.fromkeys(STATES, 0)
    folded = query.casefold()
    for m in found:
        shown = shown_state(m.state, in_maintenance=m.in_maintenance, is_enabled=m.is_enabled)
        counts[shown.value] += 1
        if (state and shown.value != state) or (query and folded not in m.name.casefold()):
            continue
        day = days.get(m.id)
        rows.append(Row(m, shown, day.availability if day else None, day.spark if day else None))
    return page(
        request,
        "monitors.html",
        visitor=who,
        rows=rows,
        total=len(found),
        counts=counts,
        state=state,
        query=query,
        states=STATES,
    )
