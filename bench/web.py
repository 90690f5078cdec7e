"""The web at scale (SPEC §10, issue "The web"): the dashboard and the public status page.

The dashboard: a team of --dashboard-monitors monitors (1,000) with 90 days of hourly
and daily rollups (bench/stats.py's builder) and a logged-in admin; measured in process
(ASGI, no sockets), a logged-in GET / as a browser sends it (gzip accepted): server time
p50/p99 with the team's 24-hour figures computed for each request (the first look after
their 10 s lifetime) and cached (the live refresh of everyone else), and the bytes of a
first visit (the page, its stylesheet and scripts, each gzipped as served). Also a
monitor's page and its chart data.

The status page: 50 monitors with 90 days of history (incidents every few days, a
recurring maintenance window), then:

- uncached: reading and rendering the page (store + template), in process;
- cached: a request served from the page cache, in process (ASGI, no sockets);
- sustained: GET /status/<slug> against a live `upwatch serve` on SQLite from 16
  keep-alive connections (bench/_load.py), requests per second and p99.

    python bench/web.py --monitors 50 --seconds 10 --dashboard-monitors 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _common import clean_env, free_port, spawn, stop, table, wait_healthy, write_json
from _load import drive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stats import NOW
from stats import build as build_rollups

from upwatch import web
from upwatch.api import create_app
from upwatch.clock import FakeClock
from upwatch.config import Settings
from upwatch.domain import NewMonitor, Observation, Outcome, Status
from upwatch.maintenance import Recurring
from upwatch.scheduler.planning import plan
from upwatch.security import hash_password
from upwatch.store import Store, open_engine, upgrade
from upwatch.users import Role
from upwatch.web.status import html

D, H, M = 86_400_000, 3_600_000, 60_000
SLUG = "bench"
PW = "correct horse battery"


async def build(url: str, monitors: int, now: int) -> str:
    store = Store(open_engine(url), default_max_monitors=monitors + 10)
    await upgrade(store.engine)
    rng = random.Random(5)
    created = now - 100 * D
    team = (await store.teams.create("bench", max_monitors=monitors + 10, at=created)).id
    ids = []
    for i in range(monitors):
        new = NewMonitor(f"service {i}", "127.0.0.1", 9, interval_s=86_400, confirmation_checks=1)
        ids.append((await store.monitors.create(team, new, at=created)).id)
    plans = await store.schedule.claim_due(
        horizon=10**15, limit=monitors, planner=partial(plan, at=10**15)
    )
    for p in plans:
        at = created
        events = [(at, Status.UP)]
        while at < now - D:
            at += rng.randint(2, 8) * D + rng.randint(0, 23) * H
            events += [(at, Status.DOWN), (at + rng.randint(1, 90) * M, Status.UP)]
        for t, status in events:
            outcome = (
                Outcome(status, response_time_ms=3)
                if status is Status.UP
                else Outcome(status, error="Connection refused")
            )
            await store.results.save([Observation(p.check, outcome, t)])
    weekly = Recurring("FREQ=WEEKLY;BYDAY=SU", "02:00", 60, "Europe/Berlin", "2026-01-04")
    await store.windows.create(team, name="weekly", monitor_ids=[], schedule=weekly, at=created)
    await store.status_pages.create(
        team,
        name="Bench status",
        slug=SLUG,
        monitor_ids=ids,
        is_public=True,
        show_targets=False,
        at=created,
    )
    await store.close()
    return url


async def in_process(url: str, n: int) -> dict[str, Any]:
    store = Store(open_engine(url), default_max_monitors=1000)
    now = int(time.time() * 1000)
    page = await store.status_pages.by_slug(SLUG)
    assert page is not None
    uncached = []
    for _ in range(n):
        t0 = time.perf_counter()
        view = await store.status_views.view(page, now=now)
        html(view)
        uncached.append((time.perf_counter() - t0) * 1000)
    app = create_app(Settings(rate_limit_per_minute=0), store)
    web.install(app)
    cached = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        first = await client.get(f"/status/{SLUG}", headers={"Accept-Encoding": "gzip"})
        size = len(first.content)
        wire = int(first.headers.get("content-length", 0)) or size
        for _ in range(n * 5):
            t0 = time.perf_counter()
            r = await client.get(f"/status/{SLUG}")
            cached.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
    await store.close()
    return {
        "uncached": _summary(uncached),
        "cached (ASGI, in process)": _summary(cached),
        "page bytes": size,
        "page bytes gzipped": wire,
    }


async def dashboard(url: str, monitors: int, n: int, *, build: bool) -> dict[str, Any]:
    """The dashboard of ``monitors`` monitors with 90 days of rollups, in process."""
    store = Store(open_engine(url), default_max_monitors=monitors + 10)
    await upgrade(store.engine)
    if build:
        await build_rollups(store, monitors, 90, 1, 2)
        await store.users.create(
            team="bench",
            email="b@example.com",
            role=Role.ADMIN,
            password_hash=hash_password(PW),
            at=0,
        )
    app = create_app(Settings(rate_limit_per_minute=0), store, clock=FakeClock(NOW))
    web.install(app)
    figures: dict[str, Any] = {}
    transport = httpx.ASGITransport(app=app)
    gzip = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = (await client.get("/login")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "email": "b@example.com", "password": PW}
        assert (await client.post("/login", data=form)).status_code == 303
        first = await client.get("/", headers=gzip)
        assert first.status_code == 200
        sent = int(first.headers["content-length"])
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', first.text):
            sent += int((await client.get(asset, headers=gzip)).headers["content-length"])
        figures["first visit bytes (page, CSS, JS; gzipped)"] = sent
        figures["page bytes (raw)"] = len(first.text.encode())
        for name, fresh in (("GET / (day figures computed)", True), ("GET / (cached)", False)):
            times = []
            for _ in range(n):
                if fresh:  # as the first look after the figures' lifetime
                    web.dashboard.install_cache(app)
                t0 = time.perf_counter()
                r = await client.get("/", headers=gzip)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            figures[name] = _summary(times)
        monitor = re.search(r"/monitors/(tcpm_\w+)", first.text)
        assert monitor is not None
        for name, path in (
            ("GET /monitors/<id>", f"/monitors/{monitor.group(1)}"),
            ("chart.json 90 d", f"/monitors/{monitor.group(1)}/chart.json?range=90d"),
        ):
            times = []
            for _ in range(max(10, n // 4)):
                t0 = time.perf_counter()
                r = await client.get(path, headers=gzip)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            figures[name] = _summary(times)
    await store.close()
    return figures


def _summary(ms: list[float]) -> dict[str, float]:
    ms.sort()
    return {"p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}


def sustained(url: str, seconds: float, workdir: Path) -> dict[str, Any]:
    port = free_port()
    env = clean_env(
        UPWATCH_DATABASE_URL=url, UPWATCH_LOG_LEVEL="warning", UPWATCH_RATE_LIMIT_PER_MINUTE="0"
    )
    proc = spawn(env, "serve", "--port", str(port), log=workdir / "serve.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        payload = f"GET /status/{SLUG} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        asyncio.run(drive(port, lambda i: payload, concurrency=16, duration_s=2))  # warm
        out = asyncio.run(drive(port, lambda i: payload, concurrency=16, duration_s=seconds))
    finally:
        stop([proc])
    lat = sorted(out.latencies_ms)
    return {
        "req/s": sum(out.statuses.values()) / out.elapsed_s,
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[int(len(lat) * 0.99)],
        "statuses": dict(out.statuses),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--monitors", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--dashboard-monitors", type=int, default=1000)
    p.add_argument("--dashboard-requests", type=int, default=100)
    p.add_argument(
        "--dashboard-db",
        type=Path,
        help="a SQLite file to keep the dashboard's database in (built if missing, else "
        "reused: building 90 days of 1,000 monitors' rollups takes minutes)",
    )
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="upwatch-web-"))
    gc.freeze()  # as `serve` does after start-up
    figures: dict[str, Any] = {}
    if args.dashboard_monitors:
        db = args.dashboard_db or workdir / "dashboard.db"
        build_it = not db.exists()
        n = args.dashboard_monitors
        if build_it:
            print(f"building {n:,} monitors' 90 days of rollups…", file=sys.stderr)
        for name, value in asyncio.run(
            dashboard(f"sqlite:///{db}", n, args.dashboard_requests, build=build_it)
        ).items():
            figures[f"dashboard, {args.dashboard_monitors:,} monitors: {name}"] = value
    url = f"sqlite:///{workdir}/web.db"
    asyncio.run(build(url, args.monitors, int(time.time() * 1000)))
    figures |= asyncio.run(in_process(url, args.requests))
    figures["sustained (serve, 16 connections)"] = sustained(url, args.seconds, workdir)
    rows: list[tuple[str, Any]] = []
    for name, value in figures.items():
        if isinstance(value, dict):
            rows += [
                (f"{name}: {k}", v if isinstance(v, dict) else round(v, 2))
                for k, v in value.items()
            ]
        else:
            rows.append((name, value))
    print(
        table(f"bench/web.py: the dashboard, and a status page of {args.monitors} monitors", rows)
    )
    write_json("web", {"args": vars(args), "figures": figures})
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
