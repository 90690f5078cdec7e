"""One API process under bursts, below, at and past its measured capacity: does it
answer bursts in full, refuse nothing below capacity, and shed a sustained overload
quickly (503) while the requests it accepts keep a bounded latency (SPEC §11)?

Starts loopback listeners and `upwatch serve` on SQLite (with --database postgresql:
`api` beside a `worker`, and the `api` process is the one measured) with N monitors
stored and their checks running, and --keys API keys of one team (requests take them in
turn). The rate limit is off unless --rate-limit-per-minute is given, so that shedding
is the server's delay-based shedding (--shed-target-ms, --shed-interval-ms) and its
in-flight backstop (--max-in-flight). With a rate limit, the monitors are stored with it
off and the server is restarted with it on. Phases, one after the other:

0. bursts: 200 parallel GETs of one monitor, then 200 parallel creates for a team whose
   limit is 150, each request on a connection of its own opened beforehand: statuses;
1. unloaded: a closed loop of GET one monitor at --unloaded-concurrency connections:
   p50/p99 latency;
2. capacity: a closed loop at --capacity-concurrency connections: 2xx answers a second
   is the measured capacity;
3. for each --factor F (default 0.6, 0.8, 2): an open loop at F x capacity requests a
   second, on a fixed schedule that never waits for answers: slot i is due at i / rate
   and goes out on an idle one of --connections keep-alive connections (opened, and
   each used once, beforehand). A slot that finds every connection waiting for an
   answer is not sent; it is counted as client-side backlog, so the achieved send rate
   says whether the generator kept up. Answers still outstanding --drain seconds after
   the last slot count as unanswered. Reported: offered and achieved send rate, answers
   by status, the share refused, 2xx a second against capacity, p50/p99/max latency
   (from the send) of the 200s and of the 503s, and accepted p99 / unloaded p99;
4. after: the unloaded loop again, for --recovery-seconds.

The generator runs in this process, on the same two cores as the server: it shares the
CPU with what it measures. It is a bare asyncio Protocol with prebuilt requests, and its
own CPU share during each phase is reported beside the server's.

    python bench/overload.py --seconds 10 --factor 0.6,0.8,2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import uvloop
from _common import (
    clean_env,
    cpu_seconds,
    free_port,
    new_key,
    percentile,
    pg_recreate,
    spawn,
    start_sink,
    start_upwatch,
    status_kb,
    stop,
    table,
    upwatch,
    wait_healthy,
    write_json,
)
from _load import API, Outcome, drive, exchange, monitor_body, one, request

CREATE_CONCURRENCY = 16
BURST = 200  # parallel requests of the burst phase
TICK_S = 0.001
MAX_RECONNECTS = 10_000


@dataclass
class OpenLoop:
    """What the open-loop generator saw."""

    slots: int = 0
    sent: int = 0
    backlog: int = 0
    unanswered: int = 0
    closed: int = 0  # connections the server closed with a request outstanding
    reconnects: int = 0  # connections lost (either way) during the phase, opened again
    most_outstanding: int = 0
    # (slot, status, latency from the send in ms); status 0: the server closed
    answers: list[tuple[int, int, float]] = field(default_factory=list)
    # per second of the schedule: [sent, backlog]
    seconds: list[list[int]] = field(default_factory=list)
    send_s: float = 0.0

    def latencies_ms(self) -> dict[int, list[float]]:
        by_status: dict[int, list[float]] = {}
        for _, status, took in self.answers:
            if status:
                by_status.setdefault(status, []).append(took)
        return dict(sorted(by_status.items()))

    def per_second(self, rate: float) -> list[dict[str, Any]]:
        """By the second of the schedule the request was sent in: what was sent, not
        sent, answered how, and how long the 2xx answers took."""
        rows = [
            {"second": i, "sent": sent, "backlog": backlog, "2xx": 0, "503": 0, "429": 0}
            for i, (sent, backlog) in enumerate(self.seconds)
        ]
        took: list[list[float]] = [[] for _ in rows]
        for slot, status, ms in self.answers:
            i = int(slot / rate)
            key = "2xx" if 200 <= status < 300 else str(status)
            rows[i][key] = rows[i].get(key, 0) + 1
            if key == "2xx":
                took[i].append(ms)
        for row, values in zip(rows, took, strict=True):
            row.update({f"2xx_{k}": v for k, v in latency(values).items() if k != "count"})
        return rows


class Client(asyncio.Protocol):
    """One keep-alive connection with at most one request outstanding; parses
    Content-Length answers straight from the bytes."""

    def __init__(self, gen: OpenLoopDriver) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.slot = -1
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.gen.idle.append(self)

    def send(self, payload: bytes, slot: int) -> None:
        assert self.transport is not None
        self.busy = True
        self.slot = slot
        self.sent_at = time.perf_counter()
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        took = (time.perf_counter() - self.sent_at) * 1000
        self.busy = False
        self.gen.answered(self, status, took)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.gen.lost(self)


class OpenLoopDriver:
    def __init__(self, port: int, payloads: list[bytes], connections: int, seed: int) -> None:
        self.port = port
        self.payloads = payloads
        self.connections = connections
        self.rng = random.Random(seed)
        self.idle: collections.deque[Client] = collections.deque()
        self.outstanding = 0
        self.result = OpenLoop()
        self.open_clients: set[Client] = set()
        self.reconnecting: set[asyncio.Task[None]] = set()
        self.start = 0.0
        self.rate = 1.0
        self.stopping = False
        self.priming = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: Client(self), "127.0.0.1", self.port)
        self.open_clients.add(client)

    def bucket(self, slot: int) -> list[int]:
        second = int(slot / self.rate)
        while len(self.result.seconds) <= second:
            self.result.seconds.append([0, 0])
        return self.result.seconds[second]

    def answered(self, client: Client, status: int, took_ms: float) -> None:
        self.outstanding -= 1
        if not self.priming:
            self.result.answers.append((client.slot, status, took_ms))
        self.idle.append(client)

    def lost(self, client: Client) -> None:
        self.open_clients.discard(client)
        if client in self.idle:
            self.idle.remove(client)
        if client.busy:
            self.outstanding -= 1
            if not self.priming:
                self.result.closed += 1
                self.result.answers.append((client.slot, 0, 0.0))
        if self.result.reconnects < MAX_RECONNECTS and not self.stopping:
            self.result.reconnects += 1
            task = asyncio.get_running_loop().create_task(self.connect())
            self.reconnecting.add(task)
            task.add_done_callback(self.reconnecting.discard)

    async def run(self, rate: float, seconds: float, drain_s: float) -> OpenLoop:
        self.rate = rate
        await asyncio.gather(*(self.connect() for _ in range(self.connections)))
        # One request on each connection first, not counted: the schedule starts on
        # connections the server has accepted and served.
        self.priming = True
        while self.idle:
            self.idle.popleft().send(self.rng.choice(self.payloads), -1)
            self.outstanding += 1
        primed_by = time.monotonic() + drain_s
        while self.outstanding > 0 and time.monotonic() < primed_by:
            await asyncio.sleep(0.01)
        self.priming = False
        res = self.result
        total = int(rate * seconds)
        self.start = time.monotonic()
        while res.slots < total:
            due = min(total, int((time.monotonic() - self.start) * rate) + 1)
            while res.slots < due:
                slot = res.slots
                res.slots += 1
                if self.idle:
                    client = self.idle.popleft()
                    client.send(self.rng.choice(self.payloads), slot)
                    res.sent += 1
                    self.bucket(slot)[0] += 1
                    self.outstanding += 1
                    res.most_outstanding = max(res.most_outstanding, self.outstanding)
                else:
                    res.backlog += 1
                    self.bucket(slot)[1] += 1
            await asyncio.sleep(TICK_S)
        res.send_s = time.monotonic() - self.start
        drain_until = time.monotonic() + drain_s
        while self.outstanding > 0 and time.monotonic() < drain_until:
            await asyncio.sleep(0.01)
        res.unanswered = self.outstanding
        self.stopping = True
        for client in list(self.open_clients):
            if client.transport is not None:
                client.transport.close()
        await asyncio.sleep(0.1)
        return res


async def burst(port: int, payloads: list[bytes]) -> dict[str, Any]:
    """Every payload at once, each on a connection of its own opened beforehand: what
    an idle server answers when a script fires a batch in parallel."""
    conns = [await asyncio.open_connection("127.0.0.1", port, limit=2**24) for _ in payloads]
    start = time.perf_counter()
    try:
        answers = await asyncio.gather(
            *(exchange(r, w, p) for (r, w), p in zip(conns, payloads, strict=True))
        )
    finally:
        for _, w in conns:
            w.close()
    statuses = collections.Counter(status for status, _ in answers)
    return {
        "requests": len(payloads),
        "statuses": dict(sorted(statuses.items())),
        "elapsed_ms": (time.perf_counter() - start) * 1000,
    }


def closed_figures(name: str, outcome: Outcome) -> dict[str, Any]:
    ok = sum(n for s, n in outcome.statuses.items() if 200 <= s < 300)
    return {
        "phase": name,
        "requests": len(outcome.latencies_ms),
        "ok_per_s": ok / outcome.elapsed_s,
        "p50_ms": percentile(outcome.latencies_ms, 0.5),
        "p99_ms": percentile(outcome.latencies_ms, 0.99),
        "max_ms": max(outcome.latencies_ms) if outcome.latencies_ms else float("nan"),
        "statuses": outcome.statuses,
    }


def latency(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.5),
        "p99_ms": percentile(values, 0.99),
        "max_ms": max(values) if values else float("nan"),
    }


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


async def store_monitors(
    args: argparse.Namespace, port: int, key: str, sink: list[int]
) -> list[str]:
    print(f"creating {args.monitors:,} monitors through the API…", file=sys.stderr)
    created = await drive(
        port,
        lambda i: request(
            "POST", API, key, monitor_body(f"overload-{i}", sink[i % len(sink)], args.interval)
        ),
        concurrency=CREATE_CONCURRENCY,
        duration_s=3600,
        max_requests=args.monitors,
    )
    status, body = await one(port, request("GET", API, key))
    assert status == 200, body
    monitors = [m["id"] for m in json.loads(body)["data"]]
    if len(monitors) != args.monitors:
        raise RuntimeError(
            f"{len(monitors)} monitors stored, not {args.monitors}: {created.statuses}"
        )
    return monitors


async def run(
    args: argparse.Namespace,
    port: int,
    keys: list[str],
    burst_key: str,
    monitors: list[str] | None,
    sink: list[int],
    server_pid: int,
) -> dict[str, Any]:
    if monitors is None:
        monitors = await store_monitors(args, port, keys[0], sink)
    print(f"checks running; settling {args.settle:.0f} s…", file=sys.stderr)
    await asyncio.sleep(args.settle)
    payloads = [request("GET", f"{API}/{m}", k) for m in monitors for k in keys]
    rng = random.Random(7)
    pids = {"server": server_pid, "generator": os.getpid()}
    phases: dict[str, Any] = {}

    print(f"burst: {BURST} parallel reads, then {BURST} parallel creates…", file=sys.stderr)
    phases["burst_reads"] = await burst(port, [rng.choice(payloads) for _ in range(BURST)])
    await asyncio.sleep(1)
    creates = [
        request("POST", API, burst_key, monitor_body(f"burst-{i}", sink[0], args.interval))
        for i in range(BURST)
    ]
    phases["burst_creates"] = await burst(port, creates)
    await asyncio.sleep(1)

    async def closed(name: str, concurrency: int, seconds: float) -> dict[str, Any]:
        print(f"{name}: closed loop at {concurrency} for {seconds:.0f} s…", file=sys.stderr)
        cpu0 = cpu_of(pids)
        outcome = await drive(
            port, lambda i: rng.choice(payloads), concurrency=concurrency, duration_s=seconds
        )
        cpu1 = cpu_of(pids)
        fig = closed_figures(name, outcome)
        fig["concurrency"] = concurrency
        fig["cpu_percent"] = {k: 100 * (cpu1[k] - cpu0[k]) / outcome.elapsed_s for k in pids}
        return fig

    phases["unloaded"] = await closed("unloaded", args.unloaded_concurrency, args.seconds)
    phases["capacity"] = await closed("capacity", args.capacity_concurrency, args.seconds)
    capacity = phases["capacity"]["ok_per_s"]
    for factor in args.factor:
        offered = factor * capacity
        print(
            f"open loop at {offered:.0f}/s ({factor:g} x {capacity:.0f}) over "
            f"{args.connections} connections for {args.seconds:.0f} s…",
            file=sys.stderr,
        )
        driver = OpenLoopDriver(port, payloads, args.connections, seed=11)
        cpu0 = cpu_of(pids)
        rss0 = status_kb(server_pid, "VmRSS") / 1024
        res = await driver.run(offered, args.seconds, args.drain)
        cpu1 = cpu_of(pids)
        phases[f"x{factor:g}"] = open_figures(
            res, factor, offered, phases["unloaded"]["p99_ms"], capacity, args.connections
        )
        phases[f"x{factor:g}"]["cpu_percent"] = {
            k: 100 * (cpu1[k] - cpu0[k]) / res.send_s for k in pids
        }
        phases[f"x{factor:g}"]["server_rss_mb"] = {
            "before": round(rss0, 1),
            "after": round(status_kb(server_pid, "VmRSS") / 1024, 1),
        }
        await asyncio.sleep(1)
    phases["after"] = await closed("after", args.unloaded_concurrency, args.recovery_seconds)
    return phases


def open_figures(
    res: OpenLoop,
    factor: float,
    offered: float,
    unloaded_p99: float,
    capacity: float,
    connections: int,
) -> dict[str, Any]:
    by_status = res.latencies_ms()
    ok = [x for s, v in by_status.items() if 200 <= s < 300 for x in v]
    accepted = latency(ok)
    return {
        "phase": "open loop",
        "factor": factor,
        "connections": connections,
        "offered_per_s": offered,
        "slots": res.slots,
        "sent": res.sent,
        "sent_per_s": res.sent / res.send_s,
        "client_backlog": res.backlog,
        "client_backlog_percent": 100 * res.backlog / max(res.slots, 1),
        "most_outstanding": res.most_outstanding,
        "answers": {s: len(v) for s, v in by_status.items()},
        "refused_percent": 100 * len(by_status.get(503, [])) / max(res.sent, 1),
        "answered_2xx_per_s": len(ok) / res.send_s,
        "answered_2xx_over_capacity": len(ok) / res.send_s / capacity,
        "unanswered": res.unanswered,
        "closed_by_server": res.closed,
        "reconnects": res.reconnects,
        "latency_2xx": accepted,
        "latency_503": latency(by_status.get(503, [])),
        "latency_429": latency(by_status.get(429, [])),
        "accepted_p99_over_unloaded_p99": accepted["p99_ms"] / unloaded_p99,
        "per_second": res.per_second(offered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15, help="each loaded phase")
    parser.add_argument(
        "--factor",
        type=lambda v: [float(f) for f in v.split(",")],
        default=[0.6, 0.8, 2.0],
        help="open-loop rates, comma-separated, x capacity",
    )
    parser.add_argument("--connections", type=int, default=256, help="open-loop connections")
    parser.add_argument("--max-in-flight", type=int, default=1024, help="the backstop")
    parser.add_argument(
        "--shed-target-ms", type=float, default=20.0, help="queueing delay target (0: off)"
    )
    parser.add_argument("--shed-interval-ms", type=float, default=100.0)
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=0,
        help="per key (0: off); it applies to every phase, so set it over capacity / keys",
    )
    parser.add_argument("--unloaded-concurrency", type=int, default=1)
    parser.add_argument("--capacity-concurrency", type=int, default=16)
    parser.add_argument("--recovery-seconds", type=float, default=5)
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for answers")
    parser.add_argument("--settle", type=float, default=5, help="seconds of checks first")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="upwatch-bench-overload-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench")
    )
    env = clean_env(
        UPWATCH_DATABASE_URL=url,
        UPWATCH_LOG_LEVEL="warning",
        UPWATCH_MAX_REQUESTS_IN_FLIGHT=str(args.max_in_flight),
        UPWATCH_SHED_TARGET_MS=str(args.shed_target_ms),
        UPWATCH_SHED_INTERVAL_MS=str(args.shed_interval_ms),
    )
    limited = {**env, "UPWATCH_RATE_LIMIT_PER_MINUTE": str(args.rate_limit_per_minute)}
    sink_proc, sink = start_sink(16)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upwatch(env, "migrate")
        upwatch(env, "teams", "create", "bench", "--max-monitors", str(args.monitors))
        keys = [new_key(env, "bench", name=f"k{i}") for i in range(args.keys)]
        upwatch(env, "teams", "create", "burst", "--max-monitors", str(BURST * 3 // 4))
        burst_key = new_key(env, "burst", name="burst")
        port = free_port()
        procs.extend(start_upwatch(env, args.database, port, workdir).values())
        server = "serve" if args.database == "sqlite" else "api"
        wait_healthy(f"http://127.0.0.1:{port}")
        monitors = None
        if args.rate_limit_per_minute:
            # The monitors are stored with the limit off, then the server restarts with it on.
            monitors = uvloop.run(store_monitors(args, port, keys[0], sink))
            stop(procs[:1])
            procs[0] = spawn(limited, server, "--port", str(port), log=workdir / f"{server}2.log")
            wait_healthy(f"http://127.0.0.1:{port}")
        phases = uvloop.run(run(args, port, keys, burst_key, monitors, sink, procs[0].pid))
        codes = stop(procs)
    finally:
        stop(procs)
        sink_proc.terminate()
        sink_proc.wait()
    log = "".join(p.read_text(errors="replace") for p in sorted(workdir.glob("*.log")))
    log_errors = len(re.findall(r"\bERROR\b|Traceback", log))
    un, cap, after = (phases[k] for k in ("unloaded", "capacity", "after"))
    rows: list[tuple[str, Any]] = [
        (
            f"burst of {BURST} reads / creates (team limit {BURST * 3 // 4}): statuses",
            f"{phases['burst_reads']['statuses']} / {phases['burst_creates']['statuses']}",
        ),
        (
            f"unloaded ({un['concurrency']} conn): p50 / p99 / max ms",
            f"{un['p50_ms']:.2f} / {un['p99_ms']:.2f} / {un['max_ms']:.1f} "
            f"({un['ok_per_s']:,.0f}/s)",
        ),
        (
            f"capacity ({cap['concurrency']} conn): 2xx/s, p50 / p99 ms",
            f"{cap['ok_per_s']:,.0f}/s, {cap['p50_ms']:.1f} / {cap['p99_ms']:.1f}",
        ),
        ("capacity statuses", cap["statuses"]),
    ]
    for factor in args.factor:
        ov = phases[f"x{factor:g}"]
        acc = ov["latency_2xx"]
        rows += [
            (
                f"{factor:g} x: offered / sent per s, client backlog %",
                f"{ov['offered_per_s']:,.0f} / {ov['sent_per_s']:,.0f}, "
                f"{ov['client_backlog_percent']:.1f} %",
            ),
            (f"{factor:g} x: answers by status", ov["answers"]),
            (
                f"{factor:g} x: refused %, 2xx/s (÷ capacity)",
                f"{ov['refused_percent']:.2f} %, {ov['answered_2xx_per_s']:,.0f} "
                f"({ov['answered_2xx_over_capacity']:.2f})",
            ),
            (
                f"{factor:g} x: 2xx p50 / p99 / max ms (p99 ÷ unloaded p99)",
                f"{acc['p50_ms']:.1f} / {acc['p99_ms']:.1f} / {acc['max_ms']:.1f} "
                f"({ov['accepted_p99_over_unloaded_p99']:.1f} x)",
            ),
            (
                f"{factor:g} x: 503 p50 / p99 ms",
                f"{ov['latency_503']['p50_ms']:.1f} / {ov['latency_503']['p99_ms']:.1f}",
            ),
            (
                f"{factor:g} x: unanswered / closed; cpu % server / generator",
                f"{ov['unanswered']} / {ov['closed_by_server']}; "
                f"{ov['cpu_percent']['server']:.0f} / {ov['cpu_percent']['generator']:.0f}",
            ),
        ]
    rows += [
        (
            f"after ({after['concurrency']} conn): p50 / p99 ms",
            f"{after['p50_ms']:.2f} / {after['p99_ms']:.2f} {after['statuses']}",
        ),
        ("ERROR lines in logs", log_errors),
        ("exit codes", codes),
    ]
    limit = (
        f"rate limit {args.rate_limit_per_minute}/min/key"
        if args.rate_limit_per_minute
        else "rate limit off"
    )
    print(
        table(
            f"upwatch overload: {server} on {args.database}, {args.monitors:,} monitors, "
            "GET one monitor, "
            f"shed target {args.shed_target_ms:g} ms / {args.shed_interval_ms:g} ms, "
            f"backstop {args.max_in_flight}, {limit}",
            rows,
        )
    )
    path = write_json(
        f"overload-{args.database}",
        {
            "database": args.database,
            "monitors": args.monitors,
            "keys": args.keys,
            "max_in_flight": args.max_in_flight,
            "shed_target_ms": args.shed_target_ms,
            "shed_interval_ms": args.shed_interval_ms,
            "rate_limit_per_minute": args.rate_limit_per_minute,
            "factor": args.factor,
            "phases": phases,
            "log_errors": log_errors,
            "exit_codes": codes,
            "workdir": str(workdir),
        },
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
