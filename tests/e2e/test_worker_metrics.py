"""`upwatch worker --metrics-port` (SPEC §9): a worker process serves its own metrics
over HTTP without a key, and a taken port stops it at start with one line."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.listeners import listener
from tests.support.servers import START_TIMEOUT_S, Env, free_port, stop
from upwatch.clock import SystemClock
from upwatch.domain import NewMonitor
from upwatch.store import Store


def start_worker(url: str, metrics_port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    args = ["worker", "--database-url", url, "--metrics-port", str(metrics_port)]
    return subprocess.Popen(
        [sys.executable, "-m", "upwatch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def checks(url: str) -> dict[str, float]:
    """upwatch_checks_total by status from the worker's endpoint ({} while it does not
    answer)."""
    try:
        r = httpx.get(url, timeout=1)
    except httpx.TransportError:
        return {}
    assert r.status_code == 200, r.text
    return {
        s.labels["status"]: s.value
        for f in text_string_to_metric_families(r.text)
        if f.name == "upwatch_checks"
        for s in f.samples
        if s.name == "upwatch_checks_total"
    }


async def test_a_worker_serves_its_own_metrics_without_a_key(
    store: Store, database_url: str
) -> None:
    team = await store.teams.create("acme", None, at=0)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with listener() as target:
        proc = start_worker(database_url, port)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not checks(url) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            # Created once the worker runs: a check more than 2 s late at the worker's
            # start would be spread over its interval (scheduler/planning.py).
            new = NewMonitor("up", "127.0.0.1", target.getsockname()[1], interval_s=10)
            await store.monitors.create(team.id, new, at=SystemClock().now_ms())
            while not (counted := checks(url)).get("up") and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            body = httpx.get(url, timeout=5).text if counted.get("up") else ""
        finally:
            output = stop(proc) if proc.poll() is None else proc.communicate()[0]
    assert counted.get("up"), f"checks counted: {counted}; the worker said:\n{output}"
    assert "process_resident_memory_bytes" in body
    assert 'upwatch_notification_attempts_total{channel_type="webhook"' in body
    assert "upwatch_check_lateness_seconds_count" in body
    assert "upwatch_monitor_state" not in body  # the team's monitors need a key, at /metrics
    assert f"metrics on http://127.0.0.1:{port}/metrics" in output


def test_a_taken_metrics_port_is_one_line(tmp_path: Path) -> None:
    env = Env(tmp_path)
    with listener() as sock:
        done = env.upwatch("worker", "--metrics-port", str(sock.getsockname()[1]))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot serve metrics on 127.0.0.1:" in lines[0]
