"""Buffers observations and writes them in batches, one transaction each."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from upwatch.domain import Observation
from upwatch.errors import DatabaseUnavailable
from upwatch.store import Store

log = logging.getLogger(__name__)

BATCH_MAX_ROWS = 1_000
FLUSH_INTERVAL_S = 0.25


class ResultBatcher:
    def __init__(
        self, store: Store, *, buffer_max_rows: int, dropped: Counter | None = None
    ) -> None:
        self._store = store
        self._buffer: list[Observation] = []
        self._buffer_max = buffer_max_rows
        self.full = asyncio.Event()  # a batch is ready: flush before the interval
        self._lock = asyncio.Lock()
        self.dropped = 0
        self._dropped_metric = dropped
        self.written = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, observation: Observation) -> None:
        if len(self._buffer) >= self._buffer_max:
            self.dropped += 1
            if self._dropped_metric is not None:
                self._dropped_metric.inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error(
                    "result buffer full (%d rows): %d results dropped so far",
                    self._buffer_max,
                    self.dropped,
                )
            return
        self._buffer.append(observation)
        if len(self._buffer) >= BATCH_MAX_ROWS:
            self.full.set()

    async def flush(self) -> int:
        """Write everything buffered. Raises DatabaseUnavailable, keeping what is unwritten."""
        async with self._lock:
            written = 0
            while self._buffer:
                batch = self._buffer[:BATCH_MAX_ROWS]
                await self._store.results.save(batch)
                # Only now drop them: adds during the await went to the end.
                del self._buffer[: len(batch)]
                written += len(batch)
            self.written += written
            return written

    async def run_once(self, at: int) -> None:
        """One flush: a chore, every FLUSH_INTERVAL_S or when ``full`` is set."""
        try:
            # Shielded: cancelling the chore (at shutdown) must not cancel a write the
            # database may already have committed, or its rows would stay buffered and
            # the final flush would write them again. That flush waits on the lock for
            # this one to finish.
            await asyncio.shield(self.flush())
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(f"{exc} ({len(self)} results held)") from exc
