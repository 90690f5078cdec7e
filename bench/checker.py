"""How many monitors one upwatch process (or K workers) carries, and at what cost.

Starts loopback listeners, starts upwatch (`serve` on SQLite; `api` plus K `worker`s on
PostgreSQL), creates N monitors through the API, lets them run, then reports checks per
second achieved against due, lateness (checkedAt minus the due time) p50/p99/max, missed
checks, CPU % and peak RSS of the upwatch processes and CPU µs per check. In the same
run it measures the bare reference loop (bench/reference.py) and, when Debian's
prometheus-blackbox-exporter is installed, blackbox_exporter's tcp_connect probe.

    python bench/checker.py --monitors 20000 --interval 10 --duration 60 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop
from _common import (
    children_of,
    clean_env,
    cpu_of,
    cpu_seconds,
    free_port,
    new_key,
    percentile,
    pg_recreate,
    postgres_pids,
    start_sink,
    start_upwatch,
    status_kb,
    stop,
    table,
    upwatch,
    wait_healthy,
    write_json,
)
from _load import API, drive
from _visibility import Watcher

CREATE_CONCURRENCY = 16
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
WINDOW_MARGIN_MS = 1000


async def create_monitors(base: str, key: str, ports: list[int], n: int, interval: int) -> float:
    """Create n monitors through the API; returns creates per second."""
    headers = {"Authorization": f"Bearer {key}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def creator(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {
                "name": f"bench-{i}",
                "host": "127.0.0.1",
                "port": ports[i % len(ports)],
                "intervalSeconds": interval,
                "timeoutMs": 5000,
            }
            for _ in range(5):
                r = await client.post(f"{base}{API}", json=body, headers=headers)
                if r.status_code == 201:
                    break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"create failed: {r.status_code} {r.text}")

    start = time.monotonic()
    limits = httpx.Limits(max_connections=CREATE_CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(creator(client) for _ in range(CREATE_CONCURRENCY)))
    return n / (time.monotonic() - start)


def fetch_rows(
    url: str, t0: int, t1: int
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """(monitor id, created_at, interval_s) for every monitor; (monitor id, checked_at) for
    every result checked in [t0, t1)."""
    monitors_sql = "SELECT id, created_at, interval_s FROM monitors"
    results_sql = (
        "SELECT monitor_id, checked_at FROM check_results "
        "WHERE checked_at >= {} AND checked_at < {}"
    )
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return (
                db.execute(monitors_sql).fetchall(),
                db.execute(results_sql.format(t0, t1)).fetchall(),
            )
        finally:
            db.close()
    import asyncpg

    async def go() -> tuple[list[Any], list[Any]]:
        conn = await asyncpg.connect(url)
        try:
            return (
                [tuple(r) for r in await conn.fetch(monitors_sql)],
                [tuple(r) for r in await conn.fetch(results_sql.format(t0, t1))],
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def analyse(url: str, t0: int, t1: int, watcher: Watcher | None = None) -> dict[str, Any]:
    """Checks run on each monitor's grid, created_at + k * interval: each result is matched
    to its slot k, its lateness is checkedAt minus the slot's due time (signed), and a
    slot due in the window that has no result is a missed check. The window's last
    second is left out, so that a check due then and run late is not counted missed."""
    monitors, results = fetch_rows(url, t0 - WINDOW_MARGIN_MS, t1)
    grid = {m: (created, interval * 1000) for m, created, interval in monitors}
    end = t1 - WINDOW_MARGIN_MS
    seen: dict[tuple[str, int], int] = {}
    lateness = []
    for monitor_id, checked_at in results:
        created, interval_ms = grid[monitor_id]
        slot = round((checked_at - created) / interval_ms)
        due = created + slot * interval_ms
        if t0 <= due < end:
            seen[(monitor_id, slot)] = seen.get((monitor_id, slot), 0) + 1
            lateness.append(float(checked_at - due))
    expected = 0
    for created, interval_ms in grid.values():
        first = -(-(t0 - created) // interval_ms)  # first slot due at or after t0
        last = -(-(end - created) // interval_ms)  # first slot due at or after end
        expected += max(0, last - max(first, 0))
    visibility = {} if watcher is None else watcher.report(results, grid, t0, end)
    return {
        "monitors": len(grid),
        "checks": len(lateness),
        "checks_due": expected,
        "missed": expected - len(seen),
        "duplicates": sum(n - 1 for n in seen.values()),
        "lateness_p50_ms": percentile(lateness, 0.5),
        "lateness_p99_ms": percentile(lateness, 0.99),
        "lateness_max_ms": max(lateness) if lateness else float("nan"),
        "lateness_min_ms": min(lateness) if lateness else float("nan"),
        **{f"results_{k}": v for k, v in visibility.items()},
    }


def reference(ports: list[int], n: int, interval: int, duration: float) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "reference.py"),
            "--ports",
            ",".join(map(str, ports)),
            "--monitors",
            str(n),
            "--interval",
            str(interval),
            "--warmup",
            str(interval),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def blackbox(ports: list[int], duration: float) -> dict[str, Any] | None:
    """blackbox_exporter's tcp_connect against the same listeners, driven as fast as 32
    keep-alive connections go (its probes are requests; it stores nothing)."""
    if not shutil.which(BLACKBOX):
        return None
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as cfg:
        cfg.write("modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n")
    proc = subprocess.Popen(
        [BLACKBOX, f"--config.file={cfg.name}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)

        def probe_request(i: int) -> bytes:
            target = f"127.0.0.1:{ports[i % len(ports)]}"
            return (
                f"GET /probe?module=tcp_connect&target={target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            ).encode()

        cpu0 = cpu_seconds(proc.pid)
        outcome = uvloop.run(drive(port, probe_request, concurrency=32, duration_s=duration))
        cpu1 = cpu_seconds(proc.pid)
        probes = outcome.statuses.get(200, 0)
        return {
            "probes": probes,
            "probes_per_s": probes / outcome.elapsed_s,
            "cpu_percent": 100 * (cpu1 - cpu0) / outcome.elapsed_s,
            "cpu_us_per_probe": 1e6 * (cpu1 - cpu0) / max(probes, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        Path(cfg.name).unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="checker processes: `worker`s on PostgreSQL, `serve --checker-processes` on SQLite",
    )
    parser.add_argument("--ports", type=int, default=16, help="loopback listeners")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--visibility-sample",
        type=int,
        default=500,
        help="monitors whose results are polled to see when each becomes readable (0: off)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="upwatch-bench-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench")
    )
    env = clean_env(UPWATCH_DATABASE_URL=url, UPWATCH_LOG_LEVEL="info")
    sink, ports = start_sink(args.ports)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upwatch(env, "migrate")
        upwatch(env, "teams", "create", "bench", "--max-monitors", str(args.monitors))
        key = new_key(env, "bench")
        api_port = free_port()
        base = f"http://127.0.0.1:{api_port}"
        started = start_upwatch(env, args.database, api_port, workdir, workers=args.workers)
        procs.extend(started.values())
        checkers = {name: p for name, p in started.items() if name != "api"}
        wait_healthy(base)
        print(f"creating {args.monitors:,} monitors through the API…", file=sys.stderr)
        create_rate = asyncio.run(create_monitors(base, key, ports, args.monitors, args.interval))
        print(
            f"warming up for {args.interval} s, then measuring {args.duration:.0f} s…",
            file=sys.stderr,
        )
        time.sleep(args.interval)
        # `serve`'s checks run in a child process of its own: counted with it.
        ours = {p.pid: [p.pid, *children_of(p.pid)] for p in procs}
        pids = [pid for group in ours.values() for pid in group]
        watcher = Watcher(url, args.visibility_sample) if args.visibility_sample else None
        if watcher is not None:
            watcher.start()
        server = postgres_pids() if args.database == "postgresql" else []
        cpu0, db0 = cpu_of(pids), cpu_of(server)
        t0_wall, t0 = int(time.time() * 1000), time.monotonic()
        time.sleep(args.duration)
        cpu1, db1 = cpu_of(pids), cpu_of(postgres_pids() if server else [])
        t1_wall, t1 = int(time.time() * 1000), time.monotonic()
        if watcher is not None:
            watcher.stop()
        rss = {pid: status_kb(pid, "VmHWM") / 1024 for pid in pids}
        codes = stop(procs)
    finally:
        stop(procs)
    figures = analyse(url, t0_wall, t1_wall, watcher)
    elapsed = t1 - t0

    def used(group: list[int]) -> float:
        return sum(cpu1.get(pid, cpu0[pid]) - cpu0[pid] for pid in group if pid in cpu0)

    # The checks' CPU: `serve`'s checker processes (the API is `serve` itself), or workers.
    checker_cpu = sum(used(ours[p.pid][1:] or [p.pid]) for p in checkers.values())
    all_cpu = used(pids)
    db_cpu = sum(db1[pid] - db0.get(pid, 0.0) for pid in db1)
    shares = []
    for name in checkers:
        log = (workdir / f"{name}.log").read_text()
        found = re.findall(r"(\d+) checks run", log)  # `serve`: one line per checker process
        shares.extend(int(n) for n in (found if name == "serve" else found[-1:]))
    result: dict[str, Any] = {
        "database": args.database,
        "workers": args.workers,
        "monitors": args.monitors,
        "interval_s": args.interval,
        "duration_s": round(elapsed, 1),
        "creates_per_s": create_rate,
        "checks_per_s": figures["checks"] / (elapsed - WINDOW_MARGIN_MS / 1000),
        "checks_due_per_s": args.monitors / args.interval,
        **figures,
        "cpu_percent_all": 100 * all_cpu / elapsed,
        "cpu_percent_checkers": 100 * checker_cpu / elapsed,
        "cpu_us_per_check": 1e6 * all_cpu / max(figures["checks"], 1),
        **(
            {
                "postgresql_cpu_percent": 100 * db_cpu / elapsed,
                "postgresql_cpu_us_per_check": 1e6 * db_cpu / max(figures["checks"], 1),
            }
            if server
            else {}
        ),
        "rss_peak_mb": {str(pid): round(mb, 1) for pid, mb in rss.items()},
        "checks_per_worker": shares,
        "exit_codes": codes,
    }
    if not args.no_reference:
        print("measuring the bare reference loop…", file=sys.stderr)
        ref = reference(ports, args.monitors, args.interval, min(args.duration, 30))
        result["reference"] = ref
        result["cpu_ratio_to_reference"] = result["cpu_us_per_check"] / ref["cpu_us_per_check"]
        bb = blackbox(ports, min(args.duration, 20))
        if bb:
            result["blackbox_exporter"] = bb
    sink.terminate()
    sink.wait()
    rows = [(k, v) for k, v in result.items() if not isinstance(v, dict)]
    for name in ("reference", "blackbox_exporter"):
        rows += [(f"{name}.{k}", v) for k, v in result.get(name, {}).items()]
    rows.append(("rss_peak_mb", ", ".join(f"{v} MB" for v in result["rss_peak_mb"].values())))
    print(
        table(
            f"upwatch checker: {args.monitors:,} monitors at {args.interval} s on {args.database}",
            rows,
        )
    )
    path = write_json(f"checker-{args.database}-{args.monitors}-w{args.workers}", result)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
