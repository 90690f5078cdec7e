"""The TCP probe against real listeners on 127.0.0.1 (never a mocked socket).

Each test runs on uvloop and on asyncio's own loop (see conftest): their errors differ
in wording, and the probe must classify both alike."""

import asyncio
import socket
import time

import pytest

from tests.support.listeners import blackhole, closed_port, listener
from upwatch.domain import Status, TargetPolicy, parse_networks
from upwatch.probes.tcp import probe


async def test_it_reports_up_with_a_response_time_for_a_listener() -> None:
    with listener() as sock:
        outcome = await probe("127.0.0.1", sock.getsockname()[1], 1000)
    assert outcome.status is Status.UP
    assert outcome.response_time_ms is not None
    assert 0 <= outcome.response_time_ms < 1000
    assert outcome.error is None


async def test_it_resolves_names() -> None:
    with listener() as sock:
        outcome = await probe("localhost", sock.getsockname()[1], 2000)
    assert outcome.status is Status.UP


async def test_it_reports_a_closed_port_as_refused() -> None:
    outcome = await probe("127.0.0.1", closed_port(), 1000)
    assert outcome.status is Status.DOWN
    assert outcome.error == "Connection refused"
    assert outcome.response_time_ms is None


async def test_it_reports_an_unknown_name_as_dns_failure() -> None:
    outcome = await probe("upwatch-test.invalid", 80, 3000)
    assert outcome.status in (Status.DOWN, Status.TIMEOUT)
    assert outcome.error is not None
    assert outcome.error.startswith("DNS lookup")
    assert outcome.response_time_ms is None


async def test_it_times_out_within_the_timeout() -> None:
    with blackhole() as port:
        start = time.monotonic()
        outcome = await probe("127.0.0.1", port, 300)
        took = time.monotonic() - start
    assert outcome.status is Status.TIMEOUT
    assert outcome.error == "Connection timed out after 300 ms"
    assert outcome.response_time_ms is None
    assert 0.25 < took < 1.5


async def test_it_closes_with_fin_not_rst() -> None:
    with listener() as sock:
        outcome = await probe("127.0.0.1", sock.getsockname()[1], 1000)
        assert outcome.status is Status.UP
        # The transport finishes closing on a later loop turn: read from a thread.
        assert await asyncio.to_thread(read_after_accept, sock) == b""


def read_after_accept(sock: socket.socket) -> bytes:
    sock.settimeout(2)
    conn, _ = sock.accept()
    with conn:
        conn.settimeout(2)
        # A FIN reads as end-of-stream; an RST would raise ConnectionResetError.
        return conn.recv(16)


async def test_many_probes_run_concurrently() -> None:
    with listener(backlog=512) as sock:
        port = sock.getsockname()[1]
        outcomes = await asyncio.gather(*(probe("127.0.0.1", port, 2000) for _ in range(200)))
    assert {o.status for o in outcomes} == {Status.UP}


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
async def test_it_probes_ipv6_literals() -> None:
    try:
        sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 is not configured")
    with sock:
        outcome = await probe("::1", sock.getsockname()[1], 1000)
    assert outcome.status is Status.UP


async def test_a_denied_literal_address_is_not_connected_to() -> None:
    policy = TargetPolicy(parse_networks("127.0.0.0/8"))
    with listener() as sock:
        outcome = await probe("127.0.0.1", sock.getsockname()[1], 1000, policy=policy)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.accept()  # nothing ever connected
    assert (outcome.status, outcome.error) == (Status.DOWN, "Target address not allowed")


async def test_a_name_resolving_into_a_denied_range_is_down() -> None:
    policy = TargetPolicy(parse_networks("127.0.0.0/8, ::1/128"))
    with listener() as sock:
        outcome = await probe("localhost", sock.getsockname()[1], 2000, policy=policy)
    assert (outcome.status, outcome.error) == (Status.DOWN, "Target address not allowed")


async def test_allowed_addresses_of_a_name_are_still_tried() -> None:
    policy = TargetPolicy(parse_networks("::1/128"))  # localhost's IPv6 address only
    with listener() as sock:
        outcome = await probe("localhost", sock.getsockname()[1], 2000, policy=policy)
    assert outcome.status is Status.UP
