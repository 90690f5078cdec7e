"""Each HTTP request's id and access line, as pure ASGI middleware around the whole app.

The id is the client's ``X-Request-Id`` when that is a sane token (at most 64 of
``A-Z a-z 0-9 . _ -``), so that a proxy's or a client's id carries through; otherwise a
new one (12 random characters). It goes back as ``X-Request-Id`` on every response, and
into a context variable (``upwatch.logs.REQUEST_ID``) while the request is handled, so
that every line logged meanwhile carries it. The 503s and 431s that ``api/protocol.py``
writes before any app runs carry one too (``request_id``).

After the response, one line on ``upwatch.access`` at INFO: method, path, status,
duration and request id. The path is the route's template
(``/v1/tcp-monitors/{monitor_id}``), or the raw path when no route matched, and never
the query string. It replaces uvicorn's access log (off in ``service.py``).

An exception that escapes the app is logged here, with its traceback and the request's
id, and answered with the API's 500: the middleware sits outside the ones Starlette
lets us add, but inside Starlette's outermost one, which would answer without the id.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upwatch.api import errors
from upwatch.logs import REQUEST_ID

access = logging.getLogger("upwatch.access")
log = logging.getLogger(__name__)

HEADER = b"x-request-id"
MAX_RAW_PATH_CHARS = 200  # of a path no route matched, in the access line
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    return secrets.token_urlsafe(9)  # 12 characters of A-Z a-z 0-9 - _


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's id: the first ``X-Request-Id`` if it is sane, else a new one.
    ``headers`` as in an ASGI scope (lower-case names)."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if _SANE.fullmatch(value) else new_request_id()
    return new_request_id()


def logged_path(scope: Scope) -> str:
    """The template of the route that answered, else the raw path; no query string."""
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    raw = scope.get("raw_path")
    path = raw.partition(b"?")[0].decode("latin-1") if isinstance(raw, bytes) else scope["path"]
    return str(path)[:MAX_RAW_PATH_CHARS]


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope["headers"])
        header = (HEADER, rid.encode())
        status = 0  # until the response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                if status:  # the response has begun: the server ends the connection
                    raise
                log.exception("unhandled error in %s %s", scope["method"], logged_path(scope))
                answer = errors.error_response(500, "INTERNAL_ERROR", "Internal server error")
                await answer(scope, receive, send_with_id)
        finally:
            # Not for a request cancelled before its response (the server stopping).
            if status and access.isEnabledFor(logging.INFO):
                self._access_line(scope, rid, status, started)
            REQUEST_ID.reset(token)

    @staticmethod
    def _access_line(scope: Scope, rid: str, status: int, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        method, path = scope["method"], logged_path(scope)
        fields = {
            "request_id": rid,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(ms, 2),
        }
        access.info("%s %s %d %.1f ms", method, path, status, ms, extra=fields)
