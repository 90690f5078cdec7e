"""Statistics at a year's scale (SPEC §9, issue "Insight").

Builds, directly in the tables, N monitors (default 1,000) with a year of hourly and
daily rollups as 10 s checks would leave them, and 30 days of raw results for 10 of
them; then times, through the API in process (ASGI, no network):

- one monitor's stats over 365 days (rollups), and over the last 24 h (raw results);
- a series of 365 daily buckets;
- the team summary of every monitor over 30 days;

and reports storage per monitor-year of rollups and per million results, and the write
path's cost of rollups: CPU per result of saving batches (as the checker does) and
compacting them, against the same batches saved without rollups, in the same run.

    python bench/stats.py --database sqlite
    python bench/stats.py --database postgresql --monitors 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _common import pg_recreate, table, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.domain import NewMonitor, Observation, Outcome, Status, new_result_id
from upwatch.scheduler.planning import plan
from upwatch.scheduler.worker import ROLLUP_INTERVAL_S
from upwatch.sketch import Sketch
from upwatch.store import Store, open_engine, upgrade
from upwatch.store import results as result_rows

H, D = 3_600_000, 86_400_000
CHECKS_PER_HOUR = 360  # every 10 s
NOW = 1_800_000_000_000 - 1_800_000_000_000 % H + 17 * 60_000  # a fixed, mid-hour "now"
TEMPLATES = 48


def templates(rng: random.Random) -> list[tuple[list[int], bytes]]:
    """Hours of log-normal response times (median ~20 ms, some slow tails)."""
    out = []
    for _ in range(TEMPLATES):
        values = [
            max(1, round(rng.lognormvariate(math.log(20), 0.6))) for _ in range(CHECKS_PER_HOUR)
        ]
        s = Sketch()
        s.add_all(values)
        out.append((values, s.encode()))
    return out


async def build(
    store: Store, monitors: int, days: int, raw_monitors: int, raw_days: int
) -> dict[str, Any]:
    rng = random.Random(7)
    hours = templates(rng)
    created = NOW - (days + 1) * D
    team = (await store.teams.create("bench", max_monitors=monitors + 10, at=created)).id
    ids = []
    for i in range(monitors):
        m = await store.monitors.create(team, NewMonitor(f"m{i}", "127.0.0.1", 9), at=created)
        ids.append(m.id)
    dialect = store.db.name
    first_day = NOW - NOW % D - days * D
    t0 = time.perf_counter()
    rows = 0
    for n, monitor_id in enumerate(ids):
        batch: list[tuple[Any, ...]] = []
        for day in range(days):
            day_start = first_day + day * D
            merged = Sketch()
            up = rt_sum = 0
            lo, hi = 10**9, 0
            for h in range(24):
                values, blob = hours[(n + day * 24 + h) % TEMPLATES]
                batch.append(
                    (
                        monitor_id,
                        3600,
                        day_start + h * H,
                        CHECKS_PER_HOUR,
                        0,
                        0,
                        sum(values),
                        min(values),
                        max(values),
                        blob,
                    )
                )
                merged.merge(Sketch.decode(blob))
                up += CHECKS_PER_HOUR
                rt_sum += sum(values)
                lo, hi = min(lo, min(values)), max(hi, max(values))
            batch.append((monitor_id, 86400, day_start, up, 0, 0, rt_sum, lo, hi, merged.encode()))
        await _insert_rollups(store, dialect, batch)
        rows += len(batch)
    rollup_s = time.perf_counter() - t0
    # Raw results for a few monitors, at 10 s.
    t0 = time.perf_counter()
    raw = 0
    for monitor_id in ids[:raw_monitors]:
        start = NOW - raw_days * D
        batch = []
        for k in range(raw_days * 24 * CHECKS_PER_HOUR):
            at = start + k * 10_000
            rt = max(1, round(rng.lognormvariate(math.log(20), 0.6)))
            batch.append((new_result_id(at), monitor_id, "up", rt, None, at, None, 2, None))
            if len(batch) >= 50_000:
                await _insert_results(store, dialect, batch)
                raw += len(batch)
                batch = []
        await _insert_results(store, dialect, batch)
        raw += len(batch)
    raw_s = time.perf_counter() - t0
    return {
        "team": team,
        "ids": ids,
        "rollup_rows": rows,
        "raw_results": raw,
        "build_rollups_s": rollup_s,
        "build_raw_s": raw_s,
    }


async def _insert_rollups(store: Store, dialect: str, rows: list[tuple[Any, ...]]) -> None:
    cols = "monitor_id, span, start, up, down, timeout, rt_sum, rt_min, rt_max, sketch"
    async with store.db.write() as tx:
        if dialect == "postgresql":
            await tx.driver.copy_records_to_table("rollups", records=rows, columns=cols.split(", "))
        else:
            await tx.driver.executemany(
                f"INSERT INTO rollups ({cols}) VALUES ({', '.join('?' * 10)})", rows
            )


async def _insert_results(store: Store, dialect: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    cols = list(result_rows.RESULT_COLUMNS)
    async with store.db.write() as tx:
        if dialect == "postgresql":
            await tx.driver.copy_records_to_table("check_results", records=rows, columns=cols)
        else:
            marks = ", ".join("?" * len(cols))
            await tx.driver.executemany(
                f"INSERT INTO check_results ({', '.join(cols)}) VALUES ({marks})", rows
            )


async def timed(n: int, call: Callable[[], Awaitable[httpx.Response]]) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await call()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[min(n - 1, int(n * 0.99))]}


async def storage(store: Store, dialect: str) -> dict[str, float]:
    async with store.db.read() as reads:
        if dialect == "postgresql":
            from sqlalchemy import text

            r = await reads.first(
                text(
                    "SELECT pg_total_relation_size('rollups') AS rollups, "
                    "pg_total_relation_size('check_results') AS results, "
                    "(SELECT count(*) FROM rollups) AS nr, "
                    "(SELECT count(*) FROM check_results) AS nc"
                )
            )
            rollups_bytes, results_bytes, rollup_rows, result_rows = r
            return {
                "rollups_bytes": rollups_bytes,
                "results_bytes": results_bytes,
                "rollup_rows": rollup_rows,
                "result_rows": result_rows,
            }
    return {}


def sqlite_storage(path: str) -> dict[str, float]:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        sizes = dict(con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        nr = con.execute("SELECT count(*) FROM rollups").fetchone()[0]
        nc = con.execute("SELECT count(*) FROM check_results").fetchone()[0]
    finally:
        con.close()
    rollups = sum(v for k, v in sizes.items() if "rollups" in k and "pending" not in k)
    results = sum(v for k, v in sizes.items() if "check_results" in k)
    return {
        "rollups_bytes": rollups,
        "results_bytes": results,
        "rollup_rows": nr,
        "result_rows": nc,
    }


async def write_cost(store: Store, ids: list[str], rounds: int) -> dict[str, float]:
    """CPU per result of saving one check of every monitor per batch (a 10 s interval),
    with rollups pending and compacted every ROLLUP_INTERVAL_S as the worker does, and
    without rollups, alternating rounds in the same run."""
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=len(ids), planner=partial(plan, at=10**15)
    )
    checks = [p.check for p in plans]
    per_compaction = max(1, round(ROLLUP_INTERVAL_S / 10))
    at = NOW + H
    rng = random.Random(3)
    original = result_rows.rollup_rows.add_pending

    async def nothing(tx: Any, results: Any) -> None:
        del tx, results

    cpu = {"with": 0.0, "without": 0.0, "compact": 0.0}
    saved = {"with": 0, "without": 0}
    for i in range(rounds * 2):
        mode = "with" if i % 2 == 0 else "without"
        result_rows.rollup_rows.add_pending = original if mode == "with" else nothing  # type: ignore[assignment]
        for _ in range(per_compaction):
            observations = [
                Observation(c, Outcome(Status.UP, response_time_ms=rng.randint(5, 50)), at + k)
                for k, c in enumerate(checks)
            ]
            at += 10_000
            t0 = time.process_time()
            await store.results.save(observations)
            cpu[mode] += time.process_time() - t0
            saved[mode] += len(observations)
        if mode == "with":
            t0 = time.process_time()
            await store.rollups.compact()
            cpu["compact"] += time.process_time() - t0
    result_rows.rollup_rows.add_pending = original  # type: ignore[assignment]
    with_us = 1e6 * (cpu["with"] + cpu["compact"]) / saved["with"]
    without_us = 1e6 * cpu["without"] / saved["without"]
    return {
        "save+compact with rollups us/result": with_us,
        "save without rollups us/result": without_us,
        "of which compaction us/result": 1e6 * cpu["compact"] / saved["with"],
        "added us/result": with_us - without_us,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--monitors", type=int, default=1000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--raw-monitors", type=int, default=10)
    p.add_argument("--raw-days", type=int, default=30)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="upwatch-stats-")
    if args.database == "postgresql":
        url = pg_recreate("upwatch_bench_stats")
    else:
        url = f"sqlite:///{tmp}/stats.db"
    asyncio.run(run(args, url, tmp))


async def run(args: argparse.Namespace, url: str, tmp: str) -> None:
    store = Store(open_engine(url), default_max_monitors=args.monitors + 10)
    await upgrade(store.engine)
    built = await build(store, args.monitors, args.days, args.raw_monitors, args.raw_days)
    if args.database == "postgresql":
        async with store.db.write() as tx:
            await tx.driver.execute("ANALYZE")
    # What serve does once it is up (service.py): what lives as long as the process is
    # out of the collector's sight, so a full collection does not walk it.
    gc.collect()
    gc.freeze()
    clock = FakeClock(NOW)
    app = create_app(
        Settings(
            result_retention_days=args.raw_days + 1,
            rate_limit_per_minute=0,
            max_requests_in_flight=0,
            shed_target_ms=0,
        ),
        store,
        clock=clock,
    )
    from upwatch.domain import SCOPES

    _, key = await store.keys.create(team="bench", name=None, scopes=SCOPES, at=NOW)
    headers = {"Authorization": f"Bearer {key}"}
    raw_id, rolled_id = built["ids"][0], built["ids"][-1]
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))  # noqa: E731
    transport = httpx.ASGITransport(app=app)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers
    ) as c:
        year = {"from": iso(NOW - 365 * D), "to": iso(NOW)}
        base = "/v1/tcp-monitors"
        cases = {
            "stats 365 d (rollups)": lambda: c.get(f"{base}/{rolled_id}/stats", params=year),
            "stats 24 h (raw results)": lambda: c.get(f"{base}/{raw_id}/stats"),
            "series 365 x 1d": lambda: c.get(
                f"{base}/{rolled_id}/stats/series", params={**year, "bucket": "1d"}
            ),
            f"team summary {args.monitors} x 30 d": lambda: c.get(
                "/v1/stats/tcp-monitors", params={"from": iso(NOW - 30 * D), "to": iso(NOW)}
            ),
        }
        for name, call in cases.items():
            await call()  # warm
            n = args.requests if "team" not in name else max(20, args.requests // 10)
            figures[name] = await timed(n, call)
    sizes = (
        await storage(store, "postgresql")
        if args.database == "postgresql"
        else sqlite_storage(f"{tmp}/stats.db")
    )
    monitor_years = args.monitors * args.days / 365
    if sizes:
        figures["rollup bytes per monitor-year"] = sizes["rollups_bytes"] / monitor_years
        figures["result bytes per million"] = (
            sizes["results_bytes"] / max(1, sizes["result_rows"]) * 1e6
        )
    figures["write path"] = await write_cost(store, built["ids"], rounds=5)
    await store.close()
    rows = []
    for name, value in figures.items():
        if isinstance(value, dict):
            rows += [(f"{name}: {k}", round(v, 2)) for k, v in value.items()]
        else:
            rows.append((name, round(value)))
    rows += [
        ("build: rollup rows", built["rollup_rows"]),
        ("build: raw results", built["raw_results"]),
    ]
    print(table(f"bench/stats.py on {args.database}", rows))
    write_json(
        f"stats-{args.database}",
        {
            "args": vars(args),
            "figures": figures,
            "built": {k: v for k, v in built.items() if k != "ids"},
        },
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
