"""A small keep-alive HTTP/1.1 load generator on uvloop.

httpx costs several hundred microseconds of client CPU per request, on the same two
cores as the server under test; this sends prebuilt requests over raw connections and
reads Content-Length bodies, so that the figures are the server's, not the client's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


API = "/v1/tcp-monitors"  # the TCP Monitors collection


def monitor_body(name: str, port: int, interval_s: int) -> bytes:
    """A create-monitor body for a loopback target."""
    return json.dumps(
        {"name": name, "host": "127.0.0.1", "port": port, "intervalSeconds": interval_s}
    ).encode()


def request(method: str, path: str, key: str, body: bytes = b"") -> bytes:
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {key}",
        f"Content-Length: {len(body)}",
    ]
    if body:
        head.append("Content-Type: application/json")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, bytes]:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def drive(
    port: int,
    make: Callable[[int], bytes],
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int = 10_000_000,
) -> Outcome:
    """Send ``make(i)`` requests from ``concurrency`` connections for ``duration_s``."""
    outcome = Outcome()
    counter = iter(range(max_requests))
    deadline = time.monotonic() + duration_s

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        try:
            while time.monotonic() < deadline:
                i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                status, _ = await exchange(reader, writer, make(i))
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    outcome.elapsed_s = time.monotonic() - start
    return outcome


async def one(port: int, payload: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    try:
        return await exchange(reader, writer, payload)
    finally:
        writer.close()
