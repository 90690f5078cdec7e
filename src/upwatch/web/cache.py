"""A few seconds of caching for pages anyone may load (status pages on an outage day):
each key is rendered once per expiry however many ask at once, the others wait for that
render ("single flight"). No library offers the single flight for asyncio without
bringing a cache server along, so it is these few lines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cache(Generic[T]):
    def __init__(self, ttl_s: float, *, max_keys: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._entries: dict[str, tuple[float, T]] = {}
        self._pending: dict[str, asyncio.Future[T]] = {}
        self.renders = 0  # how many times make() ran (tests and benchmarks read it)

    async def get(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it twice
            raise
        finally:
            del self._pending[key]
        self.renders += 1
        if len(self._entries) >= self._max_keys:
            self._entries.clear()  # a flood of distinct keys costs renders, not memory
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        future.set_result(value)
        return value
