"""What route handlers depend on, read from ``request.app.state`` (set once by
``create_app``), as FastAPI dependencies: the services, and the caller's principal
checked for a scope. Routers import these; none captures its own."""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from upwatch.api.auth import authorize
from upwatch.api.ratelimit import RateLimiter
from upwatch.clock import Clock
from upwatch.delivery.transports import Smtp
from upwatch.domain import SCOPE_READ, SCOPE_WRITE, Principal, TargetPolicy
from upwatch.store import Store


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    clock: Clock
    notify: Callable[[], None]  # a monitor was created or changed: the checker looks now
    policy: TargetPolicy  # which target addresses the operator allows
    limiter: RateLimiter | None  # per key; None: no rate limit
    registry: CollectorRegistry  # the process's metrics (upwatch.metrics)
    public_url: str = ""  # UPWATCH_PUBLIC_URL: where notifications link to
    smtp: Smtp | None = None  # UPWATCH_SMTP_URL: e-mail channels need it
    result_retention_days: int = 30  # raw results are kept this long (statistics)
    rollup_retention_days: int = 400  # and hourly and daily rollups this long
    # What keeps copies of public status pages (the web's cache) and drops them when a
    # page changes, through the API or the web.
    on_status_pages_change: list[Callable[[], None]] = field(default_factory=list)

    def status_pages_changed(self) -> None:
        for forget in self.on_status_pages_change:
            forget()


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


# Documented for /openapi.json; the raw header is read by `authorize`.
bearer = HTTPBearer(auto_error=False, description="An API key: `Bearer uptime_...`")


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, if its key is valid, within its rate limit
    and has ``scope`` (else 401, 429 or 403)."""

    async def principal(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        s: Services = request.app.state.services
        return await authorize(
            s.store,
            s.clock,
            request.headers.get("authorization"),
            scope,
            s.limiter,
            request.scope.setdefault("state", {}),
        )

    return principal


Deps = Annotated[Services, Depends(services)]
Reader = Annotated[Principal, Depends(require(SCOPE_READ))]
Writer = Annotated[Principal, Depends(require(SCOPE_WRITE))]
