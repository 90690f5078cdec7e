"""The dashboard's front page (SPEC §10): the team's monitors, their state, last check,
last response time and 24-hour availability, filtered by state and name with a plain
GET form (it works without JavaScript)."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.domain import Monitor
from upwatch.stats import DAY_MS
from upwatch.statuspages import Shown, shown_state
from upwatch.web import session
from upwatch.web.pages import page

router = APIRouter(include_in_schema=False)

STATES = tuple(s.value for s in Shown)


@dataclass(frozen=True, slots=True)
class Row:
    monitor: Monitor
    shown: Shown
    availability: float | None


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
    availability = {
        x.monitor_id: x.time.availability
        for x in await s.store.statistics.team(team, now - DAY_MS, now, now=now)
    }
    state = request.query_params.get("state", "")
    if state not in STATES:
        state = ""
    query = request.query_params.get("q", "").strip()[:100]
    rows = [
        Row(
            m,
            shown_state(m.state, in_maintenance=m.in_maintenance, is_enabled=m.is_enabled),
            availability.get(m.id),
        )
        for m in found
    ]
    counts = {v: sum(r.shown.value == v for r in rows) for v in STATES}
    shown = [
        r
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
