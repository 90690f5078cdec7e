"""The response-time sketch: percentiles within 1 % of the exact ones over the same
results, however the results are split into rollups and merged back."""

import math
import random

import pytest

from upwatch.sketch import ALPHA, Sketch, bucket_of, exact_quantile, value_of
from upwatch.stats import Checks, Rollup


def distributions(rng: random.Random) -> dict[str, list[int]]:
    n = 20_000
    return {
        "uniform": [rng.randint(1, 5_000) for _ in range(n)],
        "log-normal": [max(1, round(rng.lognormvariate(3.0, 1.0))) for _ in range(n)],
        "bimodal": [
            max(1, round(rng.gauss(4, 1) if rng.random() < 0.7 else rng.gauss(180, 25)))
            for _ in range(n)
        ],
        "with-zeros": [rng.choice((0, 0, 1, 2, 3, 250)) for _ in range(n)],
    }


@pytest.mark.parametrize("name", ["uniform", "log-normal", "bimodal", "with-zeros"])
def test_merged_rollup_percentiles_are_within_one_percent_of_exact(name: str) -> None:
    values = distributions(random.Random(9))[name]
    ordered = sorted(values)
    merged = Checks()
    rolled = []
    for hour in range(0, len(values), 360):  # an hour of 10 s checks per rollup
        chunk = values[hour : hour + 360]
        part = Sketch()
        part.add_all(chunk)
        rolled.append(Rollup(len(chunk), 0, 0, sum(chunk), min(chunk), max(chunk), part.encode()))
    merged.add_rollups(rolled[:10])
    merged.add_rollups(rolled[10:])
    assert merged.values is None  # percentiles come from the sketch
    assert merged.total == len(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = exact_quantile(ordered, q)
        assert exact is not None
        estimate = merged.percentile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= 0.01 * exact, (q, exact, estimate)


def test_raw_results_give_exact_percentiles() -> None:
    c = Checks()
    for v in (5, 1, 9, 3, 7):
        c.add_exact("up", v)
    c.add_exact("down", None)
    assert (c.percentile(0.5), c.percentile(0.99), c.rt_min, c.rt_max) == (5, 9, 1, 9)
    assert (c.total, c.up, c.down) == (6, 5, 1)


def test_every_bucket_represents_its_values_within_alpha_and_small_ones_exactly() -> None:
    for v in range(1, 60_001, 7):
        assert abs(value_of(bucket_of(v)) - v) <= ALPHA * v + 1e-9
    assert [value_of(bucket_of(v)) for v in range(52)] == list(range(52))


def test_raw_results_merged_with_rollups_keep_every_value() -> None:
    c = Checks()
    c.add_exact("up", 10)
    c.add_exact("timeout", None)
    part = Sketch()
    part.add_all([20, 30])
    c.add_rollups([Rollup(2, 1, 0, 50, 20, 30, part.encode())])
    c.add_exact("up", 40)
    assert (c.total, c.up, c.down, c.timeout, c.timed) == (6, 4, 1, 1, 4)
    assert (c.rt_min, c.rt_max, c.percentile(0.5), c.percentile(1.0)) == (10, 40, 20, 40)
    assert c.response_times(("p50", 0.5))["mean"] == 25


def test_the_encoding_round_trips_and_is_compact() -> None:
    s = Sketch()
    s.add_all([1, 2, 2, 3, 10, 10, 10, 60_000, 0])
    s.add(500, n=70_000)  # more than a stored pair holds
    back = Sketch.decode(s.encode())
    assert (back.counts == s.counts).all()
    assert back.total == s.total == 70_009
    assert len(s.encode()) == 4 * (7 + 1)  # 4 bytes a busy bucket; 70,000 takes two
    assert Sketch.decode(b"").total == 0


def test_an_empty_sketch_has_no_quantile() -> None:
    assert Sketch().quantile(0.5) is None
    assert exact_quantile([], 0.5) is None
    assert math.isclose(Sketch.decode(Sketch().encode()).total, 0)
