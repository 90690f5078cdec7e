"""/incidents: the team's incidents, open first (SPEC §10). Read-only, for admins and
viewers alike: the checker opens and resolves incidents.

- ``/incidents``: the open ones (on the first page), then the resolved ones newest
  first, a page at a time (``?offset=``, plain links: no JavaScript needed).
- ``/incidents/<id>``: one incident as the API shows it (SPEC §7), as a timeline: the
  first failed check, the confirmation, the end and why it ended.
"""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.domain import Monitor
from upwatch.errors import MonitorNotFound
from upwatch.incidents import EndReason, Incident
from upwatch.notifications import duration_text
from upwatch.web.handlers import services, visitor_or_login
from upwatch.web.pages import not_found, page

router = APIRouter(include_in_schema=False)

_INCIDENT_ID = re.compile(r"^tcpi_[A-Za-z0-9]{1,27}$")
_OFFSET = re.compile(r"^[0-9]{1,12}$")
PAGE_SIZE = 50  # resolved incidents per page
OPEN_MAX = 200  # open incidents shown (one per monitor at most; more is said, not shown)

ENDINGS = {
    EndReason.RECOVERED: "Recovered: the first up check of the recovery",
    EndReason.RETARGETED: "Ended: the monitor's host or port was changed",
    EndReason.PAUSED: "Ended: the monitor was disabled",
    EndReason.DELETED: "Ended: the monitor was deleted",
}


@dataclass(frozen=True, slots=True)
class Row:
    """An incident as a line of the page: with its monitor and how long it lasted."""

    incident: Incident
    monitor: Monitor | None  # None only if the monitor went between two reads
    duration: str  # "12 min 30 s"; for an open one, so far


def _offset(request: Request) -> int:
    """The first resolved incident to show; anything but a plain number is the start."""
    given = request.query_params.get("offset", "")
    return int(given) if _OFFSET.match(given) else 0


def _row(i: Incident, monitor: Monitor | None, now: int) -> Row:
    end = now if i.resolved_at is None else i.resolved_at
    lasted = duration_text(max(0, end - i.started_at) / 1000)
    return Row(i, monitor, lasted if i.resolved_at is not None else f"{lasted} so far")


@router.get("/incidents")
async def incidents(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    now = s.clock.now_ms()
    offset = _offset(request)
    if offset == 0:
        opened, open_total = await s.store.incidents.of_team(
            team, is_open=True, limit=OPEN_MAX, offset=0
        )
    else:  # the open ones head the first page only
        opened, open_total = [], 0
    resolved, resolved_total = await s.store.incidents.of_team(
        team, is_open=False, limit=PAGE_SIZE, offset=offset
    )
    monitors = {m.id: m for m in await s.store.monitors.list_for(team)}
    return page(
        request,
        "incidents.html",
        visitor=who,
        opened=[_row(i, monitors.get(i.monitor_id), now) for i in opened],
        open_total=open_total,
        resolved=[_row(i, monitors.get(i.monitor_id), now) for i in resolved],
        resolved_total=resolved_total,
        offset=offset,
        newer=max(0, offset - PAGE_SIZE) if offset > 0 else None,
        older=offset + PAGE_SIZE if offset + PAGE_SIZE < resolved_total else None,
    )


@router.get("/incidents/{incident_id}")
async def incident_page(request: Request, incident_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    found = None
    if _INCIDENT_ID.match(incident_id):
        found = await s.store.incidents.get(team, incident_id)
    if found is None:
        return not_found(request, who, "incident")
    try:
        monitor: Monitor | None = await s.store.monitors.get(team, found.monitor_id)
    except MonitorNotFound:  # deleted since: its incidents go with it
        monitor = None
    return page(
        request,
        "incident.html",
        visitor=who,
        row=_row(found, monitor, s.clock.now_ms()),
        ending=None if found.end_reason is None else ENDINGS[found.end_reason],
    )
