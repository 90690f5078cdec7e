"""Counts and times every API request (upwatch.metrics.HttpMetrics), as pure ASGI
middleware around the whole app, so 401s, 404s, 413s and 500s are counted too.

Requests are labelled by the route's template (``/v1/tcp-monitors/{monitor_id}``),
never by the raw path: the label's values are the app's routes plus ``unmatched`` (no
route: an unknown path, or a request answered before routing, such as a body over the
limit), and methods outside HTTP's usual ones are ``other``, so what a client sends
cannot grow the series without bound. Cheap: two clock reads, one dictionary lookup and
two updates a request (README, "Prometheus metrics", has the measurement)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upwatch.metrics import HttpMetrics

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope: Scope) -> str:
    """The template of the route that answered, or ``unmatched``."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else UNMATCHED


def method_label(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in METHODS else OTHER_METHOD


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self._metrics = metrics
        # Each label set's children, looked up once: labels() takes a lock and builds
        # a key every time.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts becomes a 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed_s: float) -> None:
        key = (route_label(scope), method_label(scope), status)
        children = self._children.get(key)
        if children is None:
            route, method, _ = key
            counter = self._metrics.requests.labels(route=route, method=method, status=str(status))
            histogram = self._metrics.duration.labels(route=route, method=method)
            children = self._children[key] = (counter, histogram)
        counter, histogram = children
        counter.inc()
        histogram.observe(elapsed_s)
