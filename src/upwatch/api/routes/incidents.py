"""Incidents: a monitor's, and the team's across monitors (SPEC §7). Read-only: the
checker opens and resolves them."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader
from upwatch.api.errors import ApiError
from upwatch.api.models import IncidentList
from upwatch.api.parsing import only_query, page, query_choice
from upwatch.api.responses import JSON
from upwatch.api.routes.monitors import PREFIX, monitor_id_or_404
from upwatch.wire import incident_json

STATUSES = ("open", "resolved")

router = APIRouter(tags=["Incidents"])

_PAGE = openapi.page_parameters("incidents")
_STATUS = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "Only open or only resolved incidents",
    "schema": {"type": "string", "enum": list(STATUSES)},
}


def _envelope(data: list[dict[str, Any]], total: int, limit: int, offset: int) -> Response:
    return JSON({"data": data, "pagination": {"total": total, "limit": limit, "offset": offset}})


@router.get(
    PREFIX + "/{monitor_id}/incidents",
    operation_id="listTcpMonitorIncidents",
    summary="List a TCP monitor's incidents",
    description="The monitor's incidents, newest first. Scope: `tcp-monitors:read`.",
    responses={
        200: {"model": IncidentList},
        **openapi.errors(400, 401, 403, 404, not_found="TCP monitor"),
    },
    openapi_extra={"parameters": _PAGE},
)
async def list_monitor_incidents(
    request: Request, monitor_id: str, who: Reader, s: Deps
) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        only_query(request, "limit", "offset")
        limit, offset = page(request)
    except ApiError:
        await s.store.monitors.require(who.team_id, monitor_id)  # 404 before 400
        raise
    found, total = await s.store.incidents.of_monitor(
        who.team_id, monitor_id, limit=limit, offset=offset
    )
    return _envelope([incident_json(i) for i in found], total, limit, offset)


@router.get(
    "/v1/incidents",
    operation_id="listIncidents",
    summary="List incidents",
    description="The team's incidents across monitors, newest first; `status` keeps only "
    "open or only resolved ones. Scope: `tcp-monitors:read`.",
    responses={200: {"model": IncidentList}, **openapi.errors(400, 401, 403)},
    openapi_extra={"parameters": [_STATUS, *_PAGE]},
)
async def list_incidents(request: Request, who: Reader, s: Deps) -> Response:
    only_query(request, "status", "limit", "offset")
    status = query_choice(request, "status", STATUSES)
    limit, offset = page(request)
    found, total = await s.store.incidents.of_team(
        who.team_id,
        is_open=None if status is None else status == "open",
        limit=limit,
        offset=offset,
    )
    return _envelope([incident_json(i) for i in found], total, limit, offset)
