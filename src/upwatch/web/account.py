"""Signing in and out, and the first run (SPEC §10): ``/setup`` creates the first admin
with the one-time token the server printed in its log, ``/login`` starts a session
(failed logins slowed per address and per account), ``/logout`` ends it."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

import math
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from upwatch.api.deps import Services
from upwatch.security import hash_password_async
from upwatch.users import email_problem, password_problem
from upwatch.web import session
from upwatch.web.pages import form_expired, page

router = APIRouter(include_in_schema=False)

TEAM_NAME_MAX = 64


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def _field(form: dict[str, str], name: str) -> str:
    return form.get(name, "")


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _next_path(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _anonymous_form(
    request: Request, template: str, status: int = 200, **context: object
) -> Response:
    token = session.form_token(request)
    response = page(request, template, status_code=status, csrf=token, **context)
    session.set_form_token(request, response, token)
    return response


# -- first run ------------------------------------------------------------------------------


@router.get("/setup")
async def setup_form(request: Request) -> Response:
    if await _services(request).store.users.count():
        return RedirectResponse("/login", status_code=303)
    return _anonymous_form(
        request, "setup.html", errors={}, values={"token": request.query_params.get("token", "")}
    )


@router.post("/setup")
async def setup(request: Request) -> Response:
    s = _services(request)
    if await s.store.users.count():
        return RedirectResponse("/login", status_code=303)
    form = await _form(request)
    values = {k: _field(form, k) for k in ("token", "email", "team")}
    if not session.form_token_ok(request, form.get("csrf")):
        return _anonymous_form(request, "setup.html", 400, errors=_STALE, values=values)
    errors = {}
    if problem := email_problem(values["email"]):
        errors["email"] = problem
    team = values["team"].strip()
    if not team or len(team) > TEAM_NAME_MAX:
        errors["team"] = f"must be 1-{TEAM_NAME_MAX} characters"
    password = _field(form, "password")
    if problem := password_problem(password, email=values["email"]):
        errors["password"] = problem
    elif password != _field(form, "password_again"):
        errors["password_again"] = "does not match the password"  # noqa: S105 (a message)
    if errors:
        return _anonymous_form(request, "setup.html", 400, errors=errors, values=values)
    made = await s.store.setup.consume(
        values["token"].strip(),
        email=values["email"],
        password_hash=await hash_password_async(password),
        team=team,
        at=s.clock.now_ms(),
    )
    if made is None:
        errors = {"token": "is not valid (or was used): take the one in the server's log"}
        return _anonymous_form(request, "setup.html", 400, errors=errors, values=values)
    token, started = await s.store.sessions.start(made, at=s.clock.now_ms())
    response = RedirectResponse("/", status_code=303)
    session.set_session(request, response, token, started)
    return response


_STALE = {"form": "This form has expired: please send it again."}


# -- login and logout -----------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    if not await _services(request).store.users.count():
        return RedirectResponse("/setup", status_code=303)
    if await session.visitor(request) is not None:
        return RedirectResponse(_next_path(request.query_params.get("next")), status_code=303)
    next_path = _next_path(request.query_params.get("next"))
    return _anonymous_form(request, "login.html", errors={}, values={"email": ""}, next=next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    s = _services(request)
    form = await _form(request)
    email = _field(form, "email")
    next_path = _next_path(form.get("next"))
    values = {"email": email}
    if not session.form_token_ok(request, form.get("csrf")):
        return _anonymous_form(
            request, "login.html", 400, errors=_STALE, values=values, next=next_path
        )
    address = request.client.host if request.client else None
    result = await s.store.logins.attempt(
        address=address, email=email, password=_field(form, "password"), at=s.clock.now_ms()
    )
    if result.user is None:
        wait_s = math.ceil(result.retry_after_ms / 1000)
        if result.throttled:
            message = f"Too many failed attempts: try again in {wait_s} s."
            status = 429
        else:
            message = "Wrong email or password."
            status = 400
        response = _anonymous_form(
            request, "login.html", status, errors={"form": message}, values=values, next=next_path
        )
        if wait_s:
            response.headers["Retry-After"] = str(wait_s)
        return response
    token, started = await s.store.sessions.start(result.user, at=s.clock.now_ms())
    response = RedirectResponse(next_path, status_code=303)
    session.set_session(request, response, token, started)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = await session.visitor(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    form = await _form(request)
    if not session.session_token_ok(who, form.get("csrf")):
        return form_expired(request, who)
    await _services(request).store.sessions.end(request.cookies.get(session.SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    session.clear_session(request, response)
    return response
