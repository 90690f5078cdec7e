"""Real TCP listeners on loopback for probe, worker and end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator


@contextlib.contextmanager
def listener(backlog: int = 128, port: int = 0, host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A listening socket on ``host`` (127.0.0.1 or ::1; on ``port``, or any free one);
    the kernel completes handshakes without accept()."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
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
def blackhole(port: int = 0, host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose connects hang: a listen(0) socket whose accept queue is filled by
    never-accepted connections drops further SYNs on Linux."""
    fillers: list[socket.socket] = []
    with listener(backlog=0, port=port, host=host) as sock:
        port = int(sock.getsockname()[1])
        for _ in range(8):
            filler = socket.socket(sock.family, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex((host, port))
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
