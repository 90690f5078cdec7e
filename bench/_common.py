"""Shared plumbing for the benchmarks: processes, /proc readings, figures, output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TICKS = os.sysconf("SC_CLK_TCK")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
    # Benchmarks drive one key far past the default 600 requests a minute.
    env["UPWATCH_RATE_LIMIT_PER_MINUTE"] = "0"
    env.update(extra)
    return env


def upwatch(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "upwatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def new_key(env: dict[str, str], team: str, *, name: str | None = None) -> str:
    """A read-write API key for ``team`` (created if need be), from the CLI."""
    scopes = ["--scope", "tcp-monitors:read", "--scope", "tcp-monitors:write"]
    named = ["--name", name] if name else []
    return upwatch(env, "keys", "create", "--team", team, *scopes, *named)


def start_upwatch(
    env: dict[str, str], database: str, port: int, workdir: Path, *, workers: int = 1
) -> dict[str, subprocess.Popen[bytes]]:
    """`serve` on SQLite (with ``workers`` checker processes); on PostgreSQL an `api`
    and ``workers`` workers. By name, the API process first; logs in ``workdir``."""
    if database == "sqlite":
        args = ("serve", "--port", str(port), "--checker-processes", str(workers))
        return {"serve": spawn(env, *args, log=workdir / "serve.log")}
    procs = {"api": spawn(env, "api", "--port", str(port), log=workdir / "api.log")}
    for i in range(workers):
        name = "worker" if workers == 1 else f"worker{i}"
        procs[name] = spawn(env, "worker", log=workdir / f"{name}.log")
    return procs


def spawn(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "upwatch", *args], env=env, stdout=handle, stderr=handle
    )


def start_sink(ports: int) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "sink.py"), "--ports", str(ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def wait_healthy(base: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not become healthy")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (`serve`'s checker processes), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # after "pid (comm)": state ppid
            found.append(int(entry.name))
    return sorted(found)


def postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (its backends among them), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


def cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` still running."""
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return found


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 20) -> list[int | None]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(None)
    return codes


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def pg_recreate(name: str) -> str:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def table(title: str, rows: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    for key, value in rows:
        shown = (
            f"{value:,.1f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        lines.append(f"{key.ljust(width)}  {shown}")
    return "\n".join(lines)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
