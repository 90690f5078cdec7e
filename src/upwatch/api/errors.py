"""Every error leaves as ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from upwatch.api.responses import JSON
from upwatch.errors import (
    DatabaseUnavailable,
    FamilyMismatch,
    LimitExceeded,
    MonitorsUnknown,
    NotFound,
    SlugTaken,
    UnknownChannels,
)

log = logging.getLogger(__name__)

_CODES_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def validation_error(message: str, details: list[dict[str, str]] | None = None) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, details)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSON({"error": body}, status_code=status, headers=dict(headers or {}))


def install(app: FastAPI, allowed_methods: Callable[[str], list[str]]) -> None:
    """Error handlers for ``app``. ``allowed_methods(path)`` lists what a path supports,
    for the ``Allow`` header of a 405 (Starlette's names only the first matching route's)."""

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def on_not_found(_: Request, exc: Exception) -> Response:
        return error_response(404, "NOT_FOUND", str(exc))

    async def on_unknown_channels(_: Request, exc: Exception) -> Response:
        detail = {"field": "notificationChannelIds", "message": str(exc)}
        return error_response(400, "VALIDATION_ERROR", "Invalid request body", [detail])

    async def on_unknown_monitors(_: Request, exc: Exception) -> Response:
        detail = {"field": "monitorIds", "message": str(exc)}
        return error_response(400, "VALIDATION_ERROR", "Invalid request body", [detail])

    async def on_slug_taken(_: Request, exc: Exception) -> Response:
        detail = {"field": "slug", "message": "is already taken"}
        return error_response(400, "VALIDATION_ERROR", "Invalid request body", [detail])

    async def on_family_mismatch(_: Request, exc: Exception) -> Response:
        detail = {"field": "ipFamily", "message": str(exc)}
        return error_response(400, "VALIDATION_ERROR", "Invalid request body", [detail])

    async def on_limit(_: Request, exc: Exception) -> Response:
        return error_response(400, "LIMIT_EXCEEDED", str(exc))

    async def on_database(_: Request, exc: Exception) -> Response:
        log.warning("%s", exc)
        return error_response(503, "SERVICE_UNAVAILABLE", "The database is unavailable; retry")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES_BY_STATUS.get(exc.status_code, "ERROR")
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.url.path))
        return error_response(exc.status_code, code, message, headers=headers)

    async def on_request_validation(_: Request, exc: Exception) -> Response:
        return error_response(400, "VALIDATION_ERROR", "Invalid request")

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        # The traceback goes to the log, never to the client. api/requestlog.py answers
        # and logs what escapes the app first (with the request's id); this is for
        # anything that escapes it (Starlette then re-raises it to the server).
        return error_response(500, "INTERNAL_ERROR", "Internal server error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(LimitExceeded, on_limit)
    app.add_exception_handler(UnknownChannels, on_unknown_channels)
    app.add_exception_handler(MonitorsUnknown, on_unknown_monitors)
    app.add_exception_handler(FamilyMismatch, on_family_mismatch)
    app.add_exception_handler(SlugTaken, on_slug_taken)
    app.add_exception_handler(DatabaseUnavailable, on_database)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(Exception, on_unexpected)
