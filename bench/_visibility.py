"""When each check's result becomes readable: a watcher for the checker benchmarks.

A thread polls the database every POLL_S for the results of a sample of monitors and
notes when it first saw each one. At the end, every check of the sample that ran in
the window is sorted into: readable within READABLE_MS of its start, readable only
later (written late), or shown out of order (a later check of the same monitor was
readable first: a reader then saw a gap that later filled). Slots missing between a
monitor's first and last result at the end are checks that never ran or whose result
was lost: the two are told apart by the checker's own log (dropped results are logged
and counted in `upwatch_results_dropped_total`).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from typing import Any

from _common import percentile

POLL_S = 0.25
READABLE_MS = 2_000
RECENT_MS = 30_000  # each poll reads this far back: later than that counts as very late


class Watcher:
    def __init__(self, url: str, sample: int, seed: int = 7) -> None:
        self._url = url
        self._sample_size = sample
        self._seed = seed
        self.sample: list[str] = []
        self.first_seen: dict[tuple[str, int], int] = {}
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sqlite: sqlite3.Connection | None = None  # opened on first use, in the thread
        self._pg: Any = None  # an asyncpg connection, likewise

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    async def _run(self) -> None:
        ids = await self._query("SELECT id FROM monitors ORDER BY id", ())
        rng = random.Random(self._seed)
        self.sample = sorted(rng.sample([r[0] for r in ids], min(self._sample_size, len(ids))))
        while not self._stop.is_set():
            began = time.monotonic()
            since = int(time.time() * 1000) - RECENT_MS
            rows = await self._recent(since)
            now = int(time.time() * 1000)
            for monitor_id, checked_at in rows:
                self.first_seen.setdefault((monitor_id, checked_at), now)
            self.polls += 1
            self._stop.wait(max(0.0, POLL_S - (time.monotonic() - began)))

    async def _recent(self, since: int) -> list[tuple[str, int]]:
        if self._url.startswith("sqlite"):
            marks = ",".join("?" * len(self.sample))
            sql = (
                "SELECT monitor_id, checked_at FROM check_results"
                f" WHERE monitor_id IN ({marks}) AND checked_at >= ?"
            )
            return await self._query(sql, (*self.sample, since))
        sql = (
            "SELECT monitor_id, checked_at FROM check_results"
            " WHERE monitor_id = ANY($1::text[]) AND checked_at >= $2"
        )
        return await self._query(sql, (self.sample, since))

    async def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._url.startswith("sqlite"):
            if self._sqlite is None:
                path = self._url.removeprefix("sqlite:///")
                self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            return self._sqlite.execute(sql, args).fetchall()
        import asyncpg

        if self._pg is None:
            self._pg = await asyncpg.connect(self._url)
        return [tuple(r) for r in await self._pg.fetch(sql, *args)]

    def report(
        self,
        final: list[tuple[str, int]],
        grid: dict[str, tuple[int, int]],
        t0: int,
        end: int,
    ) -> dict[str, Any]:
        """``final``: (monitor id, checked_at) of every result, read after the run;
        ``grid``: each monitor's (created_at, interval ms); checks due in [t0, end)."""
        mine: dict[str, list[int]] = {m: [] for m in self.sample}
        for monitor_id, checked_at in final:
            if monitor_id in mine:
                mine[monitor_id].append(checked_at)
        delays: list[float] = []
        late = never_seen = out_of_order = gaps = 0
        for monitor_id, times in mine.items():
            created, interval_ms = grid[monitor_id]
            slots = {}
            for checked_at in sorted(times):
                slot = round((checked_at - created) / interval_ms)
                if t0 <= created + slot * interval_ms < end:
                    slots[slot] = checked_at
            if slots:
                gaps += (max(slots) - min(slots) + 1) - len(slots)
            newest_seen = 0
            for slot in sorted(slots):
                checked_at = slots[slot]
                seen = self.first_seen.get((monitor_id, checked_at))
                if seen is None:
                    never_seen += 1
                    continue
                delays.append(float(seen - checked_at))
                if seen - checked_at > READABLE_MS:
                    late += 1
                if seen < newest_seen:
                    out_of_order += 1
                newest_seen = max(newest_seen, seen)
        checks = len(delays) + never_seen
        return {
            "sampled_monitors": len(self.sample),
            "sampled_checks": checks,
            "readable_within_2s": checks - late - never_seen,
            "readable_later": late,
            "readable_only_after_30s": never_seen,
            "readable_out_of_order": out_of_order,
            "gaps_in_series": gaps,
            "readable_after_p50_ms": percentile(delays, 0.5),
            "readable_after_p99_ms": percentile(delays, 0.99),
            "readable_after_max_ms": max(delays) if delays else float("nan"),
            "polls": self.polls,
        }
