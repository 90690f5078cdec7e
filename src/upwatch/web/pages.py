"""A page as the browser gets it: rendered, with the security headers, never cached by
a shared cache (it shows a team's own things)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from upwatch.web.headers import SECURITY_HEADERS
from upwatch.web.render import render

PRIVATE = "private, no-store"


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("visitor", None)
    context.setdefault("path", request.url.path)
    body = render(template, **context)
    headers = {**SECURITY_HEADERS, "Cache-Control": PRIVATE}
    return HTMLResponse(body, status_code=status_code, headers=headers)
