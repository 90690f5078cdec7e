"""Folding a batch of results into rollups at once equals folding them one rollup at a
time with Sketch objects, the plain definition."""

from __future__ import annotations

import random

import pytest

from upwatch.folding import DOWN, TIMEOUT, UP, Key, fold, tally
from upwatch.sketch import Sketch, medians
from upwatch.stats import Rollup

H, D = 3_600_000, 86_400_000
SPANS = (3600, 86400)


def plainly(
    results: list[list[object]], stored: dict[Key, Rollup]
) -> dict[Key, tuple[object, ...]]:
    """One rollup at a time, as the fold was first written."""
    grouped: dict[Key, list[tuple[int, int | None]]] = {}
    for monitor_id, at, status, rt in results:
        assert isinstance(monitor_id, str)
        assert isinstance(at, int)
        assert isinstance(status, int)
        for span in SPANS:
            key = (monitor_id, span, at - at % (span * 1000))
            grouped.setdefault(key, []).append((status, rt))  # type: ignore[arg-type]
    out = {}
    for key, checks in grouped.items():
        times = [rt for status, rt in checks if status == UP and rt is not None]
        sketch = Sketch()
        sketch.add_all(times)
        up = sum(status == UP for status, _ in checks)
        down = sum(status == DOWN for status, _ in checks)
        timeout = sum(status == TIMEOUT for status, _ in checks)
        low, high = (min(times), max(times)) if times else (None, None)
        total = sum(times)
        if (old := stored.get(key)) is not None:
            up, down, timeout, total = (
                up + old.up,
                down + old.down,
                timeout + old.timeout,
                total + old.rt_sum,
            )
            low = old.rt_min if low is None else low if old.rt_min is None else min(low, old.rt_min)
            high = (
                old.rt_max
                if high is None
                else high
                if old.rt_max is None
                else max(high, old.rt_max)
            )
            sketch.merge(Sketch.decode(old.sketch))
        blob = sketch.encode()
        median = medians([blob], [low], [high])[0]
        out[key] = (
            *key,
            up,
            down,
            timeout,
            total,
            low,
            high,
            blob,
            None if median != median else float(median),
        )
    return out


def batch(rng: random.Random, n: int, monitors: int, start: int) -> list[list[object]]:
    results: list[list[object]] = []
    for _ in range(n):
        status = rng.choice((UP, UP, UP, UP, DOWN, TIMEOUT))
        rt = None if status != UP or rng.random() < 0.05 else int(rng.lognormvariate(3, 1.2))
        at = start + rng.randrange(3 * D)  # across hours and days
        results.append([f"m{rng.randrange(monitors)}", at, status, rt])
    return results


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_folds_as_one_rollup_at_a_time_would(seed: int) -> None:
    rng = random.Random(seed)
    start = 1_800_000_000_000 - 1_800_000_000_000 % D + rng.randrange(D)
    earlier = batch(rng, 2_000, 30, start)
    stored = {
        row[:3]: Rollup(*row[3:10])  # type: ignore[arg-type]
        for row in fold(tally(earlier, SPANS), {})
    }
    assert {k: r[:10] for k, r in plainly(earlier, {}).items()} == {
        r[:3]: r[:10] for r in fold(tally(earlier, SPANS), {})
    }
    later = batch(rng, 3_000, 40, start)  # some rollups stored, some new
    got = {row[:3]: row for row in fold(tally(later, SPANS), stored)}
    assert got == plainly(later, stored)


def test_counts_beyond_a_pair_split_as_sketch_encode_splits_them() -> None:
    at = 1_800_000_000_000
    results: list[list[object]] = [["m", at + i, UP, 5] for i in range(70_000)]
    day = {row[:3]: row for row in fold(tally(results, SPANS), {})}[("m", 86400, at - at % D)]
    assert day[3] == 70_000
    assert Sketch.decode(day[9]).total == 70_000
    assert day[10] == 5.0


def test_nothing_to_fold() -> None:
    assert fold(tally([], SPANS), {}) == []


def test_a_rollup_of_failures_only_has_no_times() -> None:
    results: list[list[object]] = [["m", 0, DOWN, None], ["m", 1, TIMEOUT, None]]
    hour = fold(tally(results, SPANS), {})[0]
    assert hour == ("m", 3600, 0, 0, 1, 1, 0, None, None, b"", None)
