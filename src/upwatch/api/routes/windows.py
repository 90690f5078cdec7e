"""Maintenance windows (SPEC §8): CRUD, with `active` and `nextWindow` in responses."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader, Writer
from upwatch.api.errors import ApiError, validation_error
from upwatch.api.models import (
    CreateMaintenanceWindowRequest,
    MaintenanceWindowEnvelope,
    MaintenanceWindowList,
    OnceSchedule,
    RecurringSchedule,
    UpdateMaintenanceWindowRequest,
)
from upwatch.api.parsing import read_json
from upwatch.api.responses import JSON
from upwatch.errors import WindowNotFound
from upwatch.maintenance import Once, Recurring, Schedule, ScheduleError, check_recurring
from upwatch.wire import window_json

PREFIX = "/v1/maintenance-windows"
_WINDOW_ID = re.compile(r"^mw_[A-Za-z0-9]{1,27}$")
# RFC 3339: a date, T, a time, and an offset or Z (fromisoformat alone takes more).
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)$")

router = APIRouter(prefix=PREFIX, tags=["Maintenance windows"])


def window_id_or_404(window_id: str) -> str:
    if not _WINDOW_ID.match(window_id):
        raise WindowNotFound
    return window_id


def _bad(field: str, message: str) -> ApiError:
    return validation_error("Invalid request body", [{"field": field, "message": message}])


def _instant(field: str, text: str) -> int:
    if not _RFC3339.match(text):
        raise _bad(field, "must be an RFC 3339 time with an offset, e.g. 2026-12-24T22:00:00Z")
    return int(datetime.fromisoformat(text.upper().replace("Z", "+00:00")).timestamp() * 1000)


def checked_schedule(given: OnceSchedule | RecurringSchedule) -> Schedule:
    if isinstance(given, OnceSchedule):
        starts = _instant("schedule.startsAt", given.startsAt)
        ends = _instant("schedule.endsAt", given.endsAt)
        if ends <= starts:
            raise _bad("schedule.endsAt", "must be after startsAt")
        return Once(starts, ends)
    recurring = Recurring(
        given.rrule, given.startTime, given.durationMinutes, given.timezone, given.startsOn
    )
    try:
        check_recurring(recurring)
    except ScheduleError as exc:
        raise _bad(exc.field, exc.message) from None
    return recurring


@router.get(
    "",
    operation_id="listMaintenanceWindows",
    summary="List maintenance windows",
    description="The team's windows. Scope: `tcp-monitors:read`.",
    responses={200: {"model": MaintenanceWindowList}, **openapi.errors(401, 403)},
)
async def list_windows(who: Reader, s: Deps) -> Response:
    now = s.clock.now_ms()
    found = await s.store.windows.all(who.team_id)
    return JSON({"data": [window_json(w, at=now) for w in found]})


@router.post(
    "",
    status_code=201,
    operation_id="createMaintenanceWindow",
    summary="Create a maintenance window",
    description="While a monitor is in a window it is checked and its results stored, "
    "but no incident opens and no notification is sent for it. An empty `monitorIds` "
    "means every monitor of the team. Scope: `tcp-monitors:write`.",
    responses={
        201: {"model": MaintenanceWindowEnvelope},
        **openapi.errors(400, 401, 403, 413),
    },
    openapi_extra=openapi.json_body(CreateMaintenanceWindowRequest),
)
async def create_window(request: Request, who: Writer, s: Deps) -> Response:
    body = await read_json(request, CreateMaintenanceWindowRequest)
    schedule = checked_schedule(body.schedule)
    now = s.clock.now_ms()
    made = await s.store.windows.create(
        who.team_id, name=body.name, monitor_ids=body.monitorIds, schedule=schedule, at=now
    )
    return JSON({"data": window_json(made, at=now)}, status_code=201)


@router.get(
    "/{window_id}",
    operation_id="getMaintenanceWindow",
    summary="Get a maintenance window",
    description="Scope: `tcp-monitors:read`.",
    responses={
        200: {"model": MaintenanceWindowEnvelope},
        **openapi.errors(401, 403, 404, not_found="Maintenance window"),
    },
)
async def get_window(window_id: str, who: Reader, s: Deps) -> Response:
    found = await s.store.windows.get(who.team_id, window_id_or_404(window_id))
    return JSON({"data": window_json(found, at=s.clock.now_ms())})


@router.put(
    "/{window_id}",
    operation_id="updateMaintenanceWindow",
    summary="Update a maintenance window",
    description="Only the fields given change. Scope: `tcp-monitors:write`.",
    responses={
        200: {"model": MaintenanceWindowEnvelope},
        **openapi.errors(400, 401, 403, 404, 413, not_found="Maintenance window"),
    },
    openapi_extra=openapi.json_body(UpdateMaintenanceWindowRequest),
)
async def update_window(request: Request, window_id: str, who: Writer, s: Deps) -> Response:
    window_id = window_id_or_404(window_id)
    await s.store.windows.get(who.team_id, window_id)  # 404 before 400
    body = await read_json(request, UpdateMaintenanceWindowRequest)
    schedule = None if body.schedule is None else checked_schedule(body.schedule)
    now = s.clock.now_ms()
    after = await s.store.windows.update(
        who.team_id,
        window_id,
        name=body.name,
        monitor_ids=body.monitorIds,
        schedule=schedule,
        at=now,
    )
    return JSON({"data": window_json(after, at=now)})


@router.delete(
    "/{window_id}",
    status_code=204,
    operation_id="deleteMaintenanceWindow",
    summary="Delete a maintenance window",
    description="Scope: `tcp-monitors:write`.",
    responses={
        204: {"description": "Deleted"},
        **openapi.errors(401, 403, 404, not_found="Maintenance window"),
    },
)
async def delete_window(window_id: str, who: Writer, s: Deps) -> Response:
    await s.store.windows.delete(who.team_id, window_id_or_404(window_id))
    return Response(status_code=204)
