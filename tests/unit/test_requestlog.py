"""api/requestlog.py: which X-Request-Id a request gets, that every response carries it,
and the access line written for it."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from upwatch.api.requestlog import RequestLog, logged_path, new_request_id, request_id
from upwatch.logs import REQUEST_ID

GENERATED = re.compile(r"^[A-Za-z0-9_-]{12}$")


@pytest.mark.parametrize(
    "sane", ["abc", "0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6b", "trace.42_x-Y", "a" * 64]
)
def test_a_sane_incoming_id_is_kept(sane: str) -> None:
    assert request_id([(b"host", b"x"), (b"x-request-id", sane.encode())]) == sane


@pytest.mark.parametrize(
    "insane",
    [b"", b"a" * 65, b"has space", b"semi;colon", b"new\nline", b'quote"', "é".encode(), b"../"],
)
def test_an_insane_incoming_id_is_replaced(insane: bytes) -> None:
    given = request_id([(b"x-request-id", insane)])
    assert GENERATED.match(given), given
    assert given.encode() != insane


def test_without_an_id_a_short_random_one_is_made() -> None:
    made = {request_id([]) for _ in range(1000)}
    assert len(made) == 1000
    assert all(GENERATED.match(m) for m in made)
    assert GENERATED.match(new_request_id())


def test_only_the_first_incoming_id_counts() -> None:
    headers = [(b"x-request-id", b"first"), (b"x-request-id", b"second")]
    assert request_id(headers) == "first"


def test_the_logged_path_is_the_raw_path_without_the_query() -> None:
    scope = {"path": "/a b", "raw_path": b"/a%20b?key=uptime_x"}
    assert logged_path(scope) == "/a%20b"
    assert logged_path({"path": "/plain"}) == "/plain"
    assert len(logged_path({"path": "/" + "x" * 10_000})) == 200


seen_ids: list[str | None] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """404 for /missing, an exception for /boom, else 200."""
    seen_ids.append(REQUEST_ID.get())
    logging.getLogger("upwatch.test").info("inside")
    if scope["path"] == "/boom":
        raise RuntimeError("secret internals")
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=RequestLog(app))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_every_response_carries_the_id(client: httpx.AsyncClient) -> None:
    async with client:
        ok = await client.get("/fine", headers={"X-Request-Id": "client-1"})
        missing = await client.get("/missing", headers={"X-Request-Id": "client-2"})
        replaced = await client.get("/fine", headers={"X-Request-Id": "bad id"})
    assert (ok.status_code, ok.headers["x-request-id"]) == (200, "client-1")
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "client-2")
    assert GENERATED.match(replaced.headers["x-request-id"])
    assert seen_ids[-3:] == ["client-1", "client-2", replaced.headers["x-request-id"]]
    assert REQUEST_ID.get() is None  # reset after each request


async def test_an_unhandled_error_is_a_500_with_the_id_and_a_logged_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client:
        r = await client.get("/boom?token=abc", headers={"X-Request-Id": "client-3"})
    assert (r.status_code, r.headers["x-request-id"]) == (500, "client-3")
    assert r.json() == {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}}
    assert "secret internals" not in r.text
    [error] = [x for x in caplog.records if x.levelno == logging.ERROR]
    assert error.getMessage() == "unhandled error in GET /boom"
    assert error.exc_info is not None
    assert REQUEST_ID.get() is None


async def test_one_access_line_a_request_without_the_query(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client:
        await client.get("/missing?key=uptime_secret", headers={"X-Request-Id": "client-4"})
    [line] = [x for x in caplog.records if x.name == "upwatch.access"]
    assert line.levelno == logging.INFO
    fields = {k: line.__dict__[k] for k in ("request_id", "method", "path", "status")}
    assert fields == {"request_id": "client-4", "method": "GET", "path": "/missing", "status": 404}
    assert isinstance(line.__dict__["duration_ms"], float)
    assert re.fullmatch(r"GET /missing 404 \d+\.\d ms", line.getMessage())
    assert "uptime_secret" not in line.getMessage()


async def test_no_access_line_below_info_but_still_an_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with client:
        r = await client.get("/fine")
    assert GENERATED.match(r.headers["x-request-id"])
    assert not [x for x in caplog.records if x.name == "upwatch.access"]
