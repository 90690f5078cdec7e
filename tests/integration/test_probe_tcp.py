"""The TCP probe against real listeners on 127.0.0.1 (never a mocked socket).

Each test runs on uvloop and on asyncio's own loop (see conftest): their errors differ
in wording, and the probe must classify both alike."""

import asyncio
import socket
import time

import pytest

from tests.support.listeners import blackhole, closed_port, listener
from upwatch.domain import IpFamily, Status, TargetPolicy, parse_networks
from upwatch.probes.tcp import CONNECTION_ATTEMPT_DELAY_S, Resolver, probe


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


# -- phase timings and address families (SPEC §9) ---------------------------------------

V6, V4 = (socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")


def dual_stack_localhost(order: list[tuple[int, str]] = [V6, V4]) -> Resolver:  # noqa: B006
    """``localhost`` as a dual-stack host resolves it (::1 first, as RFC 6724 orders),
    whatever this machine's /etc/hosts says; other names do not resolve."""

    async def resolve(host: str, port: int, family: int) -> list[tuple[int, str]]:
        if host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [a for a in order if family in (socket.AF_UNSPEC, a[0])]

    return resolve


def ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="::1 is not configured")


async def test_an_ip_literal_has_no_dns_time_and_a_connect_time() -> None:
    with listener() as sock:
        outcome = await probe("127.0.0.1", sock.getsockname()[1], 1000)
    assert outcome.status is Status.UP
    assert outcome.dns_time_ms is None
    assert outcome.connect_time_ms is not None
    assert outcome.response_time_ms is not None
    assert 0 <= outcome.connect_time_ms <= outcome.response_time_ms
    assert outcome.resolved_address == "127.0.0.1"


async def test_a_name_has_a_dns_time_and_the_address_connected_to() -> None:
    with listener() as sock:
        outcome = await probe("localhost", sock.getsockname()[1], 2000)  # the system's resolver
    assert outcome.status is Status.UP
    assert outcome.dns_time_ms is not None
    assert outcome.connect_time_ms is not None
    assert outcome.response_time_ms is not None
    assert outcome.dns_time_ms + outcome.connect_time_ms <= outcome.response_time_ms + 1
    assert outcome.resolved_address == "127.0.0.1"


async def test_a_failed_check_names_the_address_that_refused_and_has_no_connect_time() -> None:
    outcome = await probe("127.0.0.1", closed_port(), 1000)
    assert outcome.status is Status.DOWN
    assert outcome.connect_time_ms is None
    assert outcome.resolved_address == "127.0.0.1"


async def test_a_failed_lookup_has_no_timings_and_no_address() -> None:
    outcome = await probe("upwatch-test.invalid", 80, 1000, resolver=dual_stack_localhost())
    assert (outcome.status, outcome.dns_time_ms, outcome.resolved_address) == (
        Status.DOWN,
        None,
        None,
    )
    assert outcome.error == "DNS lookup failed: Name or service not known"


@needs_ipv6
async def test_happy_eyeballs_falls_back_at_once_when_ipv6_refuses() -> None:
    with listener() as sock:  # 127.0.0.1 only: ::1 refuses
        start = time.monotonic()
        outcome = await probe(
            "localhost", sock.getsockname()[1], 2000, resolver=dual_stack_localhost()
        )
        took = time.monotonic() - start
    assert outcome.status is Status.UP
    assert outcome.resolved_address == "127.0.0.1"
    assert took < 0.25  # a refusal starts the next attempt without waiting out the delay


@needs_ipv6
async def test_happy_eyeballs_prefers_the_first_address_when_both_answer() -> None:
    with listener(host="::1") as v6:
        port = v6.getsockname()[1]
        with listener(port=port):
            outcome = await probe("localhost", port, 2000, resolver=dual_stack_localhost())
    assert (outcome.status, outcome.resolved_address) == (Status.UP, "::1")


@needs_ipv6
async def test_happy_eyeballs_races_the_next_family_when_the_first_hangs() -> None:
    with listener() as v4:
        port = v4.getsockname()[1]
        with blackhole(port=port, host="::1"):
            outcome = await probe("localhost", port, 3000, resolver=dual_stack_localhost())
    assert (outcome.status, outcome.resolved_address) == (Status.UP, "127.0.0.1")
    assert outcome.connect_time_ms is not None
    assert outcome.connect_time_ms >= CONNECTION_ATTEMPT_DELAY_S * 1000 - 5
    assert outcome.connect_time_ms < 2000  # not the whole timeout


@needs_ipv6
@pytest.mark.parametrize(
    ("family", "address", "status"),
    [
        (IpFamily.IPV6, "::1", Status.UP),
        (IpFamily.IPV4, "127.0.0.1", Status.DOWN),  # nothing listens there
        (IpFamily.AUTO, "::1", Status.UP),
    ],
)
async def test_ip_family_forces_one_family(family: IpFamily, address: str, status: Status) -> None:
    with listener(host="::1") as v6:
        outcome = await probe(
            "localhost",
            v6.getsockname()[1],
            2000,
            family=family,
            resolver=dual_stack_localhost(order=[V4, V6]),
        )
    assert (outcome.status, outcome.resolved_address) == (status, address)


async def test_a_literal_of_the_other_family_is_down_without_connecting() -> None:
    with listener() as sock:
        outcome = await probe("127.0.0.1", sock.getsockname()[1], 1000, family=IpFamily.IPV6)
    assert (outcome.status, outcome.error) == (Status.DOWN, "Host is not an IPv6 address")
    assert outcome.resolved_address is None


async def test_a_name_without_an_address_of_the_family_is_a_dns_failure() -> None:
    only_v4 = dual_stack_localhost(order=[V4])
    outcome = await probe("localhost", 80, 1000, family=IpFamily.IPV6, resolver=only_v4)
    assert outcome.status is Status.DOWN
    assert outcome.error is not None
    assert outcome.error.startswith("DNS lookup failed")
