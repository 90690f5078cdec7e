"""The one seam for "now": everything else takes a Clock or an ``at=`` argument."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in whole milliseconds since the Unix epoch (UTC)."""
        ...

    def monotonic_ms(self) -> int:
        """A clock that only moves forward, at the rate of time (its origin is
        arbitrary): the wall clock's jumps show against it."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class FakeClock:
    """A clock tests move by hand: ``advance`` is time passing, ``set`` and ``jump``
    move the wall clock alone (an operator or NTP stepping it)."""

    def __init__(self, start_ms: int = 1_771_070_400_000) -> None:  # 2026-02-14T12:00:00Z
        self._now_ms = start_ms
        self._monotonic_ms = 0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ms(self) -> int:
        return self._monotonic_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)
        self._monotonic_ms += round(seconds * 1000)

    def jump(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)

    def set(self, now_ms: int) -> None:
        self._now_ms = now_ms


def elapsed_ms(start_ns: int) -> int:
    """Whole milliseconds since ``start_ns`` taken from :func:`monotonic_ns`."""
    return round((time.monotonic_ns() - start_ns) / 1_000_000)


def monotonic_ns() -> int:
    return time.monotonic_ns()


def monotonic_s() -> float:
    return time.monotonic()
