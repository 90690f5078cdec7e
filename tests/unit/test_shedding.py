"""The shedding decision on simulated queues: a server that starts one request every
``service_s``, fed by arrivals on a fixed schedule, time in whole microseconds."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from upwatch.api.shedding import BURST_REQUESTS, DelayShedder

MS = 0.001


@dataclass
class Run:
    refused: int = 0
    # (arrival time, sojourn) of every accepted request that started
    started: list[tuple[float, float]] = field(default_factory=list)

    def sojourns_after(self, t: float) -> list[float]:
        return [s for at, s in self.started if at >= t]


def simulate(shedder: DelayShedder, arrivals: list[float], service_s: float) -> Run:
    """Arrivals (sorted times) into one FIFO queue served one at a time."""
    run = Run()
    queue: collections.deque[float] = collections.deque()
    free_at = 0.0
    events = iter(arrivals)
    nxt = next(events, None)
    while nxt is not None or queue:
        if queue and (nxt is None or free_at <= nxt):
            now = max(free_at, queue[0])
            arrived = queue.popleft()
            shedder.start(arrived, now)
            run.started.append((arrived, now - arrived))
            free_at = now + service_s
        else:
            assert nxt is not None
            if shedder.admit(nxt, free_since=nxt) is None:
                run.refused += 1
            else:
                queue.append(nxt)
            nxt = next(events, None)
    assert shedder.queued == 0
    return run


def steady(rate_per_s: float, seconds: float, start: float = 0.0) -> list[float]:
    return [start + i / rate_per_s for i in range(int(rate_per_s * seconds))]


def test_a_burst_at_an_idle_server_is_absorbed_even_when_it_outlasts_the_interval() -> None:
    # 200 requests at once, 3 ms each: the last one starts after 600 ms.
    run = simulate(DelayShedder(), [0.0] * 200, service_s=3 * MS)
    assert run.refused == 0
    assert max(s for _, s in run.started) > 0.5


def test_a_burst_that_trickles_in_is_absorbed_too() -> None:
    # A slow client: 250 requests sent over 250 ms, served at 2 ms each.
    run = simulate(DelayShedder(), steady(1000, 0.25), service_s=2 * MS)
    assert run.refused == 0


def test_below_capacity_nothing_is_refused() -> None:
    # 80 % of capacity for 10 s, on a schedule with bursts of 10 every 10 ms.
    arrivals = [t for t in steady(80, 10) for _ in range(10)]
    run = simulate(DelayShedder(), sorted(arrivals), service_s=1 * MS)
    assert run.refused == 0


def test_a_slow_request_without_a_queue_is_not_a_queue() -> None:
    # One client at a time, each request 50 ms: sojourns are zero.
    run = simulate(DelayShedder(), steady(19, 5), service_s=50 * MS)
    assert run.refused == 0


def test_sustained_overload_is_shed_and_what_is_accepted_waits_about_the_target() -> None:
    shedder = DelayShedder()
    # Twice capacity (1 ms each) for 10 s.
    run = simulate(shedder, steady(2000, 10), service_s=1 * MS)
    assert 8000 <= run.refused <= 11_000  # about half
    assert len(run.started) >= 9000  # capacity is still used
    # Once shedding has begun, accepted requests wait about the target, not the queue.
    settled = sorted(run.sojourns_after(1.0))
    assert settled[int(0.99 * len(settled))] < 3 * shedder.target_s
    # The queue before it began was bounded by the burst allowance and the interval.
    assert max(s for _, s in run.started) < (BURST_REQUESTS + 10) * MS + shedder.interval_s


def test_after_an_overload_a_later_burst_is_absorbed_again() -> None:
    shedder = DelayShedder()
    overload = steady(2000, 2)
    later = [5.0] * 200  # long after: the memory of the overload has passed
    run = simulate(shedder, overload + later, service_s=1 * MS)
    burst = [s for at, s in run.started if at >= 5.0]
    assert len(burst) == 200


def test_a_target_of_zero_never_refuses() -> None:
    run = simulate(DelayShedder(target_s=0), steady(3000, 3), service_s=1 * MS)
    assert run.refused == 0


def test_a_request_that_woke_an_idle_loop_arrived_when_it_was_read() -> None:
    shedder = DelayShedder()
    assert shedder.admit(1.0, free_since=0.0) == 1.0
    shedder.start(1.0, now=1.0)
    shedder.answered(now=1.001)
    assert shedder.admit(5.0, free_since=1.001) == 5.0


def test_input_read_after_handlers_ran_may_have_waited_since_they_began() -> None:
    shedder = DelayShedder()
    for _ in range(40):
        shedder.admit(1.0, free_since=0.0)
    for i in range(40):  # 40 handlers of 1 ms, back to back, then the loop reads again
        shedder.start(1.0, now=1.0001 + i * 0.001)
        shedder.answered(now=1.0009 + i * 0.001)
    read_at = 1.0405
    # A connection idle all along: its request came in while the handlers ran.
    assert shedder.admit(read_at, free_since=0.5) == 1.0001
    # A connection answered during the run: not before its answer.
    assert shedder.admit(read_at + 0.0001, free_since=1.03) == 1.03
