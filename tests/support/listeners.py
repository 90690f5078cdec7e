"""Real TCP listeners on loopback for probe, worker and end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator


@contextlib.contextmanager
def listener(backlog: int = 128, port: int = 0) -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 (on ``port``, or any free one); the kernel
    completes handshakes without accept()."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    try:
        yield sock
    finally:
        sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port whose connects hang: a listen(0) socket whose accept queue is filled by
    never-accepted connections drops further SYNs on Linux."""
    fillers: list[socket.socket] = []
    with listener(backlog=0) as sock:
        port = int(sock.getsockname()[1])
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


@contextlib.asynccontextmanager
async def accepting() -> AsyncIterator[int]:
    """A loopback port that accepts (and at once closes) as many connections as come:
    a target that is always up, for many monitors at once."""
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, backlog=2048)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
