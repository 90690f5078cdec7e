"""Alerting under load: N monitors at 10 s, each telling a webhook channel on a local
receiver; D of their targets go down at once, then come back.

Runs twice in one invocation, the same way: with notifications (every monitor names
the channel) and without (no channel: state is still tracked, nothing is sent), and
reports for each the checks' lateness while the incidents open and CPU per check;
for the first, when each `incident.opened` and `incident.resolved` arrived against
the check that confirmed it, and how many were lost or arrived twice.

    python bench/alerting.py --monitors 10000 --down 1000 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from _common import (
    clean_env,
    cpu_seconds,
    free_port,
    percentile,
    pg_recreate,
    start_sink,
    start_upwatch,
    stop,
    table,
    upwatch,
    wait_healthy,
    write_json,
)
from checker import analyse

API = "/v1/tcp-monitors"
CREATE_CONCURRENCY = 16
FLIP_PORTS = 8
SCOPES = (
    "tcp-monitors:read",
    "tcp-monitors:write",
    "notification-channels:read",
    "notification-channels:write",
)


class Receiver:
    """Records each delivery's arrival (wall ms), event, webhook-id and payload times."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, str, str, dict[str, Any]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        payload = orjson.loads(body)
        self.arrivals.append(
            (
                int(time.time() * 1000),
                payload["type"],
                headers.get(b"webhook-id", b"").decode(),
                payload["data"].get("incident", {}),
            )
        )
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def ms(rfc3339: str | None) -> int:
    assert rfc3339 is not None
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def listeners(ports: list[int]) -> list[socket.socket]:
    opened = []
    for port in ports:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)
        opened.append(sock)
    return opened


async def create_monitors(
    base: str, key: str, targets: list[int], interval: int, channel: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(targets)):
        queue.put_nowait(i)

    async def creator(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {
                "name": f"alert-{i}",
                "host": "127.0.0.1",
                "port": targets[i],
                "intervalSeconds": interval,
                "confirmationChecks": 1,
                "recoveryChecks": 1,
                "notificationChannelIds": [channel] if channel else [],
            }
            r = await client.post(f"{base}{API}", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"create failed: {r.status_code} {r.text}")

    limits = httpx.Limits(max_connections=CREATE_CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(creator(client) for _ in range(CREATE_CONCURRENCY)))


async def one_run(args: argparse.Namespace, *, notify: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="upwatch-alerting-"))
    url = (
        f"sqlite:///{workdir / 'upwatch.db'}"
        if args.database == "sqlite"
        else pg_recreate("upwatch_bench")
    )
    env = clean_env(UPWATCH_DATABASE_URL=url, UPWATCH_LOG_LEVEL="info")
    sink, up_ports = start_sink(16)
    flip_ports = [free_port() for _ in range(FLIP_PORTS)]
    flipping = listeners(flip_ports)
    receiver = Receiver()
    rx_port = free_port()
    rx = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=rx_port, log_config=None, lifespan="off")
    )
    rx_task = asyncio.create_task(rx.serve())
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upwatch(env, "migrate")
        upwatch(env, "teams", "create", "bench", "--max-monitors", str(args.monitors))
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = upwatch(env, "keys", "create", "--team", "bench", *scopes)
        api_port = free_port()
        base = f"http://127.0.0.1:{api_port}"
        started = start_upwatch(env, args.database, api_port, workdir)
        procs.extend(started.values())
        wait_healthy(base)
        channel = None
        if notify:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.post(
                    f"{base}/v1/notification-channels",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "name": "bench",
                        "type": "webhook",
                        "config": {"url": f"http://127.0.0.1:{rx_port}/hook"},
                    },
                )
                r.raise_for_status()
                channel = r.json()["data"]["id"]
        targets = [
            flip_ports[i % FLIP_PORTS] if i < args.down else up_ports[i % len(up_ports)]
            for i in range(args.monitors)
        ]
        print(
            f"creating {args.monitors:,} monitors ({'with' if notify else 'no'} channel)…",
            file=sys.stderr,
        )
        await create_monitors(base, key, targets, args.interval, channel)
        await asyncio.sleep(args.interval * 2)  # every monitor checked and up
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in procs}
        t0 = int(time.time() * 1000)
        for sock in flipping:  # down: connections refused from now on
            sock.close()
        await asyncio.sleep(args.interval * 2 + 5)
        flipping = listeners(flip_ports)  # back
        await asyncio.sleep(args.interval * 2 + 5)
        t1 = int(time.time() * 1000)
        cpu1 = {p.pid: cpu_seconds(p.pid) for p in procs}
        await asyncio.sleep(5)  # the last sends
    finally:
        stop(procs)
        for sock in flipping:
            sock.close()
        rx.should_exit = True
        await rx_task
        sink.terminate()
        sink.wait()
    figures = analyse(url, t0, t1)
    cpu = sum(cpu1[p] - cpu0[p] for p in cpu0)
    result: dict[str, Any] = {
        "notifications": notify,
        "lateness_p50_ms": figures["lateness_p50_ms"],
        "lateness_p99_ms": figures["lateness_p99_ms"],
        "lateness_max_ms": figures["lateness_max_ms"],
        "checks": figures["checks"],
        "missed": figures["missed"],
        "cpu_us_per_check": 1e6 * cpu / max(figures["checks"], 1),
    }
    if notify:
        ids = Counter(webhook_id for _, _, webhook_id, _ in receiver.arrivals)
        for event, field in (
            ("incident.opened", "confirmedAt"),
            ("incident.resolved", "resolvedAt"),
        ):
            delays = [
                at - ms(incident.get(field))
                for at, kind, _, incident in receiver.arrivals
                if kind == event
            ]
            name = event.split(".")[1]
            result[f"{name}_received"] = len(delays)
            result[f"{name}_delay_p50_ms"] = percentile([float(d) for d in delays], 0.5)
            result[f"{name}_delay_max_ms"] = max(delays) if delays else float("nan")
        result["arrived_twice"] = sum(n - 1 for n in ids.values())
        result["expected_each"] = args.down
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--down", type=int, default=1_000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        on = asyncio.run(one_run(args, notify=True))
        off = asyncio.run(one_run(args, notify=False))
    result = {
        "database": args.database,
        "monitors": args.monitors,
        "down": args.down,
        "with_notifications": on,
        "without": off,
        "lateness_p99_difference_ms": on["lateness_p99_ms"] - off["lateness_p99_ms"],
        "cpu_ratio": on["cpu_us_per_check"] / off["cpu_us_per_check"],
    }
    rows = [(f"with.{k}", v) for k, v in on.items()] + [(f"without.{k}", v) for k, v in off.items()]
    rows += [
        ("lateness_p99_difference_ms", result["lateness_p99_difference_ms"]),
        ("cpu_ratio", result["cpu_ratio"]),
    ]
    title = (
        f"upwatch alerting: {args.monitors:,} monitors, {args.down:,} down and back, "
        f"{args.database}"
    )
    print(table(title, rows))
    path = write_json(f"alerting-{args.database}-{args.monitors}", result)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
