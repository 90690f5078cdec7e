"""Requests per minute per API key: a token bucket per key, in this process.

Several API processes each keep their own buckets, so a key's limit is per process
(README, "Rate limits"). Written by hand: the few lines below need no library, and the
well-known ones (slowapi, limits) key on client addresses and bring storage backends
upwatch does not use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from upwatch.clock import monotonic_s

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the bucket is full again
    retry_after_s: int  # until the next request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after_s)
        return values


class RateLimiter:
    def __init__(self, per_minute: int, *, now: Callable[[], float] = monotonic_s) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60  # tokens per second
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> Decision:
        now = self._now()
        tokens, at = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self._rate)
        allowed = tokens >= 1 - _EPSILON  # clock readings are floats
        if allowed:
            tokens = max(0.0, tokens - 1)
        self._buckets[key] = (tokens, now)
        return Decision(
            allowed=allowed,
            limit=self.per_minute,
            remaining=int(tokens),
            reset_s=math.ceil((self.per_minute - tokens) / self._rate),
            retry_after_s=0 if allowed else math.ceil((1 - tokens) / self._rate),
        )
