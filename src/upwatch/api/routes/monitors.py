"""TCP monitors: list, create, get, update, delete."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader, Services, Writer
from upwatch.api.errors import ApiError, validation_error
from upwatch.api.models import (
    CreateTcpMonitorRequest,
    TcpMonitorEnvelope,
    TcpMonitorList,
    UpdateTcpMonitorRequest,
)
from upwatch.api.parsing import read_json
from upwatch.api.responses import JSON
from upwatch.errors import MonitorNotFound
from upwatch.wire import monitor_json

PREFIX = "/v1/tcp-monitors"
_MONITOR_ID = re.compile(r"^tcpm_[A-Za-z0-9]{1,27}$")
_HOST_RULE = (
    "`host` must be a hostname (letters, digits, `-` and `_` in dot-separated labels) or "
    "an IPv4/IPv6 literal, with no scheme, path, port or spaces, and not in a network "
    "the operator denies (UPWATCH_TARGET_DENY); `null` is refused for every field."
)

router = APIRouter(prefix=PREFIX, tags=["TCP Monitors"])


def monitor_id_or_404(monitor_id: str) -> str:
    if not _MONITOR_ID.match(monitor_id):
        raise MonitorNotFound
    return monitor_id


def _check_target(s: Services, host: str | None) -> None:
    """A literal address the operator does not allow is refused at once; a name is
    judged on the addresses it resolves to, at every check."""
    if host is not None and not s.policy.permits(host):
        raise validation_error(
            "Invalid request body", [{"field": "host", "message": "address not allowed"}]
        )


@router.get(
    "",
    operation_id="listTcpMonitors",
    summary="List all TCP monitors",
    description="Retrieve all TCP monitors for your team. Scope: `tcp-monitors:read`.",
    responses={200: {"model": TcpMonitorList}, **openapi.errors(401, 403)},
)
async def list_monitors(who: Reader, s: Deps) -> Response:
    data: list[dict[str, Any]] = []
    async for chunk in s.store.monitors.chunks_for(who.team_id, at=s.clock.now_ms()):
        data.extend(map(monitor_json, chunk))  # in the chunk's turn of the loop
    return JSON({"data": data})


@router.post(
    "",
    operation_id="createTcpMonitor",
    status_code=201,
    summary="Create a TCP monitor",
    description="Create a new TCP monitor; it is checked within a second. "
    "Scope: `tcp-monitors:write`. " + _HOST_RULE,
    responses={201: {"model": TcpMonitorEnvelope}, **openapi.errors(400, 401, 403, 413)},
    openapi_extra=openapi.json_body(CreateTcpMonitorRequest),
)
async def create_monitor(request: Request, who: Writer, s: Deps) -> Response:
    body = await read_json(request, CreateTcpMonitorRequest)
    _check_target(s, body.host)
    monitor = await s.store.monitors.create(who.team_id, body.to_domain(), at=s.clock.now_ms())
    s.notify()
    return JSON({"data": monitor_json(monitor)}, status_code=201)


@router.get(
    "/{monitor_id}",
    operation_id="getTcpMonitor",
    summary="Get a TCP monitor",
    description="Retrieve a single TCP monitor by ID. Scope: `tcp-monitors:read`.",
    responses={
        200: {"model": TcpMonitorEnvelope},
        **openapi.errors(401, 403, 404, not_found="TCP monitor"),
    },
)
async def get_monitor(monitor_id: str, who: Reader, s: Deps) -> Response:
    monitor = await s.store.monitors.get(
        who.team_id, monitor_id_or_404(monitor_id), at=s.clock.now_ms()
    )
    return JSON({"data": monitor_json(monitor)})


@router.put(
    "/{monitor_id}",
    operation_id="updateTcpMonitor",
    summary="Update a TCP monitor",
    description="Update an existing TCP monitor. Only include fields you want to change. "
    "Scope: `tcp-monitors:write`. " + _HOST_RULE,
    responses={
        200: {"model": TcpMonitorEnvelope},
        **openapi.errors(400, 401, 403, 404, 413, not_found="TCP monitor"),
    },
    openapi_extra=openapi.json_body(UpdateTcpMonitorRequest),
)
async def update_monitor(request: Request, monitor_id: str, who: Writer, s: Deps) -> Response:
    monitor_id = monitor_id_or_404(monitor_id)
    try:
        body = await read_json(request, UpdateTcpMonitorRequest)
        _check_target(s, body.host)
    except ApiError:
        # 404 before 400: a bad body for an unknown monitor is a 404. (Looked up only
        # here: on the good path, the update finds the monitor or says 404.)
        await s.store.monitors.require(who.team_id, monitor_id)
        raise
    monitor = await s.store.monitors.update(
        who.team_id, monitor_id, body.to_domain(), at=s.clock.now_ms()
    )
    s.notify()
    return JSON({"data": monitor_json(monitor)})


@router.delete(
    "/{monitor_id}",
    operation_id="deleteTcpMonitor",
    status_code=204,
    summary="Delete a TCP monitor",
    description="Permanently delete a TCP monitor and all its check history. "
    "Scope: `tcp-monitors:write`.",
    responses={
        204: {"description": "Deleted"},
        **openapi.errors(401, 403, 404, not_found="TCP monitor"),
    },
)
async def delete_monitor(monitor_id: str, who: Writer, s: Deps) -> Response:
    await s.store.monitors.delete(who.team_id, monitor_id_or_404(monitor_id), at=s.clock.now_ms())
    return Response(status_code=204)
