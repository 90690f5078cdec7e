"""The TCP connect probe: resolve, connect, close cleanly. Sends nothing."""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import itertools
import os
import socket
from collections.abc import Awaitable, Callable

from upwatch.clock import elapsed_ms, monotonic_ns
from upwatch.domain import TARGET_NOT_ALLOWED, IpFamily, Outcome, Status, TargetPolicy

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


async def probe(
    host: str,
    port: int,
    timeout_ms: int,
    *,
    family: IpFamily = IpFamily.AUTO,
    policy: TargetPolicy = OPEN,
    resolver: Resolver | None = None,
) -> Outcome:
    """Open a TCP connection to ``host:port`` within ``timeout_ms`` (DNS included), and
    time its phases (SPEC §9).

    ``family`` narrows the lookup to one address family; ``auto`` races both as Happy
    Eyeballs does (RFC 8305). ``policy`` is applied to the addresses the name resolved
    to, which are the very addresses connected to: a name cannot be re-pointed between
    the check and the connection (DNS rebinding). ``resolver`` replaces the system's
    (tests give names the addresses they need)."""
    start_ns = monotonic_ns()
    stage = "DNS lookup"
    dns_ms: int | None = None
    attempt = _Attempt()
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            addresses, looked_up = await _resolve(host, port, family, resolver or system_resolver)
            if looked_up:
                dns_ms = elapsed_ms(start_ns)
            if not addresses:  # an IP literal of the other family
                return Outcome(Status.DOWN, error=f"Host is not an {_SPELLED[family]} address")
            permitted = [(f, a) for f, a in addresses if policy.permits(a)]
            if not permitted:
                return Outcome(Status.DOWN, error=TARGET_NOT_ALLOWED, dns_time_ms=dns_ms)
            stage = "Connection"
            connect_ns = monotonic_ns()
            await _race(_interleaved(permitted), port, attempt)
    except TimeoutError:
        return Outcome(
            Status.TIMEOUT,
            error=f"{stage} timed out after {timeout_ms} ms",
            dns_time_ms=dns_ms,
            resolved_address=attempt.address,
        )
    except socket.gaierror as exc:
        return Outcome(Status.DOWN, error=f"DNS lookup failed: {exc.strerror or exc}")
    except OSError as exc:
        if exc.errno == errno.ETIMEDOUT:
            error = f"Connection timed out after {timeout_ms} ms"
            return Outcome(
                Status.TIMEOUT, error=error, dns_time_ms=dns_ms, resolved_address=attempt.address
            )
        return Outcome(
            Status.DOWN,
            error=describe_os_error(exc),
            dns_time_ms=dns_ms,
            resolved_address=attempt.address,
        )
    return Outcome(
        Status.UP,
        response_time_ms=elapsed_ms(start_ns),
        dns_time_ms=dns_ms,
        connect_time_ms=elapsed_ms(connect_ns),
        resolved_address=attempt.address,
    )


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


_SPELLED = {IpFamily.AUTO: "IP", IpFamily.IPV4: "IPv4", IpFamily.IPV6: "IPv6"}
_FAMILIES = {
    IpFamily.AUTO: socket.AF_UNSPEC,
    IpFamily.IPV4: socket.AF_INET,
    IpFamily.IPV6: socket.AF_INET6,
}


# (host, port, address family or AF_UNSPEC) to (family, address) pairs, in preference
# order; raises socket.gaierror when the name does not resolve.
Resolver = Callable[[str, int, int], Awaitable[list[tuple[int, str]]]]


async def system_resolver(host: str, port: int, family: int) -> list[tuple[int, str]]:
    """getaddrinfo on the loop's executor, de-duplicated, in its order (RFC 6724)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[tuple[int, str]] = []
    for af, _, _, _, sockaddr in infos:
        pair = (int(af), str(sockaddr[0]))
        if pair not in seen:
            seen.append(pair)
    return seen


async def _resolve(
    host: str, port: int, family: IpFamily, resolver: Resolver
) -> tuple[list[tuple[int, str]], bool]:
    """(family, address) pairs to try and whether DNS was asked. IP literals skip DNS."""
    literal = _literal_family(host)
    if literal is not None:
        wanted = _FAMILIES[family]
        return ([(literal, host)] if wanted in (socket.AF_UNSPEC, literal) else []), False
    found = await resolver(host, port, _FAMILIES[family])
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return found, True


def _interleaved(addresses: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """RFC 8305 §4: alternate the families, starting with the resolver's first choice."""
    first = [a for a in addresses if a[0] == addresses[0][0]]
    other = [a for a in addresses if a[0] != addresses[0][0]]
    return [a for pair in itertools.zip_longest(first, other) for a in pair if a is not None]


# RFC 8305 §5: start the next address's attempt if the last has not connected by then.
CONNECTION_ATTEMPT_DELAY_S = 0.25


class _Attempt:
    """The address a check connected to, or whose failure it reports."""

    address: str | None = None


async def _race(addresses: list[tuple[int, str]], port: int, attempt: _Attempt) -> None:
    """Happy Eyeballs over resolved addresses: one attempt at a time, the next started
    when the last fails or after CONNECTION_ATTEMPT_DELAY_S, the first handshake wins
    and the others are cancelled. (asyncio's own ``happy_eyeballs_delay`` resolves the
    name itself, which would skip the target policy and hide the DNS time.) Raises the
    last failure when none connects."""
    loop = asyncio.get_running_loop()
    waiting = list(addresses)
    running: dict[asyncio.Task[None], str] = {}
    last: OSError | None = None
    try:
        while waiting or running:
            if waiting:
                family, address = waiting.pop(0)
                task = loop.create_task(_open(loop, family, address, port))
                running[task] = address
            delay = CONNECTION_ATTEMPT_DELAY_S if waiting else None
            done, _ = await asyncio.wait(
                running, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                address = running.pop(task)
                exc = task.exception()
                if exc is None:
                    attempt.address = address
                    return
                attempt.address = address
                last = exc if isinstance(exc, OSError) else OSError(str(exc))
    finally:
        for task in running:
            task.cancel()
    raise last or OSError(errno.EADDRNOTAVAIL, "no address to connect to")


async def _open(loop: asyncio.AbstractEventLoop, family: int, address: str, port: int) -> None:
    transport, _ = await loop.create_connection(_Discard, address, port, family=family)
    # No data was sent and none is read: close() sends FIN, not RST.
    transport.close()
