"""Status pages (SPEC §10): CRUD for the team's pages; the pages themselves are served
by upwatch/web/status.py."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.api import openapi
from upwatch.api.deps import Deps, Reader, Writer
from upwatch.api.models import (
    CreateStatusPageRequest,
    StatusPageEnvelope,
    StatusPageList,
    UpdateStatusPageRequest,
)
from upwatch.api.parsing import read_json
from upwatch.api.responses import JSON
from upwatch.errors import StatusPageNotFound
from upwatch.wire import status_page_json

PREFIX = "/v1/status-pages"
_PAGE_ID = re.compile(r"^sp_[A-Za-z0-9]{1,27}$")

router = APIRouter(prefix=PREFIX, tags=["Status pages"])


def page_id_or_404(page_id: str) -> str:
    if not _PAGE_ID.match(page_id):
        raise StatusPageNotFound
    return page_id


@router.get(
    "",
    operation_id="listStatusPages",
    summary="List status pages",
    description="The team's status pages. Scope: `tcp-monitors:read`.",
    responses={200: {"model": StatusPageList}, **openapi.errors(401, 403)},
)
async def list_pages(who: Reader, s: Deps) -> Response:
    found = await s.store.status_pages.all(who.team_id)
    return JSON({"data": [status_page_json(p, public_url=s.public_url) for p in found]})


@router.post(
    "",
    status_code=201,
    operation_id="createStatusPage",
    summary="Create a status page",
    description="A public page at /status/<slug> showing the given monitors: their state, "
    "90 daily bars, availability, open incidents and maintenance; hosts, ports and error "
    "texts only with `showTargets`. Scope: `tcp-monitors:write`.",
    responses={201: {"model": StatusPageEnvelope}, **openapi.errors(400, 401, 403, 413)},
    openapi_extra=openapi.json_body(CreateStatusPageRequest),
)
async def create_page(request: Request, who: Writer, s: Deps) -> Response:
    body = await read_json(request, CreateStatusPageRequest)
    made = await s.store.status_pages.create(
        who.team_id,
        name=body.name,
        slug=body.slug,
        monitor_ids=body.monitorIds,
        is_public=body.isPublic,
        show_targets=body.showTargets,
        at=s.clock.now_ms(),
    )
    s.status_pages_changed()  # its slug may have been cached as a 404
    return JSON({"data": status_page_json(made, public_url=s.public_url)}, status_code=201)


@router.get(
    "/{page_id}",
    operation_id="getStatusPage",
    summary="Get a status page",
    description="Scope: `tcp-monitors:read`.",
    responses={
        200: {"model": StatusPageEnvelope},
        **openapi.errors(401, 403, 404, not_found="Status page"),
    },
)
async def get_page(page_id: str, who: Reader, s: Deps) -> Response:
    found = await s.store.status_pages.get(who.team_id, page_id_or_404(page_id))
    return JSON({"data": status_page_json(found, public_url=s.public_url)})


@router.put(
    "/{page_id}",
    operation_id="updateStatusPage",
    summary="Update a status page",
    description="Only the fields given change. Scope: `tcp-monitors:write`.",
    responses={
        200: {"model": StatusPageEnvelope},
        **openapi.errors(400, 401, 403, 404, 413, not_found="Status page"),
    },
    openapi_extra=openapi.json_body(UpdateStatusPageRequest),
)
async def update_page(request: Request, page_id: str, who: Writer, s: Deps) -> Response:
    page_id = page_id_or_404(page_id)
    await s.store.status_pages.get(who.team_id, page_id)  # 404 before 400
    body = await read_json(request, UpdateStatusPageRequest)
    after = await s.store.status_pages.update(
        who.team_id,
        page_id,
        name=body.name,
        slug=body.slug,
        monitor_ids=body.monitorIds,
        is_public=body.isPublic,
        show_targets=body.showTargets,
        at=s.clock.now_ms(),
    )
    s.status_pages_changed()
    return JSON({"data": status_page_json(after, public_url=s.public_url)})


@router.delete(
    "/{page_id}",
    status_code=204,
    operation_id="deleteStatusPage",
    summary="Delete a status page",
    description="Scope: `tcp-monitors:write`.",
    responses={
        204: {"description": "Deleted"},
        **openapi.errors(401, 403, 404, not_found="Status page"),
    },
)
async def delete_page(page_id: str, who: Writer, s: Deps) -> Response:
    await s.store.status_pages.delete(who.team_id, page_id_or_404(page_id))
    s.status_pages_changed()
    return Response(status_code=204)
