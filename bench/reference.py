"""The bare reference loop: uvloop that only schedules and connects (a bare Protocol,
closed at once), no database and no API. Its CPU per check is the floor the checker is
measured against. Prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import uvloop


class Bare(asyncio.Protocol):
    pass


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(
    ports: list[int], monitors: int, interval: float, warmup: float, duration: float
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    measuring = {"on": False}
    lateness: list[float] = []
    done = {"checks": 0, "errors": 0}
    tasks: set[asyncio.Task[None]] = set()

    async def check(port: int, due: float) -> None:
        if measuring["on"]:
            lateness.append(loop.time() - due)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(Bare, "127.0.0.1", port), timeout=5
            )
            transport.close()
        except OSError:
            done["errors"] += 1
        if measuring["on"]:
            done["checks"] += 1

    def fire(i: int, due: float) -> None:
        task = loop.create_task(check(ports[i % len(ports)], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        loop.call_at(due + interval, fire, i, due + interval)

    for i in range(monitors):
        due = start + interval * i / monitors
        loop.call_at(due, fire, i, due)
    await asyncio.sleep(warmup)
    measuring["on"] = True
    cpu0, t0 = cpu_s(), time.monotonic()
    await asyncio.sleep(duration)
    cpu1, t1 = cpu_s(), time.monotonic()
    measuring["on"] = False
    lateness.sort()
    n = max(done["checks"], 1)
    return {
        "checks": done["checks"],
        "errors": done["errors"],
        "checks_per_s": done["checks"] / (t1 - t0),
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "cpu_us_per_check": 1e6 * (cpu1 - cpu0) / n,
        "lateness_p50_ms": 1000 * lateness[len(lateness) // 2] if lateness else 0.0,
        "lateness_p99_ms": 1000 * lateness[int(len(lateness) * 0.99)] if lateness else 0.0,
        "rss_peak_mb": rss_peak_mb(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated loopback ports")
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--duration", type=float, default=30)
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    result = uvloop.run(run(ports, args.monitors, args.interval, args.warmup, args.duration))
    print(json.dumps(result))
