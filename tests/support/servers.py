"""upwatch as a user runs it: the command in a subprocess with its own environment and
SQLite file, a live `serve`, and the database it writes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from upwatch.domain import SCOPES

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
KEY_LINE = re.compile(r"^uptime_[0-9A-Za-z]{32,}\n$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(subprocess.Popen[str]):
    """A live `upwatch serve` whose output goes to a file: a pipe that nobody reads
    while the test runs would fill up (64 KiB, a few hundred access lines) and stall it."""

    log: Path

    def output(self) -> str:
        return self.log.read_text()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.starts = 0
        self.vars = {k: v for k, v in os.environ.items() if not k.startswith("UPWATCH_")}
        self.vars["UPWATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'upwatch.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def upwatch(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "upwatch", *args],
            env={**self.vars, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def key(self, *scopes: str, team: str = "acme") -> str:
        args = ["keys", "create", "--team", team]
        for scope in scopes or SCOPES:
            args += ["--scope", scope]
        done = self.upwatch(*args)
        assert done.returncode == 0, done.stderr
        assert KEY_LINE.match(done.stdout), done.stdout
        return done.stdout.strip()

    def start(self) -> Server:
        self.starts += 1
        log = self.tmp / f"serve-{self.starts}.log"
        with log.open("w") as out:
            proc = Server(
                [sys.executable, "-m", "upwatch", "serve", "--port", str(self.port)],
                env=self.vars,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        proc.log = log
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited early: {proc.output()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.TransportError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError("serve did not answer /healthz in time")


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then the process's output once it has exited (with status 0)."""
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    if isinstance(proc, Server):
        output = proc.output()
    assert proc.returncode == 0, output
    return output


def results(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT monitor_id, checked_at FROM check_results").fetchall()


async def wait_for_rows(db: Path, at_least: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        count = len(results(db))
        if count >= at_least:
            return count
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {count} results after {seconds} s (wanted {at_least})")
