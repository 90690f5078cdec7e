"""The team's API keys (SPEC §10): the list, a new key (its secret shown once, on the
page that made it), and revoking one. Admins only change them; viewers see the list."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

from collections.abc import Mapping

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.domain import SCOPES
from upwatch.web import session
from upwatch.web.handlers import refused_change
from upwatch.web.pages import not_found, page

router = APIRouter(include_in_schema=False)

NAME_MAX = 100


async def _listing(
    request: Request,
    who: session.Visitor,
    *,
    status_code: int = 200,
    secret: str | None = None,
    errors: dict[str, str] | None = None,
    values: Mapping[str, object] | None = None,
) -> Response:
    s: Services = request.app.state.services
    keys = await s.store.keys.all(who.user.team)
    return page(
        request,
        "keys.html",
        status_code=status_code,
        visitor=who,
        keys=keys,
        scopes=SCOPES,
        secret=secret,
        errors=errors or {},
        values=values or {"name": "", "scopes": list(SCOPES[:2])},
    )


@router.get("/keys")
async def keys(request: Request) -> Response:
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse("/login?next=/keys", status_code=303)
    return await _listing(request, who)


@router.post("/keys")
async def create(request: Request) -> Response:
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse("/login?next=/keys", status_code=303)
    form = await request.form()
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    name = _text(form.get("name")).strip()
    chosen = [v for v in form.getlist("scopes") if isinstance(v, str)]
    errors = {}
    if len(name) > NAME_MAX:
        errors["name"] = f"must be at most {NAME_MAX} characters"
    if not chosen or any(c not in SCOPES for c in chosen):
        errors["scopes"] = "choose at least one of the scopes listed"
    if errors:
        values = {"name": name, "scopes": chosen}
        return await _listing(request, who, status_code=400, errors=errors, values=values)
    s: Services = request.app.state.services
    _, secret = await s.store.keys.create(
        team=who.user.team, name=name or None, scopes=chosen, at=s.clock.now_ms()
    )
    return await _listing(request, who, status_code=201, secret=secret)


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, key_id: str) -> Response:
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse("/login?next=/keys", status_code=303)
    form = await request.form()
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    s: Services = request.app.state.services
    mine = {k.id for k in await s.store.keys.all(who.user.team)}
    if key_id not in mine:  # another team's key is not there, for this user
        return not_found(request, who, "key")
    await s.store.keys.revoke(key_id, at=s.clock.now_ms())
    return RedirectResponse("/keys", status_code=303)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
