"""The ASGI app factory. Everything it needs is passed in: no globals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upwatch import __version__
from upwatch.api import errors, openapi
from upwatch.api.auth import RATE_LIMIT_STATE
from upwatch.api.deps import Services
from upwatch.api.httpmetrics import RequestMetrics
from upwatch.api.models import (
    CreateMaintenanceWindowRequest,
    CreateNotificationChannelRequest,
    CreateTcpMonitorRequest,
    UpdateMaintenanceWindowRequest,
    UpdateNotificationChannelRequest,
    UpdateTcpMonitorRequest,
)
from upwatch.api.parsing import MAX_BODY_BYTES
from upwatch.api.ratelimit import Decision, RateLimiter
from upwatch.api.requestlog import RequestLog
from upwatch.api.responses import JSON
from upwatch.api.routes import (
    channels,
    health,
    incidents,
    metrics,
    monitors,
    results,
    stats,
    status_pages,
    windows,
)
from upwatch.clock import Clock, SystemClock
from upwatch.config import Settings
from upwatch.delivery.transports import Smtp
from upwatch.metrics import HttpMetrics, new_registry
from upwatch.store import Store

DESCRIPTION = """Create and manage TCP monitors. Check port connectivity and get connection
history. Every enabled monitor gets a TCP connection attempt every `intervalSeconds`,
bounded by `timeoutMs`; every attempt is stored as a check result.

Errors are `{"error": {"code", "message", "details"?}}`. Checks run in the order
401, 403, 404, 400."""


def create_app(
    settings: Settings,
    store: Store,
    *,
    clock: Clock | None = None,
    on_change: Callable[[], None] | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """``on_change`` is called after a monitor is created or changed (``serve`` wires it
    to the checker in the same process, so new monitors need not wait for a poll).
    ``registry`` is the process's metrics registry (a new one if not given)."""
    app = FastAPI(
        title="upwatch TCP Monitors API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        default_response_class=JSON,
    )
    per_minute = settings.rate_limit_per_minute
    app.state.services = Services(
        store=store,
        clock=clock or SystemClock(),
        notify=on_change or (lambda: None),
        policy=settings.target_policy,
        limiter=RateLimiter(per_minute) if per_minute else None,
        registry=registry or new_registry(),
        public_url=settings.public_url,
        smtp=Smtp.from_settings(settings.smtp_url, settings.smtp_from),
        result_retention_days=settings.result_retention_days,
        rollup_retention_days=settings.rollup_retention_days,
    )
    app.state.settings = settings
    routers = [
        monitors.router,
        results.router,
        incidents.router,
        channels.router,
        windows.router,
        health.router,
        metrics.router,
        stats.router,
        status_pages.router,
    ]
    for router in routers:
        app.include_router(router)
    errors.install(app, methods_by_path(routers))
    app.openapi = _document(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(app.state.services.registry))
    app.add_middleware(RequestLog)  # outermost: every response gets its X-Request-Id
    return app


def _document(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """/openapi.json, built once: FastAPI's, finished by api/openapi.py."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = openapi.finish(
                doc,
                [
                    CreateTcpMonitorRequest,
                    UpdateTcpMonitorRequest,
                    CreateNotificationChannelRequest,
                    UpdateNotificationChannelRequest,
                    CreateMaintenanceWindowRequest,
                    UpdateMaintenanceWindowRequest,
                ],
            )
        return app.openapi_schema

    return build


def methods_by_path(routers: list[APIRouter]) -> Callable[[str], list[str]]:
    """A function from a request path to the methods its route template supports."""
    table: dict[str, set[str]] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                table.setdefault(route.path, set()).update(route.methods or ())
    patterns = [(compile_path(path)[0], sorted(methods)) for path, methods in table.items()]

    def allowed(path: str) -> list[str]:
        return next((methods for regex, methods in patterns if regex.match(path)), [])

    return allowed


class BodyLimit:
    """413 before anything reads a body whose declared length is over the limit.
    (Bodies without a length are capped while they are read, in parsing.read_body.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                    response = errors.error_response(
                        413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {MAX_BODY_BYTES} bytes"
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class RateLimitHeaders:
    """Adds the RateLimit-* (and, on 429, Retry-After) headers to every response to a
    request whose key was counted, whatever produced the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get(RATE_LIMIT_STATE)
                if isinstance(decision, Decision):
                    extra = [
                        (k.lower().encode(), v.encode()) for k, v in decision.headers().items()
                    ]
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
