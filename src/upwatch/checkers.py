"""`serve`'s checker processes: the checks run in processes of their own, beside the API.

On a thread of the API's process the checker and the API waited for each other's GIL:
at steady load (10,000 monitors at 10 s and 100 API requests a second) the API's p99
rose from 18 to 85 ms. Each checker is an ``upwatch worker --supervised`` child, with
the parent's settings in its environment; N of them split the monitors between them by
claiming due checks, as ``worker`` processes do on PostgreSQL (SQLite's write lock
makes a claim atomic across processes as ``FOR UPDATE SKIP LOCKED`` does).

The parent and each child talk over the child's standard input and output:

- a line on its input wakes it (the API created or changed a monitor: check it now);
  the end of its input means the parent is gone, and the child stops as on SIGTERM, so
  no checker outlives a killed ``serve``;
- its first line of output, written once it checks, gives the loopback port of its
  metrics (`/metrics` without a key, as ``worker --metrics-port`` serves them): the
  parent waits for it before it listens, so that no monitor is created while no checker
  would see it, and its ``/metrics`` merges every child's ``upwatch_*`` families into its
  own (`ChildMetrics`), summed, so a scrape of ``serve`` sees the same series as before,
  whatever the number of children.

The children run in a session of their own: a Ctrl-C at the terminal reaches the parent
only, which stops them in order (SIGTERM: finish or release the checks in hand, flush
every result). A child that exits while ``serve`` runs stops the whole with its exit
status in the log: a supervisor (systemd, Docker) restarts ``serve`` as a whole, rather
than ``serve`` restarting a checker that may fail again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from upwatch.config import ENV_PREFIX, Settings

log = logging.getLogger("upwatch")

METRICS_LINE = "upwatch-metrics-port"  # a child's first line: "upwatch-metrics-port 41234"
STARTUP_TIMEOUT_S = 60.0  # a child checks within this, or serve does not start
STOP_TIMEOUT_S = 30.0  # then SIGKILL (a stop flushes results: seconds, not minutes)
SCRAPE_TIMEOUT_S = 2.0
OWN_FAMILIES = "upwatch_"  # the children's process_* and python_* families are their own


def child_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every setting of ``settings`` in it, as the child reads them: a
    setting given on the parent's command line reaches the child too."""
    env = {k: v for k, v in base.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[ENV_PREFIX + name.upper()] = str(value)
    return env


class CheckerProcesses:
    """Start, wake and stop ``count`` checker children; ``start`` returns a future that
    ends when the first child exits (with its exit status)."""

    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self._count = count
        self._children: list[asyncio.subprocess.Process] = []
        self.ports: list[int] = []

    async def start(self) -> asyncio.Future[int]:
        """Start the children and wait until each checks (its first line of output), so
        that the API, which listens next, never takes a monitor no checker would see.
        Raises RuntimeError if a child ends or takes too long first."""
        env = child_environment(self._settings, os.environ)
        command = [sys.executable, "-m", "upwatch", "worker", "--no-migrate", "--supervised"]
        try:
            for _ in range(self._count):
                child = await asyncio.create_subprocess_exec(
                    *command,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    start_new_session=True,  # Ctrl-C reaches serve only: it stops them
                )
                self._children.append(child)
            for child in self._children:
                self.ports.append(await self._ready(child))
        except BaseException:
            await self.stop()
            raise
        ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def first_exit(done: asyncio.Future[int]) -> None:
            if not ended.done() and not done.cancelled():
                ended.set_result(done.result())

        for child in self._children:
            asyncio.ensure_future(child.wait()).add_done_callback(first_exit)
        return ended

    async def _ready(self, child: asyncio.subprocess.Process) -> int:
        """The child's metrics port, once it says it checks."""
        assert child.stdout is not None
        try:
            line = await asyncio.wait_for(child.stdout.readline(), STARTUP_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"a checker process did not start within {STARTUP_TIMEOUT_S:g} s"
            ) from None
        word, _, port = line.decode(errors="replace").strip().partition(" ")
        if word != METRICS_LINE or not port.isdigit():
            status = await child.wait()
            raise RuntimeError(f"a checker process could not start (exit status {status})")
        return int(port)

    def wake(self) -> None:
        """Every child looks for due monitors now. Never blocks: a child whose input is
        full has a wake-up waiting already."""
        for child in self._children:
            stdin = child.stdin
            if stdin is None or stdin.is_closing():
                continue
            if stdin.transport.get_write_buffer_size() == 0:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    stdin.write(b"\n")

    async def stop(self) -> list[int]:
        """SIGTERM to each child still running, then wait (SIGKILL past the timeout).
        Returns the exit statuses, 0 for a child that SIGTERM ended before it had set
        up its handler (still starting: it had claimed nothing)."""
        for child in self._children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        statuses = []
        for child in self._children:
            try:
                status = await asyncio.wait_for(child.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("a checker process did not stop in %g s: killed", STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                status = await child.wait()
            statuses.append(0 if status == -signal.SIGTERM else status)
            if child.stdin is not None:
                child.stdin.close()
        return statuses


class ChildMetrics(Collector):
    """The children's ``upwatch_*`` metrics, read from their loopback ports at each
    scrape and summed by series (counters, gauges and histogram buckets all add up)."""

    def __init__(self, processes: CheckerProcesses) -> None:
        self._processes = processes

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for text in self._scrapes():
            for family in text_string_to_metric_families(text):
                if not family.name.startswith(OWN_FAMILIES):
                    continue
                mine = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                summed = values.setdefault(mine.name, {})
                for s in family.samples:
                    key = (s.name, tuple(sorted(s.labels.items())))
                    if key not in summed:
                        summed[key] = s.value
                    elif s.name.endswith("_created"):  # when the series began: the first
                        summed[key] = min(summed[key], s.value)
                    else:
                        summed[key] += s.value
        for name, family in families.items():
            for (sample, labels), value in values[name].items():
                family.add_sample(sample, dict(labels), value)
            yield family

    def _scrapes(self) -> Iterator[str]:
        for port in self._processes.ports:
            url = f"http://127.0.0.1:{port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as answer:
                    yield answer.read().decode()
            except OSError as exc:  # a child stopping: its series are missing this once
                log.warning("cannot read a checker process's metrics: %s", exc)

    def describe(self) -> Iterable[Metric]:
        return ()


async def watch_parent(wake: Callable[[], None], stop: asyncio.Event) -> None:
    """In a child: a line on standard input wakes the checker; its end stops the child
    (the parent is gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        del line
        wake()
    stop.set()
