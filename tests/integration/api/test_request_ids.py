"""The API app as a whole gives every response an X-Request-Id (errors included), and
logs one access line a request by route template, never with the query string."""

import logging
import re

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import VALID, Api
from upwatch.api import create_app
from upwatch.api.parsing import MAX_BODY_BYTES
from upwatch.config import Settings
from upwatch.store import Store

GENERATED = re.compile(r"^[A-Za-z0-9_-]{12}$")


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("GET", "/v1/tcp-monitors", None, 401),
        ("GET", "/v1/tcp-monitors", "ro", 200),
        ("POST", "/v1/tcp-monitors", "ro", 403),
        ("GET", "/v1/tcp-monitors/tcpm_nothing", "rw", 404),
        ("GET", "/v2/nothing", "rw", 404),
        ("PATCH", "/v1/tcp-monitors", "rw", 405),
        ("GET", "/v1/incidents?status=bogus", "rw", 400),
    ],
)
async def test_every_answer_carries_the_id_it_was_given(
    api: Api, method: str, path: str, key: str | None, status: int
) -> None:
    r = await api.call(method, path, key, headers={"X-Request-Id": "lb-7f3a.1"})
    assert r.status_code == status
    assert r.headers["x-request-id"] == "lb-7f3a.1"
    mine = await api.call(method, path, key, headers={"X-Request-Id": "no good!"})
    assert GENERATED.match(mine.headers["x-request-id"])


async def test_a_body_over_the_limit_gets_an_id_too(api: Api) -> None:
    headers = {"Content-Length": str(MAX_BODY_BYTES + 1), "Content-Type": "application/json"}
    r = await api.call("POST", "/v1/tcp-monitors", headers=headers, content=b"{}")
    assert r.status_code == 413
    assert GENERATED.match(r.headers["x-request-id"])


async def test_an_unexpected_failure_is_a_500_with_an_id_and_a_traceback_in_the_log(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = create_app(Settings(), store)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    caplog.set_level(logging.INFO)
    transport = httpx.ASGITransport(app=app)  # raises what escapes the app: nothing does
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/boom", headers={"X-Request-Id": "boom-1"})
    assert (r.status_code, r.headers["x-request-id"]) == (500, "boom-1")
    assert r.json() == {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}}
    [error] = [x for x in caplog.records if x.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert "RuntimeError: secret internals" in caplog.text
    [access] = [x for x in caplog.records if x.name == "upwatch.access"]
    assert (access.__dict__["path"], access.__dict__["status"]) == ("/boom", 500)


async def test_access_lines_name_the_route_not_the_ids_or_query(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = await api.create(VALID)
    caplog.set_level(logging.INFO, logger="upwatch.access")
    await api.call("GET", f"/v1/tcp-monitors/{monitor['id']}/results?limit=5&offset=0")
    await api.call("GET", "/v2/nothing?x=1")
    lines = [x for x in caplog.records if x.name == "upwatch.access"]
    assert [(x.__dict__["method"], x.__dict__["path"], x.__dict__["status"]) for x in lines] == [
        ("GET", "/v1/tcp-monitors/{monitor_id}/results", 200),
        ("GET", "/v2/nothing", 404),
    ]
    assert all(GENERATED.match(x.__dict__["request_id"]) for x in lines)
    assert "limit" not in caplog.text
    assert monitor["id"] not in caplog.text
