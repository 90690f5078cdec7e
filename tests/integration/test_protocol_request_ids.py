"""The answers api/protocol.py writes before any app runs (503 when shedding, 431 for
headers over the cap) carry an X-Request-Id too: the client's if sane, else a new one."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import Receive, Scope, Send

from upwatch.api.protocol import guarded_protocol

GENERATED = re.compile(rb"^[A-Za-z0-9_-]{12}$")


@contextlib.asynccontextmanager
async def serving(release: asyncio.Event, *, max_in_flight: int) -> AsyncIterator[int]:
    """uvicorn with the guarded protocol on a loopback port; /block waits for ``release``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/block":
            await release.wait()
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(
        app,
        http=guarded_protocol(max_header_bytes=8 * 1024, max_in_flight=max_in_flight),
        lifespan="off",
        log_config=None,
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        release.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def head_of(port: int, request: bytes) -> dict[bytes, bytes]:
    """The status line (under b"") and headers of the answer to ``request``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    status, *lines = head.strip().split(b"\r\n")
    return {b"": status} | {k.lower(): v for k, _, v in (x.partition(b": ") for x in lines)}


async def test_a_shed_request_gets_its_id_back() -> None:
    release = asyncio.Event()
    async with serving(release, max_in_flight=1) as port:
        blocked = asyncio.create_task(head_of(port, b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n"))
        await asyncio.sleep(0.2)
        given = await head_of(port, b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: lb-1\r\n\r\n")
        made = await head_of(port, b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: a b\r\n\r\n")
        release.set()
        assert (await blocked)[b""].startswith(b"HTTP/1.1 200")
    assert given[b""].startswith(b"HTTP/1.1 503")
    assert given[b"x-request-id"] == b"lb-1"
    assert made[b""].startswith(b"HTTP/1.1 503")
    assert GENERATED.match(made[b"x-request-id"])


async def test_headers_over_the_cap_get_an_id() -> None:
    async with serving(asyncio.Event(), max_in_flight=0) as port:
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-1\r\nX-Big: " + b"b" * 20_000
        head = await head_of(port, big + b"\r\n\r\n")
    assert head[b""].startswith(b"HTTP/1.1 431")
    assert head[b"x-request-id"] == b"big-1"
