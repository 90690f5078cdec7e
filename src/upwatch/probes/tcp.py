"""The TCP connect probe: resolve, connect, close cleanly. Sends nothing."""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket

from upwatch.clock import elapsed_ms, monotonic_ns
from upwatch.domain import TARGET_NOT_ALLOWED, Outcome, Status, TargetPolicy

OPEN = TargetPolicy()  # no restriction

_ERRNO_MESSAGES = {
    errno.ECONNREFUSED: "Connection refused",
    errno.ECONNRESET: "Connection reset",
    errno.ECONNABORTED: "Connection aborted",
    errno.ENETUNREACH: "Network unreachable",
    errno.EHOSTUNREACH: "Host unreachable",
    errno.EHOSTDOWN: "Host is down",
    errno.EADDRNOTAVAIL: "Address not available",
    errno.EACCES: "Connection not permitted",
    errno.EPERM: "Connection not permitted",
}


class _Discard(asyncio.Protocol):
    """A bare protocol: the cheapest way to hold a connection we only open and close."""

    def data_received(self, data: bytes) -> None:
        pass


async def probe(host: str, port: int, timeout_ms: int, *, policy: TargetPolicy = OPEN) -> Outcome:
    """Open a TCP connection to ``host:port`` within ``timeout_ms`` (DNS included).

    ``policy`` is applied to the addresses the name resolved to, which are the very
    addresses connected to: a name cannot be re-pointed between the check and the
    connection (DNS rebinding)."""
    start_ns = monotonic_ns()
    stage = "DNS lookup"
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            addresses = await _resolve(host, port)
            permitted = [(f, a) for f, a in addresses if policy.permits(a)]
            if not permitted:
                return Outcome(Status.DOWN, error=TARGET_NOT_ALLOWED)
            stage = "Connection"
            await _connect_any(permitted, port)
    except TimeoutError:
        return Outcome(Status.TIMEOUT, error=f"{stage} timed out after {timeout_ms} ms")
    except socket.gaierror as exc:
        return Outcome(Status.DOWN, error=f"DNS lookup failed: {exc.strerror or exc}")
    except OSError as exc:
        if exc.errno == errno.ETIMEDOUT:
            return Outcome(Status.TIMEOUT, error=f"Connection timed out after {timeout_ms} ms")
        return Outcome(Status.DOWN, error=describe_os_error(exc))
    return Outcome(Status.UP, response_time_ms=elapsed_ms(start_ns))


def describe_os_error(exc: OSError) -> str:
    """A short message chosen by errno: asyncio and uvloop word ``str(exc)`` differently."""
    if exc.errno in _ERRNO_MESSAGES:
        return _ERRNO_MESSAGES[exc.errno]
    if exc.errno:
        return f"Connection failed: {os.strerror(exc.errno)}"
    return f"Connection failed: {exc}"


@functools.lru_cache(maxsize=65_536)
def _literal_family(host: str) -> int | None:
    """The address family of an IP literal, or None for a name (cached: the same hosts
    are probed over and over)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


async def _resolve(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) pairs to try, in the resolver's order. IP literals skip DNS."""
    family = _literal_family(host)
    if family is not None:
        return [(family, host)]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        pair = (int(family), str(sockaddr[0]))
        if pair not in seen:
            seen.append(pair)
    return seen


async def _connect_any(addresses: list[tuple[int, str]], port: int) -> None:
    """Try each address in turn (``localhost`` may refuse on ::1 yet listen on 127.0.0.1)."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, address in addresses:
        try:
            transport, _ = await loop.create_connection(_Discard, address, port, family=family)
        except OSError as exc:
            last = exc
            continue
        # No data was sent and none is read: close() sends FIN, not RST.
        transport.close()
        return
    raise last or OSError(errno.EADDRNOTAVAIL, "no address to connect to")
