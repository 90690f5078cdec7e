"""A long run at full checker load with the API under steady load: does anything grow?

Starts loopback listeners and upwatch (`serve` on SQLite; `api` beside a `worker` on
PostgreSQL), stores N monitors at the given interval through the API (N - 100 in one
team, 100 in a second team whose list is the one read), then runs for --minutes while
an open-loop API load runs at a fixed rate: --api-rate requests a second, spread evenly
over --api-connections keep-alive connections (each sends its own slots of the common
schedule; a request whose slot comes while that connection still waits for an answer
goes out late, and late slots are counted). The mix, by slot: 50 % GET one monitor,
30 % GET results (limit 50), 15 % GET list (the 100-monitor team), 5 % PUT (a rename,
which does not move the check grid).

Every --sample seconds it reads each upwatch process's RSS (VmRSS) and open file
descriptors from /proc. After --warmup seconds the first sample is the start of the
steady state; reported are start, end and max of the steady state and the growth
end/start (target: under 10 %). The descriptor figure is the fewest of five reads 20 ms
apart, so that probe sockets open at the moment of a sample do not count. Checks are matched to each
monitor's grid as bench/checker.py does (missed, duplicates, lateness p50/p99/max over
the whole run); API answers are counted by status (any non-2xx, and any connection
error or timeout, is an error) with p50/p99 latency per operation.

    python bench/soak.py --monitors 10000 --interval 10 --minutes 10 --warmup 300 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from _common import (
    children_of,
    clean_env,
    cpu_seconds,
    free_port,
    new_key,
    open_fds,
    percentile,
    pg_recreate,
    start_sink,
    start_upwatch,
    status_kb,
    stop,
    table,
    upwatch,
    wait_healthy,
    write_json,
)
from _load import API, drive, exchange, monitor_body, one, request
from checker import analyse

SMALL_TEAM = 100
CREATE_CONCURRENCY = 16
CREATE_ROUNDS = 5
LATE_SLOT_MS = 100
REQUEST_TIMEOUT_S = 30
MAX_RECONNECTS = 1000
FD_READS = 5
# Slot i of the schedule runs MIX[i % 20]: 10 GET one, 6 GET results, 3 GET list, 1 PUT.
MIX = ["get"] * 10 + ["results"] * 6 + ["list"] * 3 + ["put"]


async def create_monitors(
    port: int, key: str, sink: list[int], n: int, interval: int, offset: int
) -> None:
    """n monitors through the API; answers other than 201 are retried (bounded rounds)."""
    made = 0
    for _ in range(CREATE_ROUNDS):
        if made >= n:
            return
        base = offset + made
        outcome = await drive(
            port,
            lambda i, base=base: request(
                "POST",
                API,
                key,
                monitor_body(f"soak-{base + i}", sink[(base + i) % len(sink)], interval),
            ),
            concurrency=CREATE_CONCURRENCY,
            duration_s=3600,
            max_requests=n - made,
        )
        made += outcome.statuses.get(201, 0)
    if made < n:
        raise RuntimeError(f"only {made} of {n} monitors could be created")


async def ids_of(port: int, key: str) -> list[str]:
    status, body = await one(port, request("GET", API, key))
    assert status == 200, body
    return [m["id"] for m in json.loads(body)["data"]]


@dataclass
class Load:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int | str]] = field(default_factory=dict)
    sent: int = 0
    late_slots: int = 0
    reconnects: int = 0
    # (seconds since start, latency ms, ok) per answer, for the per-minute timeline
    log: list[tuple[float, float, bool]] = field(default_factory=list)


async def steady_load(
    port: int,
    make: dict[str, Any],
    *,
    rate: float,
    connections: int,
    start: float,
    deadline: float,
) -> Load:
    """Slot i is due at start + i / rate and is sent by connection i % connections."""
    load = Load()
    for op in make:
        load.latencies_ms[op] = []
        load.statuses[op] = Counter()

    async def connection(j: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        try:
            for slot in range(j, 10**9, connections):
                due = start + slot / rate
                if due >= deadline:
                    return
                pause = due - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                elif -pause * 1000 > LATE_SLOT_MS:
                    load.late_slots += 1
                op = MIX[slot % len(MIX)]
                payload = make[op](slot)
                load.sent += 1
                began = time.perf_counter()
                try:
                    status: int | str
                    status, _ = await asyncio.wait_for(
                        exchange(reader, writer, payload), REQUEST_TIMEOUT_S
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    status = type(exc).__name__
                    writer.close()
                    if load.reconnects >= MAX_RECONNECTS:
                        raise
                    load.reconnects += 1
                    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
                took = (time.perf_counter() - began) * 1000
                ok = isinstance(status, int) and 200 <= status < 300
                load.statuses[op][status] += 1
                load.latencies_ms[op].append(took)
                load.log.append((time.monotonic() - start, took, ok))
        finally:
            writer.close()

    await asyncio.gather(*(connection(j) for j in range(connections)))
    return load


async def fewest_fds(pid: int) -> int:
    """The fewest open descriptors in a few reads 20 ms apart: probe sockets come and go."""
    counts = []
    for _ in range(FD_READS):
        counts.append(open_fds(pid))
        await asyncio.sleep(0.02)
    return min(counts)


def fd_kinds(pid: int) -> dict[str, int]:
    """Open descriptors by kind: socket, pipe, anon_inode, or the file's name."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else Path(target).name
        kinds[kind] += 1
    return dict(sorted(kinds.items()))


async def sample(procs: dict[str, int], t: float) -> dict[str, Any]:
    """RSS, open descriptors and CPU seconds of each process by pid (None once it has
    exited)."""
    taken: dict[str, Any] = {"t_s": round(t, 1)}
    for name, pid in procs.items():
        try:
            taken[name] = {
                "rss_mb": round(status_kb(pid, "VmRSS") / 1024, 1),
                "fds": await fewest_fds(pid),
                "cpu_s": round(cpu_seconds(pid), 2),
                "fd_kinds": fd_kinds(pid),
            }
        except (OSError, ValueError):  # gone, or a zombie (no VmRSS line)
            taken[name] = None
    return taken


async def sampler(
    procs: dict[str, int], every: float, start: float, deadline: float
) -> list[dict[str, Any]]:
    """Samples every ``every`` seconds, the last one a second before the API load stops
    (so that its connections are open in every sample)."""
    last = deadline - 1
    samples = []
    for k in range(10**6):
        at = min(start + k * every, last)
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        samples.append(await sample(procs, time.monotonic() - start))
        if at >= last:
            break
    return samples


async def run(
    args: argparse.Namespace,
    port: int,
    keys: dict[str, str],
    sink: list[int],
    procs: dict[str, int],
) -> tuple[Load, list[dict[str, Any]], int, int, float]:
    big_n = args.monitors - SMALL_TEAM
    print(f"creating {args.monitors:,} monitors through the API…", file=sys.stderr)
    began = time.monotonic()
    await create_monitors(port, keys["big"], sink, big_n, args.interval, 0)
    await create_monitors(port, keys["small"], sink, SMALL_TEAM, args.interval, big_n)
    create_s = time.monotonic() - began
    monitors = await ids_of(port, keys["big"])
    rng = random.Random(7)
    big = keys["big"]
    make = {
        "get": lambda i: request("GET", f"{API}/{rng.choice(monitors)}", big),
        "results": lambda i: request("GET", f"{API}/{rng.choice(monitors)}/results?limit=50", big),
        "list": lambda i: request("GET", API, keys["small"]),
        "put": lambda i: request(
            "PUT", f"{API}/{rng.choice(monitors)}", big, json.dumps({"name": f"r{i}"}).encode()
        ),
    }
    seconds = args.minutes * 60
    print(
        f"{len(monitors) + SMALL_TEAM:,} monitors stored in {create_s:.0f} s; running "
        f"{seconds:.0f} s (warm-up {args.warmup:.0f} s) at {args.api_rate:g} API requests/s…",
        file=sys.stderr,
    )
    t0_wall = int(time.time() * 1000)
    start = time.monotonic()
    deadline = start + seconds
    load, samples = await asyncio.gather(
        steady_load(
            port,
            make,
            rate=args.api_rate,
            connections=args.api_connections,
            start=start,
            deadline=deadline,
        ),
        sampler(procs, args.sample, start, deadline),
    )
    t1_wall = int(time.time() * 1000)
    return load, samples, t0_wall, t1_wall, create_s


def growth(samples: list[dict[str, Any]], name: str, metric: str, warmup: float) -> dict[str, Any]:
    alive = [s for s in samples if s[name] is not None]
    if not alive:
        return {"at_warmup_end": None, "end": None, "steady_max": None, "growth_percent": None}
    steady = [s[name][metric] for s in alive if s["t_s"] >= warmup] or [alive[-1][name][metric]]
    first, last = steady[0], steady[-1]
    return {
        "at_warmup_end": first,
        "end": last,
        "steady_max": max(steady),
        "growth_percent": 100 * (last - first) / first if first else float("nan"),
    }


def api_figures(load: Load, elapsed: float) -> dict[str, Any]:
    ops = {}
    for op, lat in load.latencies_ms.items():
        statuses = load.statuses[op]
        ok = sum(n for s, n in statuses.items() if isinstance(s, int) and 200 <= s < 300)
        ops[op] = {
            "requests": len(lat),
            "p50_ms": percentile(lat, 0.5),
            "p99_ms": percentile(lat, 0.99),
            "max_ms": max(lat) if lat else float("nan"),
            "errors": len(lat) - ok,
            "statuses": dict(statuses),
        }
    every = [x for lat in load.latencies_ms.values() for x in lat]
    buckets = max(1, round(elapsed / 60))
    by_minute: list[list[tuple[float, bool]]] = [[] for _ in range(buckets)]
    for t, ms, ok in load.log:
        by_minute[min(buckets - 1, int(t // 60))].append((ms, ok))
    minutes = [
        {
            "minute": m,
            "requests": len(got),
            "p50_ms": percentile([ms for ms, _ in got], 0.5),
            "p99_ms": percentile([ms for ms, _ in got], 0.99),
            "errors": sum(1 for _, ok in got if not ok),
        }
        for m, got in enumerate(by_minute)
    ]
    return {
        "sent": load.sent,
        "requests": len(every),
        "per_s": len(every) / elapsed,
        "errors": sum(o["errors"] for o in ops.values()),
        "p50_ms": percentile(every, 0.5),
        "p99_ms": percentile(every, 0.99),
        "late_slots": load.late_slots,
        "reconnects": load.reconnects,
        "operations": ops,
        "per_minute": minutes,
    }


def log_problems(workdir: Path) -> dict[str, int]:
    found = {}
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace")
        found[log.name] = len(re.findall(r"\bERROR\b|Traceback", text))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10, help="whole run, warm-up included")
    # On SQLite at 1,000 results a second the page cache (64 MiB a connection) takes
    # about 4.5 minutes to fill: RSS rises until then (README "Soak and overload").
    parser.add_argument("--warmup", type=float, default=300, help="seconds before steady state")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--api-rate", type=float, default=100, help="API requests per second")
    parser.add_argument("--api-connections", type=int, default=4)
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    parser.add_argument("--ports", type=int, default=16, help="loopback listeners")
    args = parser.parse_args()
    if args.monitors <= SMALL_TEAM:
        parser.error(f"--monitors must be over {SMALL_TEAM} (that many go to the listed team)")
    if args.warmup >= args.minutes * 60:
        parser.error("--warmup must be shorter than the run (--minutes)")

    workdir = Path(tempfile.mkdtemp(prefix="upwatch-bench-soak-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench")
    )
    env = clean_env(UPWATCH_DATABASE_URL=url, UPWATCH_LOG_LEVEL="info")
    sink_proc, sink = start_sink(args.ports)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        upwatch(env, "migrate")
        keys = {}
        for team, limit in (("big", args.monitors - SMALL_TEAM), ("small", SMALL_TEAM)):
            upwatch(env, "teams", "create", team, "--max-monitors", str(limit))
            keys[team] = new_key(env, team)
        port = free_port()
        procs.update(start_upwatch(env, args.database, port, workdir))
        wait_healthy(f"http://127.0.0.1:{port}")
        # `serve`'s checker processes are watched too, each by its own name.
        watched = {name: p.pid for name, p in procs.items()}
        for name, p in procs.items():
            for i, pid in enumerate(children_of(p.pid), 1):
                watched[f"{name}-checker{i}"] = pid
        load, samples, t0, t1, create_s = uvloop.run(run(args, port, keys, sink, watched))
        codes = stop(list(procs.values()))
    finally:
        stop(list(procs.values()))
        sink_proc.terminate()
        sink_proc.wait()
    elapsed = (t1 - t0) / 1000
    checks = analyse(url, t0, t1)
    api = api_figures(load, elapsed)
    memory = {}
    for name in watched:
        alive = [s for s in samples if s[name] is not None]
        memory[name] = {
            "rss_mb": growth(samples, name, "rss_mb", args.warmup),
            "fds": growth(samples, name, "fds", args.warmup),
            "cpu_percent": 100
            * (alive[-1][name]["cpu_s"] - alive[0][name]["cpu_s"])
            / max(alive[-1]["t_s"] - alive[0]["t_s"], 1e-9)
            if len(alive) > 1
            else float("nan"),
            "alive_at_end": samples[-1][name] is not None,
        }
    result: dict[str, Any] = {
        "database": args.database,
        "monitors": args.monitors,
        "interval_s": args.interval,
        "duration_s": round(elapsed, 1),
        "warmup_s": args.warmup,
        "creates_per_s": args.monitors / create_s,
        "api_rate_offered": args.api_rate,
        "api_connections": args.api_connections,
        "checks": checks,
        "processes": memory,
        "api": api,
        "log_errors": log_problems(workdir),
        "exit_codes": codes,
        "samples": samples,
        "workdir": str(workdir),
    }
    rows: list[tuple[str, Any]] = [
        ("duration_s (warm-up)", f"{elapsed:,.0f} ({args.warmup:,.0f})"),
        ("checks_due", checks["checks_due"]),
        ("checks", checks["checks"]),
        ("missed", checks["missed"]),
        ("duplicates", checks["duplicates"]),
        (
            "lateness p50 / p99 / max ms",
            f"{checks['lateness_p50_ms']:.0f} / {checks['lateness_p99_ms']:.0f} / "
            f"{checks['lateness_max_ms']:.0f}",
        ),
    ]
    for name, fig in memory.items():
        for metric in ("rss_mb", "fds"):
            g = fig[metric]
            if g["end"] is None:
                rows.append((f"{name} {metric}", "process exited"))
                continue
            rows.append(
                (
                    f"{name} {metric} warm-up end → end (max)",
                    f"{g['at_warmup_end']:,} → {g['end']:,} ({g['steady_max']:,}): "
                    f"{g['growth_percent']:+.1f} %",
                )
            )
        rows.append((f"{name} cpu %", fig["cpu_percent"]))
    rows += [
        ("api requests (per s)", f"{api['requests']:,} ({api['per_s']:.1f}/s)"),
        ("api errors (non-2xx or no answer)", api["errors"]),
        ("api p50 / p99 ms", f"{api['p50_ms']:.1f} / {api['p99_ms']:.1f}"),
        ("api late slots (> 100 ms)", api["late_slots"]),
        ("api p99 by minute ms", ", ".join(f"{m['p99_ms']:.1f}" for m in api["per_minute"])),
    ]
    for op, fig in api["operations"].items():
        rows.append(
            (
                f"  {op}: n, p50 / p99 / max ms, errors",
                f"{fig['requests']:,}, {fig['p50_ms']:.1f} / {fig['p99_ms']:.1f} / "
                f"{fig['max_ms']:.1f}, {fig['errors']}",
            )
        )
    rows.append(
        ("ERROR lines in logs", ", ".join(f"{k} {v}" for k, v in result["log_errors"].items()))
    )
    rows.append(("exit codes", codes))
    print(
        table(
            f"upwatch soak: {args.monitors:,} monitors at {args.interval} s on {args.database}, "
            f"API at {args.api_rate:g} req/s",
            rows,
        )
    )
    path = write_json(f"soak-{args.database}-{args.monitors}", result)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
