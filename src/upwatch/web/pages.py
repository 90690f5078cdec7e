"""A page as the browser gets it: rendered, with the security headers, never cached by
a shared cache (it shows a team's own things)."""

from __future__ import annotations

import gzip
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from upwatch.web.headers import SECURITY_HEADERS
from upwatch.web.render import render

PRIVATE = "private, no-store"
GZIP_FROM_BYTES = 1024  # smaller pages go as they are


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("visitor", None)
    context.setdefault("path", request.url.path)
    body = render(template, **context).encode()
    headers = {**SECURITY_HEADERS, "Cache-Control": PRIVATE, "Vary": "Accept-Encoding"}
    # A thousand monitors' rows are ~360 KB of HTML and ~30 KB gzipped: compressed here,
    # for pages only (the API's JSON is left as it is).
    if len(body) >= GZIP_FROM_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body, compresslevel=6, mtime=0)
    return HTMLResponse(body, status_code=status_code, headers=headers)


def refused(
    request: Request, visitor: Any, *, status_code: int, title: str, message: str
) -> HTMLResponse:
    return page(
        request,
        "error.html",
        status_code=status_code,
        visitor=visitor,
        title=title,
        message=message,
    )


def viewers_only_look(request: Request, visitor: Any) -> HTMLResponse:
    """A viewer sent a form that changes something: nothing was changed."""
    return refused(
        request,
        visitor,
        status_code=403,
        title="Viewers only look",
        message="Your role is viewer: nothing was changed. An admin of your team can do this.",
    )


def form_expired(request: Request, visitor: Any) -> HTMLResponse:
    """A form came without its CSRF token (or an old one): nothing was changed."""
    return refused(
        request,
        visitor,
        status_code=400,
        title="This form has expired",
        message="Nothing was changed. Go back, reload the page and send it again.",
    )


def not_found(request: Request, visitor: Any, what: str) -> HTMLResponse:
    """Another team's things are not there at all, for this visitor (never a 403)."""
    return refused(
        request,
        visitor,
        status_code=404,
        title="Not found",
        message=f"There is no such {what} in your team.",
    )
