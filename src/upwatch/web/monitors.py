"""A monitor's pages (SPEC §10): its page (state, availability over 24 h / 7 d / 30 d /
90 d, incidents, recent results), and the create, edit and delete forms. The forms use
the API's own request models, so a bad value gets the API's message, shown next to its
field, with what the user typed kept. Admins change things; viewers only look."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.api.models import CreateTcpMonitorRequest, UpdateTcpMonitorRequest
from upwatch.api.parsing import details
from upwatch.domain import (
    INTERVAL_S_DEFAULT,
    TIMEOUT_MS_DEFAULT,
    Monitor,
)
from upwatch.errors import FamilyMismatch, MonitorNotFound
from upwatch.stats import DAY_MS
from upwatch.statuspages import shown_state
from upwatch.web import session
from upwatch.web.pages import form_expired, not_found, page, viewers_only_look

router = APIRouter(include_in_schema=False)

_MONITOR_ID = re.compile(r"^tcpm_[A-Za-z0-9]{1,27}$")
# The form's fields: (form name, API name, kind).
FIELDS = (
    ("name", "name", str),
    ("host", "host", str),
    ("port", "port", int),
    ("timeoutMs", "timeoutMs", int),
    ("intervalSeconds", "intervalSeconds", int),
    ("ipFamily", "ipFamily", str),
)
PERIODS = (("24 h", 1), ("7 d", 7), ("30 d", 30), ("90 d", 90))
RECENT = 20


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def _who(request: Request) -> session.Visitor | Response:
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return who


def _as_body(form: dict[str, str], *, partial: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body the form means, and the fields that are not even numbers."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, api_name, kind in FIELDS:
        text = form.get(name, "").strip() if name != "name" else form.get(name, "")
        if text == "" and (partial or name in ("timeoutMs", "intervalSeconds", "ipFamily")):
            continue
        if kind is int:
            if not re.fullmatch(r"[0-9]{1,9}", text):
                errors[name] = "must be a whole number"
                continue
            body[api_name] = int(text)
        else:
            body[api_name] = text
    body["isEnabled"] = form.get("isEnabled") == "on"
    return body, errors


def _field_errors(exc: ValidationError) -> dict[str, str]:
    return {d["field"]: d["message"] for d in details(exc)}


def _form_values(m: Monitor | None) -> dict[str, str]:
    if m is None:
        return {
            "name": "",
            "host": "",
            "port": "",
            "timeoutMs": str(TIMEOUT_MS_DEFAULT),
            "intervalSeconds": str(INTERVAL_S_DEFAULT),
            "ipFamily": "auto",
            "isEnabled": "on",
        }
    return {
        "name": m.name,
        "host": m.host,
        "port": str(m.port),
        "timeoutMs": str(m.timeout_ms),
        "intervalSeconds": str(m.interval_s),
        "ipFamily": m.ip_family.value,
        "isEnabled": "on" if m.is_enabled else "",
    }


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _again(
    request: Request,
    who: session.Visitor,
    monitor: Monitor | None,
    form: dict[str, str],
    errors: dict[str, str],
) -> Response:
    """The form once more, with what was typed and a message by each bad field."""
    values = {**form, "isEnabled": "on" if form.get("isEnabled") == "on" else ""}
    return page(
        request,
        "monitor_form.html",
        status_code=400,
        visitor=who,
        monitor=monitor,
        values=values,
        errors=errors,
    )


def _id_or_none(monitor_id: str) -> str | None:
    return monitor_id if _MONITOR_ID.match(monitor_id) else None


# -- create ---------------------------------------------------------------------------------


@router.get("/monitors/new")
async def new_form(request: Request) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return page(
        request,
        "monitor_form.html",
        visitor=who,
        monitor=None,
        values=_form_values(None),
        errors={},
    )


@router.post("/monitors/new")
async def create(request: Request) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    form = await _form(request)
    if not session.session_token_ok(who, form.get("csrf")):
        return form_expired(request, who)
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    s = _services(request)
    body, errors = _as_body(form, partial=False)
    model = None
    try:
        model = CreateTcpMonitorRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = {**_field_errors(exc), **errors}
    if model is not None and not s.policy.permits(model.host):
        errors["host"] = "address not allowed"
    if errors or model is None:
        return _again(request, who, None, form, errors)
    made = await s.store.monitors.create(who.user.team_id, model.to_domain(), at=s.clock.now_ms())
    s.notify()
    return RedirectResponse(f"/monitors/{made.id}", status_code=303)


# -- one monitor ----------------------------------------------------------------------------


@router.get("/monitors/{monitor_id}")
async def monitor_page(request: Request, monitor_id: str) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    s = _services(request)
    team = who.user.team_id
    now = s.clock.now_ms()
    try:
        m = await s.store.monitors.get(team, _id_or_none(monitor_id) or "", at=now)
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    raw_since = now - s.result_retention_days * DAY_MS
    periods = []
    for label, days in PERIODS:
        summary = await s.store.statistics.summary(
            team, m.id, now - days * DAY_MS, now, now=now, raw_since=raw_since
        )
        periods.append((label, summary))
    results, total = await s.store.results.page(team, m.id, limit=RECENT, offset=0)
    incidents, _ = await s.store.incidents.of_monitor(team, m.id, limit=10, offset=0)
    return page(
        request,
        "monitor.html",
        visitor=who,
        monitor=m,
        shown=shown_state(m.state, in_maintenance=m.in_maintenance, is_enabled=m.is_enabled),
        periods=periods,
        results=results,
        total=total,
        incidents=incidents,
    )


@router.get("/monitors/{monitor_id}/edit")
async def edit_form(request: Request, monitor_id: str) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    s = _services(request)
    try:
        m = await s.store.monitors.get(who.user.team_id, _id_or_none(monitor_id) or "")
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return page(
        request, "monitor_form.html", visitor=who, monitor=m, values=_form_values(m), errors={}
    )


@router.post("/monitors/{monitor_id}/edit")
async def update(request: Request, monitor_id: str) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    s = _services(request)
    team = who.user.team_id
    try:
        m = await s.store.monitors.get(team, _id_or_none(monitor_id) or "")
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    form = await _form(request)
    if not session.session_token_ok(who, form.get("csrf")):
        return form_expired(request, who)
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    body, errors = _as_body(form, partial=True)
    model = None
    try:
        model = UpdateTcpMonitorRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = {**_field_errors(exc), **errors}
    if model is not None and model.host is not None and not s.policy.permits(model.host):
        errors["host"] = "address not allowed"
    if errors or model is None:
        return _again(request, who, m, form, errors)
    try:
        await s.store.monitors.update(team, m.id, model.to_domain(), at=s.clock.now_ms())
    except FamilyMismatch as exc:
        return _again(request, who, m, form, {"ipFamily": str(exc)})
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    s.notify()
    return RedirectResponse(f"/monitors/{m.id}", status_code=303)


@router.post("/monitors/{monitor_id}/delete")
async def delete(request: Request, monitor_id: str) -> Response:
    who = await _who(request)
    if isinstance(who, Response):
        return who
    s = _services(request)
    form = await _form(request)
    if not session.session_token_ok(who, form.get("csrf")):
        return form_expired(request, who)
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    try:
        await s.store.monitors.delete(
            who.user.team_id, _id_or_none(monitor_id) or "", at=s.clock.now_ms()
        )
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    return RedirectResponse("/", status_code=303)
