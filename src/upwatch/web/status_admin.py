"""/status-pages: the team's status pages, listed, made, changed and deleted (SPEC §10).
The forms use the API's own request models and the same store calls as
``/v1/status-pages``, so a bad value, a slug already taken (by any team) or a monitor
that is not the team's gets the API's message, next to its field, with what the user
typed kept. Admins change things; viewers only look.

A change drops the public pages this process has rendered (web/status.py keeps each
for CACHE_TTL_S): an admin who makes a page private, renames it or moves its slug sees
the public page follow at once, not a few seconds later."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from upwatch.api.models import CreateStatusPageRequest, UpdateStatusPageRequest
from upwatch.api.parsing import details
from upwatch.errors import MonitorsUnknown, SlugTaken, StatusPageNotFound
from upwatch.statuspages import StatusPage
from upwatch.web import session
from upwatch.web.handlers import refused_change, services, visitor_or_login
from upwatch.web.pages import not_found, page, viewers_only_look
from upwatch.web.render import chosen_first

router = APIRouter(include_in_schema=False)

_PAGE_ID = re.compile(r"^sp_[A-Za-z0-9]{1,27}$")
FIELDS = ("name", "slug", "monitorIds", "isPublic", "showTargets")


def _id_or_none(page_id: str) -> str | None:
    return page_id if _PAGE_ID.match(page_id) else None


async def _page_of(request: Request, who: session.Visitor, page_id: str) -> StatusPage | None:
    """The team's page, or None when it is not there (or is another team's)."""
    try:
        return await services(request).store.status_pages.get(
            who.user.team_id, _id_or_none(page_id) or ""
        )
    except StatusPageNotFound:
        return None


async def _form(request: Request) -> dict[str, Any]:
    """What the form sent, as the API's body: the checkboxes become booleans and a list."""
    data = await request.form()
    return {
        "name": _text(data.get("name")),
        "slug": _text(data.get("slug")).strip(),
        "monitorIds": [v for v in data.getlist("monitorIds") if isinstance(v, str)],
        "isPublic": data.get("isPublic") == "on",
        "showTargets": data.get("showTargets") == "on",
        "csrf": _text(data.get("csrf")),
    }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _values(p: StatusPage | None) -> dict[str, Any]:
    if p is None:
        return {"name": "", "slug": "", "monitorIds": [], "isPublic": True, "showTargets": False}
    return {
        "name": p.name,
        "slug": p.slug,
        "monitorIds": list(p.monitor_ids),
        "isPublic": p.is_public,
        "showTargets": p.show_targets,
    }


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The API's messages by field; an item's (``monitorIds.3``) goes by its list."""
    errors: dict[str, str] = {}
    for d in details(exc):
        errors.setdefault(d["field"].split(".", 1)[0], d["message"])
    return errors


async def _form_page(
    request: Request,
    who: session.Visitor,
    p: StatusPage | None,
    values: dict[str, Any],
    errors: dict[str, str],
) -> Response:
    mine = await services(request).store.monitors.list_for(who.user.team_id)
    return page(
        request,
        "status_page_form.html",
        status_code=400 if errors else 200,
        visitor=who,
        status_page=p,
        values=values,
        errors=errors,
        monitors=chosen_first(mine, values["monitorIds"]),
        fields=FIELDS,
    )


def _forget_public_copies(request: Request) -> None:
    """Drop every public page this process has cached: changes are rare and a render
    costs milliseconds. A new cache rather than emptied entries: a render begun before
    the change finishes into the old one, so its stale result is never served."""
    services(request).status_pages_changed()


# -- the list -------------------------------------------------------------------------------


@router.get("/status-pages")
async def listing(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    pages = await s.store.status_pages.all(team)
    # A deleted monitor's id stays in a page's list until the page is saved again; the
    # public page skips it, and so does the count here.
    mine = {m.id for m in await s.store.monitors.list_for(team)} if pages else set()
    rows = [(p, sum(1 for i in p.monitor_ids if i in mine)) for p in pages]
    return page(request, "status_pages.html", visitor=who, rows=rows)


# -- create ---------------------------------------------------------------------------------


@router.get("/status-pages/new")
async def new_form(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return await _form_page(request, who, None, _values(None), {})


@router.post("/status-pages/new")
async def create(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    form = await _form(request)
    if (refused := refused_change(request, who, form.pop("csrf"))) is not None:
        return refused
    try:
        body = CreateStatusPageRequest.model_validate(form, strict=True)
    except ValidationError as exc:
        return await _form_page(request, who, None, form, _field_errors(exc))
    s = services(request)
    try:
        await s.store.status_pages.create(
            who.user.team_id,
            name=body.name,
            slug=body.slug,
            monitor_ids=body.monitorIds,
            is_public=body.isPublic,
            show_targets=body.showTargets,
            at=s.clock.now_ms(),
        )
    except SlugTaken:
        return await _form_page(request, who, None, form, {"slug": "is already taken"})
    except MonitorsUnknown as exc:
        return await _form_page(request, who, None, form, {"monitorIds": str(exc)})
    _forget_public_copies(request)  # its slug may have been cached as a 404
    return RedirectResponse("/status-pages", status_code=303)


# -- edit and delete ------------------------------------------------------------------------


@router.get("/status-pages/{page_id}/edit")
async def edit_form(request: Request, page_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    p = await _page_of(request, who, page_id)
    if p is None:
        return not_found(request, who, "status page")
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return await _form_page(request, who, p, _values(p), {})


@router.post("/status-pages/{page_id}/edit")
async def update(request: Request, page_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    p = await _page_of(request, who, page_id)
    if p is None:
        return not_found(request, who, "status page")
    form = await _form(request)
    if (refused := refused_change(request, who, form.pop("csrf"))) is not None:
        return refused
    try:
        body = UpdateStatusPageRequest.model_validate(form, strict=True)
    except ValidationError as exc:
        return await _form_page(request, who, p, form, _field_errors(exc))
    s = services(request)
    try:
        await s.store.status_pages.update(
            who.user.team_id,
            p.id,
            name=body.name,
            slug=body.slug,
            monitor_ids=body.monitorIds,
            is_public=body.isPublic,
            show_targets=body.showTargets,
            at=s.clock.now_ms(),
        )
    except SlugTaken:
        return await _form_page(request, who, p, form, {"slug": "is already taken"})
    except MonitorsUnknown as exc:
        return await _form_page(request, who, p, form, {"monitorIds": str(exc)})
    except StatusPageNotFound:  # deleted meanwhile
        return not_found(request, who, "status page")
    _forget_public_copies(request)
    return RedirectResponse("/status-pages", status_code=303)


@router.post("/status-pages/{page_id}/delete")
async def delete(request: Request, page_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    form = await _form(request)
    if (refused := refused_change(request, who, form["csrf"])) is not None:
        return refused
    try:
        await services(request).store.status_pages.delete(
            who.user.team_id, _id_or_none(page_id) or ""
        )
    except StatusPageNotFound:
        return not_found(request, who, "status page")
    _forget_public_copies(request)
    return RedirectResponse("/status-pages", status_code=303)
