"""/windows: maintenance windows (SPEC §8, §10): the list (active now, upcoming, past),
and the create, edit and delete forms. The forms use the API's own request models and
schedule checks, so a bad value gets the API's message, shown next to its field, with
what the user typed kept. Admins change things; viewers only look.

A one-off window's times are typed as UTC, as the form says: a ``datetime-local``
input sends a wall time without a zone (``2026-12-24T22:00``), made RFC 3339 here
(``2026-12-24T22:00:00.000Z``) before the API's model sees it. A recurring window has
its own IANA time zone, as in the API.
"""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from upwatch.api.errors import ApiError
from upwatch.api.models import (
    CreateMaintenanceWindowRequest,
    OnceSchedule,
    RecurringSchedule,
)
from upwatch.api.parsing import details
from upwatch.api.routes.windows import checked_schedule, window_id_or_404
from upwatch.domain import Monitor
from upwatch.errors import MonitorsUnknown, WindowNotFound
from upwatch.maintenance import Once, Schedule, Window, active, next_window
from upwatch.web import session
from upwatch.web.handlers import refused_change, services, visitor_or_login
from upwatch.web.pages import not_found, page, viewers_only_look

router = APIRouter(include_in_schema=False)

ONCE, RECURRING = "once", "recurring"
ONCE_FIELDS = ("startsAt", "endsAt")
RECURRING_FIELDS = ("rrule", "startTime", "durationMinutes", "timezone", "startsOn")
SCHEDULE_FIELDS = frozenset({"type", *ONCE_FIELDS, *RECURRING_FIELDS})
FIELDS = ("name", "monitorIds", "type", *ONCE_FIELDS, *RECURRING_FIELDS)
SCHEDULE_MODELS: dict[str, type[OnceSchedule] | type[RecurringSchedule]] = {
    ONCE: OnceSchedule,
    RECURRING: RecurringSchedule,
}
# What a datetime-local input sends (seconds only with a step), or the same typed with a
# space: a wall time, read as UTC.
_WALL_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,3})?)?$")
_WHOLE = re.compile(r"^[0-9]{1,9}$")
NOT_A_TIME = "must be a date and time, YYYY-MM-DD HH:MM (UTC)"
# Where each state goes in the list: the active ones first.
ORDER = {"active": 0, "upcoming": 1, "past": 2}


@dataclass(frozen=True, slots=True)
class Shown:
    """A window as a line of the list."""

    window: Window
    once: bool
    when: str  # "active" (now), "upcoming" or "past" (no occurrence ahead)
    next: tuple[int, int] | None  # the occurrence in progress, else the next one (ms)
    monitors: list[Monitor]  # the team's monitors it names (empty list: see `every`)
    every: bool  # it names none: every monitor of the team, present and future
    gone: int  # monitors it names that are no longer there


@dataclass(frozen=True, slots=True)
class Valid:
    """A form the API would take."""

    name: str
    monitor_ids: list[str]
    schedule: Schedule


@functools.cache
def time_zones() -> list[str]:
    """IANA names, offered as the form's suggestions."""
    return sorted(zoneinfo.available_timezones())


def as_rfc3339(text: str) -> str | None:
    """A wall time typed in the form, as an RFC 3339 UTC time; one with its own offset
    as it is (the API judges it); None for anything else."""
    if not _WALL_TIME.match(text):
        return text if "T" in text.upper() and re.search(r"([Zz]|[+-]\d\d:\d\d)$", text) else None
    try:
        at = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return at.isoformat(timespec="milliseconds") + "Z"


def wall_time(ms: int) -> str:
    """A time as a datetime-local input shows it, in UTC (seconds and milliseconds only
    when it has them: a window made through the API keeps them when edited here)."""
    at = datetime.fromtimestamp(ms // 1000, UTC).replace(tzinfo=None, microsecond=ms % 1000 * 1000)
    spec = "milliseconds" if at.microsecond else "seconds" if at.second else "minutes"
    return at.isoformat(timespec=spec)


def _field(api_field: str) -> str:
    """The form field an API error names: ``schedule.startsAt`` is ``startsAt``,
    ``monitorIds.0`` is ``monitorIds``, ``schedule`` itself its type."""
    head, _, rest = api_field.partition(".")
    if head == "schedule":
        return rest.split(".", 1)[0] or "type"
    return head


def _errors(found: list[dict[str, str]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for d in found:
        errors.setdefault(_field(d["field"]), d["message"])
    return errors


def _as_body(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body the form means, and the fields that are not even times or numbers.
    An empty field is left out: the API says it is required."""
    errors: dict[str, str] = {}
    schedule: dict[str, Any] = {"type": values["type"]}
    if values["type"] == ONCE:
        for name in ONCE_FIELDS:
            text = values[name].strip()
            if text:
                converted = as_rfc3339(text)
                if converted is None:
                    errors[name] = NOT_A_TIME
                else:
                    schedule[name] = converted
    elif values["type"] == RECURRING:
        for name in RECURRING_FIELDS:
            text = values[name].strip()
            if not text:
                continue
            if name == "durationMinutes":
                if _WHOLE.match(text):
                    schedule[name] = int(text)
                else:
                    errors[name] = "must be a whole number"
            else:
                schedule[name] = text
    body = {"name": values["name"], "monitorIds": values["monitorIds"], "schedule": schedule}
    return body, errors


async def _values(request: Request) -> tuple[dict[str, Any], str | None]:
    """What the form sent (as typed, to show again), and its CSRF token."""
    form = await request.form()

    def text(name: str) -> str:
        v = form.get(name)
        return v if isinstance(v, str) else ""

    values: dict[str, Any] = {name: text(name) for name in FIELDS if name != "monitorIds"}
    values["type"] = values["type"] or ONCE
    values["monitorIds"] = [v for v in form.getlist("monitorIds") if isinstance(v, str)]
    csrf = form.get("csrf")
    return values, csrf if isinstance(csrf, str) else None


def _form_values(w: Window | None, now: int) -> dict[str, Any]:
    today = datetime.fromtimestamp(now / 1000, UTC).date().isoformat()
    values: dict[str, Any] = {
        "name": "",
        "monitorIds": [],
        "type": ONCE,
        "startsAt": "",
        "endsAt": "",
        "rrule": "FREQ=WEEKLY;BYDAY=SU",
        "startTime": "02:00",
        "durationMinutes": "60",
        "timezone": "UTC",
        "startsOn": today,
    }
    if w is None:
        return values
    values["name"] = w.name
    values["monitorIds"] = list(w.monitor_ids)
    s = w.schedule
    if isinstance(s, Once):
        values.update(startsAt=wall_time(s.starts_at), endsAt=wall_time(s.ends_at))
    else:
        values.update(
            type=RECURRING,
            rrule=s.rrule,
            startTime=s.start_time,
            durationMinutes=str(s.duration_minutes),
            timezone=s.timezone,
            startsOn=s.starts_on,
        )
    return values


async def _form_page(
    request: Request,
    who: session.Visitor,
    window: Window | None,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response:
    s = services(request)
    monitors = await s.store.monitors.list_for(who.user.team_id)
    return page(
        request,
        "window_form.html",
        status_code=status_code,
        visitor=who,
        window=window,
        monitors=monitors,
        values=values,
        errors=errors,
        time_zones=time_zones(),
    )


def _shown(w: Window, monitors: dict[str, Monitor], now: int) -> Shown:
    upcoming = next_window(w.schedule, now)
    when = "active" if active(w.schedule, now) else "upcoming" if upcoming else "past"
    named = [monitors[m] for m in w.monitor_ids if m in monitors]
    return Shown(
        window=w,
        once=isinstance(w.schedule, Once),
        when=when,
        next=upcoming,
        monitors=named,
        every=not w.monitor_ids,
        gone=len(w.monitor_ids) - len(named),
    )


async def _window(request: Request, who: session.Visitor, window_id: str) -> Window | None:
    """The team's window with this id, or None (another team's is not there)."""
    try:
        return await services(request).store.windows.get(
            who.user.team_id, window_id_or_404(window_id)
        )
    except WindowNotFound:
        return None


def _validated(values: dict[str, Any]) -> Valid | dict[str, str]:
    """The form as the API would take it, or the API's messages by field (all of them:
    a well-formed schedule is checked even when the name is wrong).

    Both forms send every field, so both are judged by the create model: a full PUT
    body is a create body, and the update model's optional schedule (a union with
    None) names its errors ``schedule.once.endsAt``, plus a stray ``schedule: Input
    should be None``."""
    body, errors = _as_body(values)
    model = None
    try:
        model = CreateMaintenanceWindowRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        errors = {**_errors(details(exc)), **errors}
    schedule = None
    if not SCHEDULE_FIELDS & errors.keys():
        given = SCHEDULE_MODELS[values["type"]].model_validate(body["schedule"], strict=True)
        try:
            schedule = checked_schedule(given)
        except ApiError as exc:
            errors.update(_errors(exc.details or [{"field": "type", "message": exc.message}]))
    if errors or model is None or schedule is None:
        return errors
    return Valid(model.name, list(model.monitorIds), schedule)


# -- the list -------------------------------------------------------------------------------


@router.get("/windows")
async def windows(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    s = services(request)
    team = who.user.team_id
    now = s.clock.now_ms()
    monitors = {m.id: m for m in await s.store.monitors.list_for(team)}
    shown = [_shown(w, monitors, now) for w in await s.store.windows.all(team)]
    shown.sort(key=lambda x: (ORDER[x.when], x.next[0] if x.next else 0))
    return page(request, "windows.html", visitor=who, windows=shown)


# -- create ---------------------------------------------------------------------------------


@router.get("/windows/new")
async def new_form(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    now = services(request).clock.now_ms()
    return await _form_page(request, who, None, _form_values(None, now), {})


@router.post("/windows/new")
async def create(request: Request) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    values, csrf = await _values(request)
    if (refused := refused_change(request, who, csrf)) is not None:
        return refused
    valid = _validated(values)
    if not isinstance(valid, Valid):
        return await _form_page(request, who, None, values, valid, status_code=400)
    s = services(request)
    try:
        await s.store.windows.create(
            who.user.team_id,
            name=valid.name,
            monitor_ids=valid.monitor_ids,
            schedule=valid.schedule,
            at=s.clock.now_ms(),
        )
    except MonitorsUnknown as exc:
        errors = {"monitorIds": str(exc)}
        return await _form_page(request, who, None, values, errors, status_code=400)
    return RedirectResponse("/windows", status_code=303)


# -- edit and delete ------------------------------------------------------------------------


@router.get("/windows/{window_id}/edit")
async def edit_form(request: Request, window_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    w = await _window(request, who, window_id)
    if w is None:
        return not_found(request, who, "maintenance window")
    if not who.user.is_admin:
        return viewers_only_look(request, who)
    now = services(request).clock.now_ms()
    return await _form_page(request, who, w, _form_values(w, now), {})


@router.post("/windows/{window_id}/edit")
async def update(request: Request, window_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    w = await _window(request, who, window_id)
    if w is None:
        return not_found(request, who, "maintenance window")
    values, csrf = await _values(request)
    if (refused := refused_change(request, who, csrf)) is not None:
        return refused
    valid = _validated(values)
    if not isinstance(valid, Valid):
        return await _form_page(request, who, w, values, valid, status_code=400)
    s = services(request)
    try:
        await s.store.windows.update(
            who.user.team_id,
            w.id,
            name=valid.name,
            monitor_ids=valid.monitor_ids,
            schedule=valid.schedule,
            at=s.clock.now_ms(),
        )
    except MonitorsUnknown as exc:
        errors = {"monitorIds": str(exc)}
        return await _form_page(request, who, w, values, errors, status_code=400)
    except WindowNotFound:  # deleted meanwhile
        return not_found(request, who, "maintenance window")
    return RedirectResponse("/windows", status_code=303)


@router.post("/windows/{window_id}/delete")
async def delete(request: Request, window_id: str) -> Response:
    who = await visitor_or_login(request)
    if isinstance(who, Response):
        return who
    _, csrf = await _values(request)
    if (refused := refused_change(request, who, csrf)) is not None:
        return refused
    s = services(request)
    try:
        await s.store.windows.delete(who.user.team_id, window_id_or_404(window_id))
    except WindowNotFound:
        return not_found(request, who, "maintenance window")
    return RedirectResponse("/windows", status_code=303)
