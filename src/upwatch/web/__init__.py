"""The web: server-rendered HTML under ``/`` beside the API (SPEC §10).

- assets.py     static files under content-hashed names, cached for a year
- headers.py    the security headers of every response (CSP without inline scripts)
- render.py     Jinja2, autoescaped
- pages.py      a page as the browser gets it
- cache.py      a short-lived cache that renders each page once per expiry
- session.py    the session cookie and the CSRF tokens of forms
- account.py    /setup (first run), /login, /logout
- dashboard.py  / (the team's monitors)
- monitors.py   /monitors/<id> and the create, edit and delete forms
- incidents.py  /incidents: the team's incidents
- channels.py   /channels: notification channels, "send test", deliveries
- windows.py    /windows: maintenance windows
- status_admin.py /status-pages: the team's status pages, made and changed
- keys.py       /keys: the team's API keys (a new one shown once), revoking
- status.py     /status/<slug> (HTML, no JavaScript) and /status/<slug>.json

The API keeps its JSON errors under /v1/ and for its own paths; everywhere else a
missing page is an HTML page.
"""

from __future__ import annotations

import inspect
from functools import partial

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from upwatch.web import (
    account,
    assets,
    channels,
    dashboard,
    incidents,
    keys,
    monitors,
    status,
    status_admin,
    windows,
)
from upwatch.web.pages import page

API_PATHS = ("/v1/", "/healthz", "/metrics", "/openapi.json")


def install(app: FastAPI) -> None:
    """Add the web's routes to the API's app (the API's own routes are untouched)."""
    for module in (
        assets,
        status,
        account,
        dashboard,
        monitors,
        incidents,
        channels,
        windows,
        status_admin,
        keys,
    ):
        app.include_router(module.router)
    status.install_cache(app)
    app.state.services.on_status_pages_change.append(partial(status.install_cache, app))
    dashboard.install_cache(app)
    api_handler = app.exception_handlers[StarletteHTTPException]

    async def on_http(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code in (404, 405)
            and not path.startswith(API_PATHS)
        ):
            return page(
                request,
                "error.html",
                status_code=404,
                title="Not found",
                message="There is no page here.",
            )
        answer = api_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, on_http)
