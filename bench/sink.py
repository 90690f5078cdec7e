"""Loopback listeners that accept every connection and close it at once: the targets of
the checker benchmarks. Prints the ports as one JSON line, then serves until killed."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

import uvloop


class Close(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def main(count: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        servers.append(await loop.create_server(Close, sock=sock, backlog=4096))
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=16)
    args = parser.parse_args()
    try:
        uvloop.run(main(args.ports))
    except KeyboardInterrupt:
        sys.exit(0)
