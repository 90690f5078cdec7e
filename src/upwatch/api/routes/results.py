"""A TCP monitor's check results, newest first, a page at a time."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader
from upwatch.api.errors import ApiError
from upwatch.api.models import CheckResultList
from upwatch.api.parsing import MAX_OFFSET, only_query, query_int
from upwatch.api.responses import JSON
from upwatch.api.routes.monitors import PREFIX, monitor_id_or_404
from upwatch.wire import result_json

LIMIT_DEFAULT, LIMIT_MAX = 50, 200

router = APIRouter(prefix=PREFIX, tags=["TCP Monitors"])

_PAGE_PARAMETERS = {
    "parameters": [
        openapi.query_integer(
            "limit",
            "Number of results to return (1-200, default: 50)",
            low=1,
            high=LIMIT_MAX,
            default=LIMIT_DEFAULT,
        ),
        openapi.query_integer(
            "offset", "Number of results to skip (default: 0)", low=0, high=MAX_OFFSET, default=0
        ),
    ]
}


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
    openapi_extra=_PAGE_PARAMETERS,
)
async def list_results(request: Request, monitor_id: str, who: Reader, s: Deps) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        only_query(request, "limit", "offset")
        limit = query_int(request, "limit", default=LIMIT_DEFAULT, low=1, high=LIMIT_MAX)
        offset = query_int(request, "offset", default=0, low=0, high=MAX_OFFSET)
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
