"""API throughput and latency with 10,000 monitors stored and their checks running.

One API process (`serve` on SQLite; `api` beside a `worker` on PostgreSQL). Each
operation runs at a fixed concurrency for a fixed time; reports requests/s and p50/p99
latency per operation, and any non-2xx answers.

    python bench/api.py --database sqlite --monitors 10000 --concurrency 16 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvloop
from _common import (
    clean_env,
    free_port,
    new_key,
    percentile,
    pg_recreate,
    start_sink,
    start_upwatch,
    stop,
    upwatch,
    wait_healthy,
    write_json,
)
from _load import API, drive, monitor_body, one, request


async def ids_of(port: int, key: str) -> list[str]:
    status, body = await one(port, request("GET", API, key))
    assert status == 200, body
    return [m["id"] for m in json.loads(body)["data"]]


def figures(name: str, outcome: Any) -> dict[str, Any]:
    ok = sum(n for s, n in outcome.statuses.items() if 200 <= s < 300)
    return {
        "operation": name,
        "requests": len(outcome.latencies_ms),
        "per_s": len(outcome.latencies_ms) / outcome.elapsed_s,
        "p50_ms": percentile(outcome.latencies_ms, 0.5),
        "p99_ms": percentile(outcome.latencies_ms, 0.99),
        "non_2xx": len(outcome.latencies_ms) - ok,
        "statuses": outcome.statuses,
    }


async def run(
    args: argparse.Namespace, port: int, keys: dict[str, str], sink: list[int]
) -> list[dict[str, Any]]:
    big, small, churn = keys["big"], keys["small"], keys["churn"]
    c, secs = args.concurrency, args.seconds
    rows = []
    created = await drive(
        port,
        lambda i: request("POST", API, big, monitor_body(f"m{i}", sink[i % len(sink)], 10)),
        concurrency=c,
        duration_s=3600,
        max_requests=args.monitors,
    )
    rows.append(figures(f"POST (storing the {args.monitors:,})", created))
    for i in range(100):
        await one(port, request("POST", API, small, monitor_body(f"m{i}", sink[0], 10)))
    monitors = await ids_of(port, big)
    print(f"{len(monitors):,} monitors stored; checks running", file=sys.stderr)
    await asyncio.sleep(args.settle)
    rng = random.Random(7)
    ops = [
        ("GET one monitor", lambda i: request("GET", f"{API}/{rng.choice(monitors)}", big)),
        (
            "GET results (limit 50)",
            lambda i: request("GET", f"{API}/{rng.choice(monitors)}/results?limit=50", big),
        ),
        ("GET list (100 monitors)", lambda i: request("GET", API, small)),
        (
            "PUT (rename)",
            lambda i: request(
                "PUT", f"{API}/{rng.choice(monitors)}", big, json.dumps({"name": f"r{i}"}).encode()
            ),
        ),
        ("POST", lambda i: request("POST", API, churn, monitor_body(f"m{i}", sink[0], 10))),
    ]
    for name, make in ops:
        outcome = await drive(port, make, concurrency=c, duration_s=secs)
        rows.append(figures(name, outcome))
        print(f"{name}: {rows[-1]['per_s']:.0f}/s", file=sys.stderr)
    doomed = await ids_of(port, churn)
    outcome = await drive(
        port,
        lambda i: request("DELETE", f"{API}/{doomed[i]}", churn),
        concurrency=c,
        duration_s=secs,
        max_requests=len(doomed),
    )
    rows.append(figures("DELETE", outcome))
    outcome = await drive(port, lambda i: request("GET", API, big), concurrency=2, duration_s=secs)
    rows.append(figures(f"GET list ({len(monitors):,} monitors)", outcome))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--settle", type=float, default=10, help="seconds of checks first")
    parser.add_argument(
        "--log-level", default="warning", help="the server's (info: an access line a request)"
    )
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="upwatch-bench-api-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench")
    )
    env = clean_env(
        UPWATCH_DATABASE_URL=url,
        UPWATCH_LOG_LEVEL=args.log_level,
        UPWATCH_LOG_FORMAT=args.log_format,
    )
    sink_proc, sink = start_sink(16)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upwatch(env, "migrate")
        keys = {}
        for team, limit in (("big", args.monitors), ("small", 100), ("churn", 10**6)):
            upwatch(env, "teams", "create", team, "--max-monitors", str(limit))
            keys[team] = new_key(env, team)
        port = free_port()
        procs.extend(start_upwatch(env, args.database, port, workdir).values())
        wait_healthy(f"http://127.0.0.1:{port}")
        rows = uvloop.run(run(args, port, keys, sink))
    finally:
        stop(procs)
        sink_proc.terminate()
        sink_proc.wait()
    title = (
        f"upwatch API on {args.database}: {args.monitors:,} monitors stored, checks running, "
        f"concurrency {args.concurrency}, logs {args.log_level} as {args.log_format}"
    )
    print(title)
    print("-" * len(title))
    print(f"{'operation':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in rows:
        print(
            f"{r['operation']:34} {r['per_s']:8.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['non_2xx']:8d}"
        )
    path = write_json(
        f"api-{args.database}",
        {
            "database": args.database,
            "monitors": args.monitors,
            "concurrency": args.concurrency,
            "log_level": args.log_level,
            "log_format": args.log_format,
            "operations": rows,
        },
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
