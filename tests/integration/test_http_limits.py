"""Connection and request limits on a real uvicorn server over loopback: slow or endless
headers, idle and trickling clients, slow bodies, huge query strings, and load shedding.

The guards are tested with short timeouts; the defaults are the same code with larger
numbers (the e2e tests check that ``serve`` uses them)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from tests.support.databases import fresh_store, sqlite_url
from tests.support.seeding import make_key
from upwatch import waiting
from upwatch.api import create_app, parsing
from upwatch.api.protocol import guarded_protocol
from upwatch.config import Settings

HEADER_TIMEOUT_S = 0.5
MAX_HEADER_BYTES = 8 * 1024
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@contextlib.asynccontextmanager
async def running(app: ASGIApp, *, max_in_flight: int = 0, **shed: Any) -> AsyncIterator[int]:
    """``app`` served by uvicorn with the guarded protocol on a loopback port."""
    config = uvicorn.Config(
        app,
        http=guarded_protocol(
            header_timeout_s=HEADER_TIMEOUT_S,
            max_header_bytes=MAX_HEADER_BYTES,
            max_in_flight=max_in_flight,
            **shed,
        ),
        lifespan="off",
        log_config=None,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers after 3 header timeouts: a slow handler must not be cut."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(3 * HEADER_TIMEOUT_S)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``seconds``, and what it sent."""
    data = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            return False, data
        except ConnectionResetError:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    async with running(slow_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        closed, data = await closed_within(reader, HEADER_TIMEOUT_S + 2)
        writer.close()
    assert closed
    assert data == b""
    assert time.monotonic() - started >= HEADER_TIMEOUT_S * 0.9


async def test_headers_trickled_byte_by_byte_are_cut_at_the_deadline() -> None:
    async with running(slow_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        for i in range(len(request)):  # bounded: ~200 bytes at 20 ms
            if writer.is_closing() or reader.at_eof():
                break
            try:
                writer.write(request[i : i + 1])
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.02)
            if time.monotonic() - started > HEADER_TIMEOUT_S + 1:
                break
        closed, data = await closed_within(reader, 1)
        writer.close()
    assert closed, "the server kept a trickling client past the header deadline"
    assert data == b""
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2.5


async def test_a_slow_handler_and_keep_alive_requests_are_not_cut() -> None:
    async with running(slow_app) as port, httpx.AsyncClient() as client:
        base = f"http://127.0.0.1:{port}"
        slow = await client.get(f"{base}/slow")
        assert slow.status_code == 200
        # The same connection, idle for longer than the header deadline between requests,
        # is closed by the server; the client reconnects and the next request works.
        for _ in range(3):
            assert (await client.get(f"{base}/")).status_code == 200
            await asyncio.sleep(HEADER_TIMEOUT_S / 4)


async def test_pipelined_requests_are_all_answered() -> None:
    async with running(slow_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        one = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(one + one)
        await writer.drain()
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                break
            data += chunk
        writer.close()
    assert data.count(b"HTTP/1.1 200") == 2, data


async def test_headers_over_the_cap_get_431_and_a_closed_connection() -> None:
    async with running(slow_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(64):  # 64 x 1 KiB, never finished
            writer.write(b"X-Filler: " + b"f" * 1024 + b"\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        closed, data = await closed_within(reader, 5)
        writer.close()
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), data[:200]
    assert orjson.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_whole_request_with_headers_over_the_cap_gets_431(method: str) -> None:
    async with running(slow_app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            method.encode() + b" / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n"
            b"Content-Length: 2\r\n\r\n{}"
        )
        await writer.drain()
        closed, data = await closed_within(reader, 5)
        writer.close()
    assert closed
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]


async def test_headers_under_the_cap_with_a_body_in_the_same_packet_pass(
    tmp_path: Path,
) -> None:
    """The cap counts header bytes only: a large body sent with its headers is fine."""
    store = await fresh_store(sqlite_url(tmp_path))
    key = await make_key(store)
    app = create_app(Settings(database_url=sqlite_url(tmp_path)), store)
    body = orjson.dumps({"name": "n" * 100, "host": "db.example.com", "port": 5432})
    padded = body[:-1] + b" " * (40 * 1024) + b"}"  # 40 KiB > MAX_HEADER_BYTES
    try:
        async with running(app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /v1/tcp-monitors HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: " + str(len(padded)).encode() + b"\r\n\r\n" + padded
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.close()
    finally:
        await store.close()
    assert head.startswith(b"HTTP/1.1 201 "), head


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    store = await fresh_store(sqlite_url(tmp_path))
    key = await make_key(store)
    app = create_app(Settings(database_url=sqlite_url(tmp_path)), store)
    try:
        async with running(app) as port:
            yield port, key
    finally:
        await store.close()


async def test_a_trickled_body_gets_408(api: tuple[int, str], monkeypatch: Any) -> None:
    monkeypatch.setattr(parsing, "BODY_TIMEOUT_S", 0.5)
    port, key = api
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/tcp-monitors HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 "), head


@pytest.mark.parametrize(
    "query",
    [
        "limit=1&" + "x=" + "a" * 2000,
        "limit=1&limit=2",
        "&".join(["offset=0"] * 50),
    ],
)
async def test_huge_or_repeated_query_parameters_are_400(api: tuple[int, str], query: str) -> None:
    port, key = api
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        headers = {"Authorization": f"Bearer {key}"}
        created = await client.post(
            "/v1/tcp-monitors",
            headers=headers,
            json={"name": "q", "host": "db.example.com", "port": 5432},
        )
        monitor_id = created.json()["data"]["id"]
        r = await client.get(f"/v1/tcp-monitors/{monitor_id}/results?{query}", headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, dict[str, str], bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


async def test_past_the_in_flight_limit_requests_are_shed_with_503() -> None:
    release = asyncio.Event()
    blocked = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal blocked
        if scope["type"] != "http":
            return
        if scope["path"] == "/block":
            blocked += 1
            await release.wait()
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, max_in_flight=2) as port:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        try:
            held = [asyncio.create_task(exchange(r, w, "/block")) for r, w in conns[:2]]
            for _ in range(500):
                if blocked == 2:
                    break
                await asyncio.sleep(0.01)
            reader, writer = conns[2]
            started = time.monotonic()
            status, headers, body = await exchange(reader, writer, "/v1/tcp-monitors")
            shed_in = time.monotonic() - started
            # The same kept-alive connection goes on; health checks are never refused.
            health, _, _ = await exchange(reader, writer, "/healthz")
            release.set()
            answers = [a[0] for a in await asyncio.gather(*held)]
            after, _, _ = await exchange(reader, writer, "/v1/tcp-monitors")
        finally:
            release.set()
            for _, w in conns:
                w.close()
    assert status == 503
    assert headers["retry-after"] == "1"
    assert orjson.loads(body)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert shed_in < 1
    assert health == 200
    assert answers == [200, 200]
    assert after == 200


async def test_clients_within_the_limit_are_never_refused() -> None:
    """A request counts until its response is complete, not until its handler's task
    is cleaned up: clients that keep exactly the limit busy are all served."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, max_in_flight=4) as port:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]

        async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> list[int]:
            return [(await exchange(reader, writer, "/x"))[0] for _ in range(100)]

        try:
            statuses = await asyncio.gather(*(loop(r, w) for r, w in conns))
        finally:
            for _, w in conns:
                w.close()
    assert {s for per_conn in statuses for s in per_conn} == {200}


def busy_app(service_s: float) -> ASGIApp:
    """Each request holds the event loop for ``service_s``, as a CPU-bound handler does."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        time.sleep(service_s)
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def hammer(port: int, connections: int, requests: int, path: str = "/x") -> list[int]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> list[int]:
        return [(await exchange(reader, writer, path))[0] for _ in range(requests)]

    try:
        answers = await asyncio.gather(*(loop(r, w) for r, w in conns))
    finally:
        for _, w in conns:
            w.close()
    return [s for per_conn in answers for s in per_conn]


async def test_a_burst_of_parallel_requests_is_answered_in_full() -> None:
    # 200 requests at once, 2 ms each: the last waits 400 ms, four intervals.
    async with running(busy_app(0.002), shed_target_s=0.005, shed_interval_s=0.1) as port:
        statuses = await hammer(port, connections=200, requests=1)
    assert statuses == [200] * 200


async def test_a_standing_queue_is_shed_and_service_resumes_after_it() -> None:
    shed = {"shed_target_s": 0.005, "shed_interval_s": 0.02, "shed_burst": 8}
    async with running(busy_app(0.002), **shed) as port:
        # 64 clients that never pause, for 20 rounds: a queue that does not drain.
        statuses = await hammer(port, connections=64, requests=20)
        health = await hammer(port, connections=64, requests=1, path="/healthz")
        after = await hammer(port, connections=1, requests=5)
    assert statuses.count(503) > 0
    assert statuses.count(200) > 0
    assert set(statuses) == {200, 503}
    assert health == [200] * 64
    assert after == [200] * 5


def pooled_app(connections: int, service_s: float) -> ASGIApp:
    """Each request queues for one of ``connections`` (as for PostgreSQL's pool), says so
    as the store does, and holds it for ``service_s`` without holding the loop."""
    pool = asyncio.Semaphore(connections)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        async with pool:
            waiting.ready()
            await asyncio.sleep(service_s)
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def test_a_queue_for_the_database_pool_is_a_queue_too() -> None:
    # Handlers start at once and wait for one of 2 connections: the loop is idle, so
    # only the wait for the pool shows the standing queue.
    shed = {"shed_target_s": 0.005, "shed_interval_s": 0.02, "shed_burst": 8}
    async with running(pooled_app(2, 0.002), **shed) as port:
        statuses = await hammer(port, connections=64, requests=10)
        after = await hammer(port, connections=1, requests=5)
    assert statuses.count(503) > 0
    assert statuses.count(200) > 0
    assert after == [200] * 5


async def test_a_burst_that_waits_for_the_pool_is_answered_in_full() -> None:
    async with running(pooled_app(2, 0.002), shed_target_s=0.005, shed_interval_s=0.1) as port:
        statuses = await hammer(port, connections=200, requests=1)
    assert statuses == [200] * 200
