"""The five endpoints of the TCP Monitors API, and /healthz."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at
# runtime, and the Reader/Writer aliases are local to build_router.

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from upwatch.api.auth import authorize
from upwatch.api.errors import ApiError, validation_error
from upwatch.api.models import (
    CreateMonitorRequest,
    ErrorBody,
    Health,
    MonitorEnvelope,
    MonitorListEnvelope,
    ResultListEnvelope,
    UpdateMonitorRequest,
    monitor_json,
    result_json,
)
from upwatch.api.parsing import BODY_TIMEOUT_S, MAX_OFFSET, query_int, read_json
from upwatch.api.ratelimit import RateLimiter
from upwatch.api.responses import JSON
from upwatch.clock import Clock
from upwatch.domain import SCOPE_READ, SCOPE_WRITE, Principal, TargetPolicy
from upwatch.errors import NotFound
from upwatch.store import Store

_MONITOR_ID = re.compile(r"^tcpm_[A-Za-z0-9]{1,27}$")
RESULTS_LIMIT_DEFAULT, RESULTS_LIMIT_MAX = 50, 200
_HOST_RULE = (
    "`host` must be a hostname (letters, digits, `-` and `_` in dot-separated labels) or "
    "an IPv4/IPv6 literal, with no scheme, path, port or spaces, and not in a network "
    "the operator denies (UPWATCH_TARGET_DENY); `null` is refused for every field."
)

# Documented for /openapi.json; the raw header is read by `authorize`.
bearer = HTTPBearer(auto_error=False, description="An API key: `Bearer uptime_...`")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Invalid request (VALIDATION_ERROR), or LIMIT_EXCEEDED on create",
        401: "Missing or invalid API key (UNAUTHORIZED)",
        403: "API key missing the required scope (FORBIDDEN)",
        404: "TCP monitor not found (NOT_FOUND)",
        408: f"Request body not received within {BODY_TIMEOUT_S:g} s (REQUEST_TIMEOUT)",
        413: "Request body over 64 KiB (PAYLOAD_TOO_LARGE)",
        429: "Rate limit of the API key exceeded (RATE_LIMITED); see Retry-After",
        503: "Database unavailable or server overloaded (SERVICE_UNAVAILABLE); retry",
    }
    every = (*statuses, *((408,) if 413 in statuses else ()), 429, 503)
    return {s: {"model": ErrorBody, "description": text[s]} for s in sorted(every)}


def _body(model: type[CreateMonitorRequest | UpdateMonitorRequest]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_PAGE_PARAMETERS = {
    "parameters": [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Number of results to return (1-200, default: 50)",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        },
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "description": "Number of results to skip (default: 0)",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        },
    ]
}


def _monitor_id(monitor_id: str) -> str:
    if not _MONITOR_ID.match(monitor_id):
        raise NotFound
    return monitor_id


def build_router(
    store: Store,
    clock: Clock,
    notify: Callable[[], None],
    policy: TargetPolicy,
    limiter: RateLimiter | None,
) -> APIRouter:
    router = APIRouter(prefix="/v1/tcp-monitors", tags=["TCP Monitors"])

    def check_target(host: str | None) -> None:
        """A literal address the operator does not allow is refused at once; a name is
        judged on the addresses it resolves to, at every check."""
        if host is not None and not policy.permits(host):
            raise validation_error(
                "Invalid request body", [{"field": "host", "message": "address not allowed"}]
            )

    def require(scope: str) -> Callable[..., Awaitable[Principal]]:
        async def principal(
            request: Request,
            _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Principal:
            return await authorize(
                store,
                clock,
                request.headers.get("authorization"),
                scope,
                limiter,
                request.scope.setdefault("state", {}),
            )

        return principal

    Reader = Annotated[Principal, Depends(require(SCOPE_READ))]
    Writer = Annotated[Principal, Depends(require(SCOPE_WRITE))]

    @router.get(
        "",
        summary="List all TCP monitors",
        description="Retrieve all TCP monitors for your team. Scope: `tcp-monitors:read`.",
        responses={200: {"model": MonitorListEnvelope}, **_errors(401, 403)},
    )
    async def list_monitors(who: Reader) -> Response:
        monitors = await store.monitors.list_for(who.team_id)
        return JSON({"data": [monitor_json(m) for m in monitors]})

    @router.post(
        "",
        status_code=201,
        summary="Create a TCP monitor",
        description="Create a new TCP monitor; it is checked within a second. "
        "Scope: `tcp-monitors:write`. " + _HOST_RULE,
        responses={201: {"model": MonitorEnvelope}, **_errors(400, 401, 403, 413)},
        openapi_extra=_body(CreateMonitorRequest),
    )
    async def create_monitor(request: Request, who: Writer) -> Response:
        body = await read_json(request, CreateMonitorRequest)
        check_target(body.host)
        monitor = await store.monitors.create(who.team_id, body.to_domain(), at=clock.now_ms())
        notify()
        return JSON({"data": monitor_json(monitor)}, status_code=201)

    @router.get(
        "/{monitor_id}",
        summary="Get a TCP monitor",
        description="Retrieve a single TCP monitor by ID. Scope: `tcp-monitors:read`.",
        responses={200: {"model": MonitorEnvelope}, **_errors(401, 403, 404)},
    )
    async def get_monitor(monitor_id: str, who: Reader) -> Response:
        monitor = await store.monitors.get(who.team_id, _monitor_id(monitor_id))
        return JSON({"data": monitor_json(monitor)})

    @router.put(
        "/{monitor_id}",
        summary="Update a TCP monitor",
        description="Update an existing TCP monitor. Only include fields you want to change. "
        "Scope: `tcp-monitors:write`. " + _HOST_RULE,
        responses={200: {"model": MonitorEnvelope}, **_errors(400, 401, 403, 404, 413)},
        openapi_extra=_body(UpdateMonitorRequest),
    )
    async def update_monitor(request: Request, monitor_id: str, who: Writer) -> Response:
        monitor_id = _monitor_id(monitor_id)
        try:
            body = await read_json(request, UpdateMonitorRequest)
            check_target(body.host)
        except ApiError:
            # 404 before 400: a bad body for an unknown monitor is a 404. (Looked up only
            # here: on the good path, update_monitor finds the monitor or says 404.)
            await store.monitors.require(who.team_id, monitor_id)
            raise
        monitor = await store.monitors.update(
            who.team_id, monitor_id, body.to_domain(), at=clock.now_ms()
        )
        notify()
        return JSON({"data": monitor_json(monitor)})

    @router.delete(
        "/{monitor_id}",
        status_code=204,
        summary="Delete a TCP monitor",
        description="Permanently delete a TCP monitor and all its check history. "
        "Scope: `tcp-monitors:write`.",
        responses={204: {"description": "Deleted"}, **_errors(401, 403, 404)},
    )
    async def delete_monitor(monitor_id: str, who: Writer) -> Response:
        await store.monitors.delete(who.team_id, _monitor_id(monitor_id))
        return Response(status_code=204)

    @router.get(
        "/{monitor_id}/results",
        summary="Get check results",
        description="Retrieve the connection check history for a TCP monitor, newest first. "
        "Scope: `tcp-monitors:read`.",
        responses={200: {"model": ResultListEnvelope}, **_errors(400, 401, 403, 404)},
        openapi_extra=_PAGE_PARAMETERS,
    )
    async def list_results(request: Request, monitor_id: str, who: Reader) -> Response:
        monitor_id = _monitor_id(monitor_id)
        try:
            limit = query_int(
                request, "limit", default=RESULTS_LIMIT_DEFAULT, low=1, high=RESULTS_LIMIT_MAX
            )
            offset = query_int(request, "offset", default=0, low=0, high=MAX_OFFSET)
        except ApiError:
            await store.monitors.require(who.team_id, monitor_id)  # 404 before 400
            raise
        results, total = await store.results.page(
            who.team_id, monitor_id, limit=limit, offset=offset
        )
        return JSON(
            {
                "data": [result_json(r) for r in results],
                "pagination": {"total": total, "limit": limit, "offset": offset},
            }
        )

    return router


def build_health_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["Operations"])

    @router.get(
        "/healthz",
        summary="Health",
        description="200 when the database answers, 503 otherwise. No key needed.",
        responses={200: {"model": Health}, 503: {"model": Health}},
    )
    async def healthz() -> Response:
        if await store.ping():
            return JSON({"status": "ok"})
        return JSON({"status": "unavailable"}, status_code=503)

    return router
