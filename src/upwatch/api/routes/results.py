"""A TCP monitor's check results, newest first, a page at a time."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader
from upwatch.api.errors import ApiError
from upwatch.api.models import CheckResultList
from upwatch.api.parsing import only_query, page
from upwatch.api.responses import JSON
from upwatch.api.routes.monitors import PREFIX, monitor_id_or_404
from upwatch.wire import result_json

router = APIRouter(prefix=PREFIX, tags=["TCP Monitors"])


@router.get(
    "/{monitor_id}/results",
    operation_id="listTcpMonitorResults",
    summary="Get check results",
    description="Retrieve the connection check history for a TCP monitor, newest first. "
    "Scope: `tcp-monitors:read`.",
    responses={
        200: {"model": CheckResultList},
        **openapi.errors(400, 401, 403, 404, not_found="TCP monitor"),
    },
    openapi_extra={"parameters": openapi.page_parameters("results")},
)
async def list_results(request: Request, monitor_id: str, who: Reader, s: Deps) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        only_query(request, "limit", "offset")
        limit, offset = page(request)
    except ApiError:
        await s.store.monitors.require(who.team_id, monitor_id)  # 404 before 400
        raise
    results, total = await s.store.results.page(who.team_id, monitor_id, limit=limit, offset=offset)
    return JSON(
        {
            "data": [result_json(r) for r in results],
            "pagination": {"total": total, "limit": limit, "offset": offset},
        }
    )
