"""Statistics over a time range (SPEC §9), as pure functions: time-based availability
from a monitor's history, and check figures from exact values or merged sketches.

Time figures come from the records that say what the monitor was doing, not from
checks: incidents (down), maintenance windows (maintenance), its creation and its
pauses (not monitored). Where two overlap, not monitored wins over maintenance, and
maintenance over down: a failure in a maintenance window is not downtime.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from upwatch.sketch import Sketch, exact_quantile

Span = tuple[int, int]  # [start, end) in ms

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BUCKETS_MS = {"5m": 300_000, "1h": HOUR_MS, "1d": DAY_MS}
MAX_BUCKETS = 1_000


# -- intervals --------------------------------------------------------------------------


def merged(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping, non-empty."""
    out: list[Span] = []
    for s, e in sorted(x for x in spans if x[1] > x[0]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def clipped(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    return merged((max(s, start), min(e, end)) for s, e in spans)


def minus(spans: Sequence[Span], taken: Sequence[Span]) -> list[Span]:
    """``spans`` without ``taken`` (both merged)."""
    out: list[Span] = []
    i = 0
    for s, e in spans:
        while i < len(taken) and taken[i][1] <= s:
            i += 1
        j, cur = i, s
        while j < len(taken) and taken[j][0] < e:
            ts, te = taken[j]
            if ts > cur:
                out.append((cur, ts))
            cur = max(cur, te)
            j += 1
        if cur < e:
            out.append((cur, e))
    return out


def length(spans: Iterable[Span]) -> int:
    return sum(e - s for s, e in spans)


# -- time figures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class History:
    """What a monitor was doing, as spans (open ones end at ``now``)."""

    created_at: int
    paused: Sequence[Span] = ()
    incidents: Sequence[Span] = ()
    maintenance: Sequence[Span] = ()


@dataclass(frozen=True, slots=True)
class Time:
    span_ms: int
    down_ms: int
    maintenance_ms: int
    unmonitored_ms: int

    @property
    def availability(self) -> float | None:
        """100 * (1 - down / (range - maintenance - not monitored)); None when nothing
        is left."""
        counted = self.span_ms - self.maintenance_ms - self.unmonitored_ms
        if counted <= 0:
            return None
        return 100.0 * (1 - self.down_ms / counted)


def _partition(h: History, start: int, end: int) -> tuple[list[Span], list[Span], list[Span]]:
    """[start, end)'s spans not monitored, in maintenance and down, in that precedence."""
    unmonitored = clipped([(start, h.created_at), *h.paused], start, end)
    maintenance = minus(clipped(h.maintenance, start, end), unmonitored)
    down = minus(minus(clipped(h.incidents, start, end), unmonitored), maintenance)
    return unmonitored, maintenance, down


def time_in(h: History, start: int, end: int) -> Time:
    """How [start, end) divides into down, maintenance and not monitored."""
    unmonitored, maintenance, down = _partition(h, start, end)
    return Time(end - start, length(down), length(maintenance), length(unmonitored))


def daily(h: History, start: int, end: int, size_ms: int) -> list[Time]:
    """``time_in`` for each slice of ``size_ms`` from ``start`` (the last one ending at
    ``end``), from one pass over the history: a status page's 90 days of 50 monitors
    are 4,500 slices."""
    parts = _partition(h, start, end)
    unmonitored, maintenance, down = ((spans, [e for _, e in spans]) for spans in parts)
    out = []
    for s in range(start, end, size_ms):
        e = min(s + size_ms, end)
        out.append(
            Time(
                e - s,
                _overlap(*down, s, e),
                _overlap(*maintenance, s, e),
                _overlap(*unmonitored, s, e),
            )
        )
    return out


def _overlap(spans: Sequence[Span], ends: list[int], start: int, end: int) -> int:
    """How much of [start, end) the merged ``spans`` cover (``ends``: their ends)."""
    total = 0
    for i in range(bisect.bisect_right(ends, start), len(spans)):
        s, e = spans[i]
        if s >= end:
            break
        total += min(e, end) - max(s, start)
    return total


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    count: int
    longest_s: float | None
    mttr_s: float | None


def incident_figures(
    incidents: Sequence[tuple[int, int | None]], start: int, end: int, now: int
) -> IncidentFigures:
    """Incidents overlapping [start, end): how many; the longest time one spent inside
    the range; the mean start-to-resolution time of those resolved inside the range."""
    inside = [(s, e) for s, e in incidents if s < end and (e is None or e > start)]
    longest = max(
        (min(e if e is not None else now, end) - max(s, start) for s, e in inside), default=None
    )
    recovered = [e - s for s, e in inside if e is not None and start <= e < end]
    return IncidentFigures(
        len(inside),
        None if longest is None else longest / 1000,
        sum(recovered) / len(recovered) / 1000 if recovered else None,
    )


# -- check figures -----------------------------------------------------------------------


class Rolled(Protocol):
    """One stored rollup's figures (store/rollups.py reads them as rows), the sketch
    still encoded."""

    @property
    def up(self) -> int: ...
    @property
    def down(self) -> int: ...
    @property
    def timeout(self) -> int: ...
    @property
    def rt_sum(self) -> int: ...
    @property
    def rt_min(self) -> int | None: ...
    @property
    def rt_max(self) -> int | None: ...
    @property
    def sketch(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Rollup:
    """A Rolled made by hand (tests, benchmarks)."""

    up: int
    down: int
    timeout: int
    rt_sum: int
    rt_min: int | None
    rt_max: int | None
    sketch: bytes


@dataclass(slots=True)
class Checks:
    """Counts by status and response times, from raw results and rollups. Percentiles
    are exact while only raw results were added (``values``), and from the merged
    sketch (within 1 %) once a rollup is."""

    up: int = 0
    down: int = 0
    timeout: int = 0
    rt_sum: int = 0
    timed: int = 0
    rt_min: int | None = None
    rt_max: int | None = None
    values: list[int] | None = field(default_factory=list)
    sketch: Sketch | None = None

    @property
    def total(self) -> int:
        return self.up + self.down + self.timeout

    def add_exact(self, status: str, response_time_ms: int | None) -> None:
        if status == "up":
            self.up += 1
            if response_time_ms is not None:
                self._time(response_time_ms, response_time_ms, response_time_ms, 1)
                if self.values is not None:
                    self.values.append(response_time_ms)
                else:
                    assert self.sketch is not None
                    self.sketch.add(response_time_ms)
        elif status == "down":
            self.down += 1
        else:
            self.timeout += 1

    def add_raw(self, up: int, down: int, timeout: int, times: list[int]) -> None:
        """Raw results in bulk: counts by status, and the up checks' response times."""
        self.up += up
        self.down += down
        self.timeout += timeout
        if not times:
            return
        self._time(sum(times), min(times), max(times), len(times))
        if self.values is not None:
            self.values.extend(times)
        else:
            assert self.sketch is not None
            self.sketch.add_all(times)

    def _time(self, total: int, low: int | None, high: int | None, n: int) -> None:
        self.rt_sum += total
        self.timed += n
        if low is not None:
            self.rt_min = low if self.rt_min is None else min(self.rt_min, low)
        if high is not None:
            self.rt_max = high if self.rt_max is None else max(self.rt_max, high)

    def add_rollups(self, rolled: Sequence[Rolled]) -> None:
        """Add stored rollups, their sketches merged in one pass."""
        if not rolled:
            return
        for r in rolled:
            self.up += r.up
            self.down += r.down
            self.timeout += r.timeout
        merged = Sketch.decode_all([r.sketch for r in rolled])
        timed = merged.total
        lows = [r.rt_min for r in rolled if r.rt_min is not None]
        highs = [r.rt_max for r in rolled if r.rt_max is not None]
        self._time(
            sum(r.rt_sum for r in rolled),
            min(lows) if lows else None,
            max(highs) if highs else None,
            timed,
        )
        if not timed:
            return
        if self.sketch is None:
            self.sketch = Sketch()
            self.sketch.add_all(self.values or ())
            self.values = None  # percentiles from the merged sketch from now on
        self.sketch.merge(merged)

    def percentile(self, q: float) -> float | None:
        if self.values is not None:
            return exact_quantile(sorted(self.values), q)
        assert self.sketch is not None
        estimate = self.sketch.quantile(q)
        if estimate is None:
            return None
        bounded = min(max(estimate, self.rt_min or 0), self.rt_max or estimate)
        return round(bounded, 3)

    def response_times(self, *quantiles: tuple[str, float]) -> dict[str, float | None]:
        if self.values is not None:
            ordered = sorted(self.values)
            figures: dict[str, float | None] = {
                name: exact_quantile(ordered, q) for name, q in quantiles
            }
        else:
            figures = {name: self.percentile(q) for name, q in quantiles}
        figures["mean"] = round(self.rt_sum / self.timed, 3) if self.timed else None
        return figures


@dataclass(frozen=True, slots=True)
class Summary:
    """One monitor's figures over [start, end)."""

    monitor_id: str
    start: int
    end: int
    time: Time
    incidents: IncidentFigures
    checks: Checks


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of a series: its figures over its whole span."""

    start: int
    time: Time
    checks: Checks


# -- ranges and buckets ------------------------------------------------------------------


def bucket_starts(start: int, end: int, size_ms: int) -> list[int]:
    """Starts of the UTC-aligned buckets from the one holding ``start`` to the one
    holding the last instant before ``end``."""
    first = start - start % size_ms
    last = (end - 1) - (end - 1) % size_ms
    return list(range(first, last + 1, size_ms))


def whole_units(start: int, end: int, unit_ms: int) -> Span | None:
    """The largest [a, b) inside [start, end) aligned to ``unit_ms``, or None."""
    a = -(-start // unit_ms) * unit_ms
    b = end - end % unit_ms
    return (a, b) if a < b else None
