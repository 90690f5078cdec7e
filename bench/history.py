"""Reading a long history: one monitor with 1,000,000 results, in a table of 10,000,000
(PostgreSQL) or 1,000,000 (SQLite). Times the first page, a page at offset 10,000, and
the page's `pagination.total`, through the API, p50/p99.

    python bench/history.py --database postgresql
    python bench/history.py --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from _common import (
    clean_env,
    free_port,
    percentile,
    pg_recreate,
    spawn,
    stop,
    upwatch,
    wait_healthy,
    write_json,
)
from _load import API, drive, request

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INTERVAL_MS = 10_000


def monitor_row_sql(i: int, team: int, count: int) -> str:
    return (
        "INSERT INTO monitors (id, team_id, name, host, port, timeout_ms, interval_s, "
        "is_enabled, created_at, updated_at, next_due_at, generation, result_count) VALUES "
        f"('tcpm_history{i:06d}', {team}, 'history {i}', '127.0.0.1', 9, 1000, 10, "
        f"false, {T0}, {T0}, {T0}, 0, {count})"
    )


def fill_postgres(url: str, monitors: int, per_monitor: int) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            team = await conn.fetchval("SELECT id FROM teams WHERE name = 'history'")
            for i in range(monitors):
                await conn.execute(monitor_row_sql(i, team, per_monitor))
                await conn.execute(
                    "INSERT INTO check_results (id, monitor_id, checked_at, status, "
                    "response_time_ms, error) "
                    f"SELECT 'tcpr_h{i:03d}_' || lpad(g::text, 9, '0'), 'tcpm_history{i:06d}', "
                    f"{T0} + g * {INTERVAL_MS}::bigint, "
                    "CASE WHEN g % 100 = 0 THEN 'down' ELSE 'up' END, "
                    "CASE WHEN g % 100 = 0 THEN NULL ELSE 1 + g % 50 END, "
                    "CASE WHEN g % 100 = 0 THEN 'Connection refused' END "
                    f"FROM generate_series(1, {per_monitor}) AS g"
                )
                print(f"  monitor {i + 1}/{monitors} filled", file=sys.stderr)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(go())


def fill_sqlite(path: str, per_monitor: int) -> None:
    db = sqlite3.connect(path)
    try:
        team = db.execute("SELECT id FROM teams WHERE name = 'history'").fetchone()[0]
        db.execute(monitor_row_sql(0, team, per_monitor).replace("false", "0"))
        rows = (
            (
                f"tcpr_h000_{g:09d}",
                "tcpm_history000000",
                T0 + g * INTERVAL_MS,
                "down" if g % 100 == 0 else "up",
                None if g % 100 == 0 else 1 + g % 50,
                "Connection refused" if g % 100 == 0 else None,
            )
            for g in range(1, per_monitor + 1)
        )
        db.executemany("INSERT INTO check_results VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()
        db.execute("ANALYZE")
    finally:
        db.close()


async def measure(port: int, key: str, samples: int) -> list[dict[str, Any]]:
    path = f"{API}/tcpm_history000000/results"
    rows = []
    for name, query in (
        ("first page (limit 50)", "?limit=50"),
        ("page at offset 10,000", "?limit=50&offset=10000"),
        ("last page (offset 999,950)", "?limit=50&offset=999950"),
        ("pagination.total (limit 1)", "?limit=1"),
    ):
        payload = request("GET", path + query, key)
        await drive(port, lambda i, p=payload: p, concurrency=1, duration_s=60, max_requests=20)
        outcome = await drive(
            port, lambda i, p=payload: p, concurrency=1, duration_s=120, max_requests=samples
        )
        rows.append(
            {
                "query": name,
                "requests": len(outcome.latencies_ms),
                "p50_ms": percentile(outcome.latencies_ms, 0.5),
                "p99_ms": percentile(outcome.latencies_ms, 0.99),
                "statuses": outcome.statuses,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--results", type=int, default=1_000_000, help="for the one monitor")
    parser.add_argument(
        "--table", type=int, default=None, help="rows in all (default: 10x on PostgreSQL)"
    )
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    total = args.table or (args.results * 10 if args.database == "postgresql" else args.results)

    workdir = Path(tempfile.mkdtemp(prefix="upwatch-bench-history-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench_history")
    )
    env = clean_env(UPWATCH_DATABASE_URL=url, UPWATCH_LOG_LEVEL="warning")
    upwatch(env, "migrate")
    upwatch(env, "teams", "create", "history", "--max-monitors", "100")
    key = upwatch(env, "keys", "create", "--team", "history", "--scope", "tcp-monitors:read")
    print(f"filling {total:,} results…", file=sys.stderr)
    started = time.monotonic()
    if args.database == "sqlite":
        fill_sqlite(url.removeprefix("sqlite:///"), args.results)
    else:
        fill_postgres(url, max(1, total // args.results), args.results)
    filled_s = time.monotonic() - started
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = [
        spawn(env, "api", "--port", str(port), log=workdir / "api.log")
    ]
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        rows = uvloop.run(measure(port, key, args.samples))
    finally:
        stop(procs)
    title = (
        f"upwatch history on {args.database}: {args.results:,} results for one monitor, "
        f"{total:,} in the table"
    )
    print(title)
    print("-" * len(title))
    print(f"{'query':30} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r['query']:30} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    path = write_json(
        f"history-{args.database}",
        {
            "database": args.database,
            "results": args.results,
            "table_rows": total,
            "fill_seconds": round(filled_s, 1),
            "queries": rows,
        },
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
