"""api/httpmetrics.py: requests are labelled by route template, never by raw path, so
the series stay bounded whatever clients send; every answer is counted and timed."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from upwatch.api.httpmetrics import RequestMetrics
from upwatch.metrics import HttpMetrics


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, CollectorRegistry]]:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    registry = CollectorRegistry()
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(registry))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, registry


def requests(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in registry.collect()
        if family.name == "upwatch_http_requests"
        for s in family.samples
        if s.name == "upwatch_http_requests_total"
    }


async def test_requests_are_labelled_by_their_route_template(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    for thing in ("a", "b", "c"):
        assert (await c.get(f"/v1/things/{thing}")).status_code == 200
    assert requests(registry) == {("/v1/things/{thing_id}", "GET", "200"): 3}
    count = registry.get_sample_value(
        "upwatch_http_request_duration_seconds_count",
        {"route": "/v1/things/{thing_id}", "method": "GET"},
    )
    assert count == 3


async def test_unknown_paths_share_one_label(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    for path in ("/nothing", "/v1/things", "/v1/things/a/b", "/%2e%2e/etc/passwd"):
        assert (await c.get(path)).status_code == 404
    assert requests(registry) == {("unmatched", "GET", "404"): 4}


async def test_wrong_methods_keep_the_route_and_odd_ones_are_other(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    assert (await c.delete("/v1/things/a")).status_code == 405
    assert (await c.request("BREW", "/v1/things/a")).status_code == 405
    assert requests(registry) == {
        ("/v1/things/{thing_id}", "DELETE", "405"): 1,
        ("/v1/things/{thing_id}", "other", "405"): 1,
    }


async def test_an_unexpected_failure_counts_as_500(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    assert (await c.get("/boom")).status_code == 500
    assert requests(registry) == {("/boom", "GET", "500"): 1}
