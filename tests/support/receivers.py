"""A real HTTP receiver on loopback for notifications: records every request, and
answers each with the next of the responses it was told to give (then 200)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from tests.support.servers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    # (status, headers) for the next requests, in order; 200 once they run out.
    responses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    delay_s: float = 0.0  # how long each answer takes

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        async with asyncio.timeout(timeout_s):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        self.requests.append(
            Received(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        self.arrived.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, headers = self.responses.pop(0) if self.responses else (200, {})
        await Response(status_code=status, headers=headers)(scope, receive, send)


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port())
    config = uvicorn.Config(
        receiver, host="127.0.0.1", port=receiver.port, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(5):
            while not server.started:
                await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


def verified(r: Received, secret: str) -> dict[str, Any]:
    """Standard Webhooks, by hand: HMAC-SHA256 over "id.timestamp.body", base64."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{r.headers['webhook-id']}.{r.headers['webhook-timestamp']}.".encode() + r.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in r.headers["webhook-signature"].split(" ")
    return r.json()  # type: ignore[no-any-return]
