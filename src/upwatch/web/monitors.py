"""A monitor's pages (SPEC §10): its page (state, a response-time chart with p50 and
p95, availability over 24 h / 7 d / 30 d / 90 d, incidents, recent results, its
notification channels and maintenance windows), the chart's data
(``/monitors/<id>/chart.json``), and the create, edit and delete forms. The forms use
the API's own request models, so a bad value gets the API's message, shown next to its
field, with what the user typed kept. Admins change things; viewers only look.

The chart is drawn in the browser (uPlot, static/chart.js) from chart.json, which the
session cookie authenticates, as every page here: it is not under /v1/, where only API
keys count. Without JavaScript the page says so where the chart would be."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import gzip
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from upwatch.api.models import CreateTcpMonitorRequest, UpdateTcpMonitorRequest
from upwatch.api.parsing import details
from upwatch.api.responses import JSON
from upwatch.domain import (
    CONFIRMATION_CHECKS_DEFAULT,
    INTERVAL_S_DEFAULT,
    TIMEOUT_MS_DEFAULT,
    Monitor,
    rfc3339,
)
from upwatch.errors import FamilyMismatch, MonitorNotFound, UnknownChannels
from upwatch.maintenance import next_window
from upwatch.stats import BUCKETS_MS, DAY_MS, Bucket
from upwatch.statuspages import shown_state
from upwatch.web import session
from upwatch.web.handlers import refused_change, services, visitor_or_login
from upwatch.web.headers import SECURITY_HEADERS
from upwatch.web.pages import (
    GZIP_FROM_BYTES,
    PRIVATE,
    not_found,
    page,
    viewers_only_look,
)
from upwatch.web.render import chosen_first

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
    ("confirmationChecks", "confirmationChecks", int),
)
# Left empty, these keep the API's default (create) or the monitor's value (edit).
OPTIONAL = ("timeoutMs", "intervalSeconds", "ipFamily", "confirmationChecks")
CHANNELS = "notificationChannelIds"  # checkboxes: the form sends each ticked one
PERIODS = (("24 h", 1), ("7 d", 7), ("30 d", 30), ("90 d", 90))
RECENT = 20


@dataclass(frozen=True, slots=True)
class ChartRange:
    label: str
    days: int
    bucket: str  # of stats.BUCKETS_MS: at most a few hundred points a range


# 24 h of 5-minute buckets (raw results) is 288 points, 7 d of hours 168, 30 d of hours
# 720 (uPlot draws them at ease; daily ones would be 30 points and hide every spike),
# 90 d of days 90.
CHART_RANGES = {
    "24h": ChartRange("24 h", 1, "5m"),
    "7d": ChartRange("7 d", 7, "1h"),
    "30d": ChartRange("30 d", 30, "1h"),
    "90d": ChartRange("90 d", 90, "1d"),
}
DEFAULT_CHART_RANGE = "24h"


def _as_body(form: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body the form means, and the fields that are not even numbers. The
    channels are always sent: the form shows every channel of the team, so none ticked
    means none."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, api_name, kind in FIELDS:
        text = _text(form.get(name))
        text = text if name == "name" else text.strip()
        if text == "" and (partial or name in OPTIONAL):
            continue
        if kind is int:
            if not re.fullmatch(r"[0-9]{1,9}", text):
                errors[name] = "must be a whole number"
                continue
            body[api_name] = int(text)
        else:
            body[api_name] = text
    body["isEnabled"] = form.get("isEnabled") == "on"
    body[CHANNELS] = list(form.get(CHANNELS, []))
    return body, errors


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The API's messages by field; an item's (``notificationChannelIds.3``) goes by its
    list."""
    errors: dict[str, str] = {}
    for d in details(exc):
        errors.setdefault(d["field"].split(".", 1)[0], d["message"])
    return errors


def _form_values(m: Monitor | None) -> dict[str, Any]:
    if m is None:
        return {
            "name": "",
            "host": "",
            "port": "",
            "timeoutMs": str(TIMEOUT_MS_DEFAULT),
            "intervalSeconds": str(INTERVAL_S_DEFAULT),
            "ipFamily": "auto",
            "confirmationChecks": str(CONFIRMATION_CHECKS_DEFAULT),
            CHANNELS: [],
            "isEnabled": "on",
        }
    return {
        "name": m.name,
        "host": m.host,
        "port": str(m.port),
        "timeoutMs": str(m.timeout_ms),
        "intervalSeconds": str(m.interval_s),
        "ipFamily": m.ip_family.value,
        "confirmationChecks": str(m.confirmation_checks),
        CHANNELS: list(m.channel_ids),
        "isEnabled": "on" if m.is_enabled else "",
    }


async def _form(request: Request) -> dict[str, Any]:
    """What the form sent: text by name, and the ticked channels as a list."""
    data = await request.form()
    form: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str)}
    form[CHANNELS] = [v for v in data.getlist(CHANNELS) if isinstance(v, str)]
    return form


async def _form_page(
    request: Request,
    who: session.Visitor,
    monitor: Monitor | None,
    values: dict[str, Any],
    errors: dict[str, str],
) -> Response:
    """The form, with the team's channels to choose from."""
    mine = await services(request).store.channels.all(who.user.team_id)
    return page(
        request,
        "monitor_form.html",
        status_code=400 if errors else 200,
        visitor=who,
        monitor=monitor,
        values=values,
        errors=errors,
        channels=chosen_first(mine, values[CHANNELS]),
    )


async def _again(
    request: Request,
    who: session.Visitor,
    monitor: Monitor | None,
    form: dict[str, Any],
    errors: dict[str, str],
) -> Response:
    """The form once more, with what was typed and a message by each bad field."""
    values = {**form, "isEnabled": "on" if form.get("isEnabled") == "on" else ""}
    return await _form_page(request, who, monitor, values, errors)


def _id_or_none(monitor_id: str) -> str | None:
    return monitor_id if _MONITOR_ID.match(monitor_id) else None


# -- create ---------------------------------------------------------------------------------


@router.get("/monitors/new")
async def new_form(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return await _form_page(request, who, None, _form_values(None), {})


@router.post("/monitors/new")
async def create(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    s = services(request)
    body, errors = _as_body(form, partial=False)
    model = None
    try:
        model = CreateTcpMonitorRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = {**_field_errors(exc), **errors}
    if model is not None and not s.policy.permits(model.host):
        errors["host"] = "address not allowed"
    if errors or model is None:
        return await _again(request, who, None, form, errors)
    try:
        made = await s.store.monitors.create(
            who.user.team_id, model.to_domain(), at=s.clock.now_ms()
        )
    except UnknownChannels as exc:  # another team's, or deleted meanwhile: nothing made
        return await _again(request, who, None, form, {CHANNELS: str(exc)})
    s.notify()
    return RedirectResponse(f"/monitors/{made.id}", status_code=303)


# -- one monitor ----------------------------------------------------------------------------


@router.get("/monitors/{monitor_id}")
async def monitor_page(request: Request, monitor_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    now = s.clock.now_ms()
    try:
        m = await s.store.monitors.get(team, _id_or_none(monitor_id) or "", at=now)
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    summaries = await s.store.statistics.summaries(
        team,
        m.id,
        [(now - days * DAY_MS, now) for _, days in PERIODS],
        now=now,
        raw_since=now - s.result_retention_days * DAY_MS,
    )
    results, total = await s.store.results.page(team, m.id, limit=RECENT, offset=0)
    incidents, _ = await s.store.incidents.of_monitor(team, m.id, limit=10, offset=0)
    channels = {c.id: c for c in await s.store.channels.all(team)}
    windows = [
        (w, next_window(w.schedule, now)) for w in await s.store.windows.all(team) if w.covers(m.id)
    ]
    chosen = request.query_params.get("range", DEFAULT_CHART_RANGE)
    if chosen not in CHART_RANGES:
        chosen = DEFAULT_CHART_RANGE
    return page(
        request,
        "monitor.html",
        visitor=who,
        monitor=m,
        shown=shown_state(m.state, in_maintenance=m.in_maintenance, is_enabled=m.is_enabled),
        periods=[(label, x) for (label, _), x in zip(PERIODS, summaries, strict=True)],
        results=results,
        total=total,
        incidents=incidents,
        channels=[channels[c] for c in m.channel_ids if c in channels],
        windows=windows,
        now=now,
        chart_ranges=CHART_RANGES,
        chart_range=chosen,
    )


# -- the chart's data -----------------------------------------------------------------------


def _json(request: Request, body: dict[str, Any], *, status_code: int = 200) -> Response:
    """JSON for the page's script: private, never stored, gzipped as pages are."""
    answer = JSON(body, status_code=status_code)
    headers = {**SECURITY_HEADERS, "Cache-Control": PRIVATE, "Vary": "Accept-Encoding"}
    content = answer.body
    if len(content) >= GZIP_FROM_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        content = gzip.compress(content, compresslevel=6, mtime=0)
    return Response(content, status_code, headers, media_type="application/json")


def _json_error(request: Request, status_code: int, code: str, message: str) -> Response:
    return _json(request, {"error": {"code": code, "message": message}}, status_code=status_code)


def chart_json(r: str, bucket: str, start: int, end: int, buckets: list[Bucket]) -> dict[str, Any]:
    """Columns, as uPlot takes them: each bucket's start (seconds), its p50 and p95
    response times (ms, null without a timed check), and its checks up and not up
    (down or timed out)."""
    figures = [b.checks.response_times(("p50", 0.5), ("p95", 0.95)) for b in buckets]
    return {
        "range": r,
        "bucket": bucket,
        "bucketSeconds": BUCKETS_MS[bucket] // 1000,
        "from": rfc3339(start),
        "to": rfc3339(end),
        "start": [b.start // 1000 for b in buckets],
        "p50": [f["p50"] for f in figures],
        "p95": [f["p95"] for f in figures],
        "up": [b.checks.up for b in buckets],
        "down": [b.checks.down + b.checks.timeout for b in buckets],
    }


@router.get("/monitors/{monitor_id}/chart.json")
async def chart_data(request: Request, monitor_id: str) -> Response:
    """The monitor page's chart over ?range=24h|7d|30d|90d. Fetched by its script: a
    visitor without a session gets a 401 in JSON, not the login page."""
    who = await session.visitor(request)
    if who is None:
        return _json_error(request, 401, "UNAUTHORIZED", "Log in to see this chart")
    s = services(request)
    now = s.clock.now_ms()
    team = who.user.team_id
    r = request.query_params.get("range", DEFAULT_CHART_RANGE)
    chosen = CHART_RANGES.get(r)
    found = _id_or_none(monitor_id)
    if found is None:
        return _json_error(request, 404, "NOT_FOUND", "There is no such monitor in your team")
    try:
        await s.store.monitors.require(team, found)
    except MonitorNotFound:
        return _json_error(request, 404, "NOT_FOUND", "There is no such monitor in your team")
    if chosen is None:
        return _json_error(
            request, 400, "VALIDATION_ERROR", f"range must be one of {', '.join(CHART_RANGES)}"
        )
    start = max(now - chosen.days * DAY_MS, now - s.rollup_retention_days * DAY_MS)
    bucket = chosen.bucket
    size = BUCKETS_MS[bucket]
    if bucket == "5m" and start - start % size < now - s.result_retention_days * DAY_MS:
        bucket, size = "1h", BUCKETS_MS["1h"]  # raw results are gone: hours of rollups
    try:
        buckets = await s.store.statistics.series(team, found, start, now, size, now=now)
    except MonitorNotFound:  # deleted meanwhile
        return _json_error(request, 404, "NOT_FOUND", "There is no such monitor in your team")
    return _json(request, chart_json(r, bucket, start, now, buckets))


@router.get("/monitors/{monitor_id}/edit")
async def edit_form(request: Request, monitor_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    try:
        m = await s.store.monitors.get(who.user.team_id, _id_or_none(monitor_id) or "")
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    return await _form_page(request, who, m, _form_values(m), {})


@router.post("/monitors/{monitor_id}/edit")
async def update(request: Request, monitor_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    try:
        m = await s.store.monitors.get(team, _id_or_none(monitor_id) or "")
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    body, errors = _as_body(form, partial=True)
    model = None
    try:
        model = UpdateTcpMonitorRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = {**_field_errors(exc), **errors}
    if model is not None and model.host is not None and not s.policy.permits(model.host):
        errors["host"] = "address not allowed"
    if errors or model is None:
        return await _again(request, who, m, form, errors)
    try:
        await s.store.monitors.update(team, m.id, model.to_domain(), at=s.clock.now_ms())
    except FamilyMismatch as exc:
        return await _again(request, who, m, form, {"ipFamily": str(exc)})
    except UnknownChannels as exc:  # another team's, or deleted meanwhile: nothing changed
        return await _again(request, who, m, form, {CHANNELS: str(exc)})
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    s.notify()
    return RedirectResponse(f"/monitors/{m.id}", status_code=303)


@router.post("/monitors/{monitor_id}/delete")
async def delete(request: Request, monitor_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    form = await _form(request)
    if (refused := refused_change(request, who, form.get("csrf"))) is not None:
        return refused
    try:
        await s.store.monitors.delete(
            who.user.team_id, _id_or_none(monitor_id) or "", at=s.clock.now_ms()
        )
    except MonitorNotFound:
        return not_found(request, who, "monitor")
    return RedirectResponse("/", status_code=303)
