"""Check results folded into rollups, all of a batch at once: pure numpy, no I/O
(store/rollups.py reads and writes the rows).

A minute of 10,000 monitors at 10 s is 60,000 results touching 20,000 rollup rows.
Folded a row at a time, each with Sketch objects, that took the checker's event loop
0.7 s per transaction, and checks due meanwhile started seconds late (bench/soak.py:
lateness p99 2.6 s). Here every step is one numpy pass over the whole batch: each
rollup a batch touches is a *key* (monitor, span, start), numbered from 0, and a
sketch's counts are (key * BUCKETS + bucket, count) pairs, so that adding new results
to stored sketches is one ``unique`` and one ``bincount`` for all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from upwatch.sketch import BUCKETS, Sketch, buckets_of, medians
from upwatch.stats import Rolled

Key = tuple[str, int, int]  # monitor id, span (s), start (ms, a multiple of the span)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

UP, DOWN, TIMEOUT = 0, 1, 2  # status codes, as store/rollups.py's pending rows hold them
_START_BITS = 25  # a batch's starts, in spans from its earliest: 2**25 hours is 3,800 years
_U16 = 0xFFFF


@dataclass(frozen=True, slots=True)
class Tally:
    """A batch of results added up per key; arrays are by key index."""

    keys: list[Key]
    up: Ints
    down: Ints
    timeout: Ints
    rt_sum: Ints
    rt_min: Floats  # NaN: no timed check
    rt_max: Floats
    pair_codes: Ints  # key index * BUCKETS + bucket, sorted
    pair_counts: Ints


def tally(results: Sequence[Sequence[Any]], spans_s: Sequence[int]) -> Tally:
    """``results``: [monitor id, checked_at (ms), status code, response ms or None], as
    a pending row holds them; each counts once in every span."""
    n = len(results)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        nothing = np.zeros(0, dtype=np.float64)
        return Tally([], empty, empty, empty, empty, nothing, nothing, empty, empty)
    ids, at_list, status_list, rt_list = zip(*results, strict=True)
    numbers: dict[str, int] = {}
    who = np.fromiter((numbers.setdefault(m, len(numbers)) for m in ids), np.int64, n)
    names = list(numbers)
    at = np.array(at_list, dtype=np.int64)
    status = np.array(status_list, dtype=np.int64)
    rt = np.array([-1 if r is None else r for r in rt_list], dtype=np.int64)
    spans = len(spans_s)
    codes, firsts = [], []
    for s, span_s in enumerate(spans_s):
        unit = at // (span_s * 1000)
        first = int(unit.min())
        firsts.append(first)
        codes.append(((who * spans + s) << _START_BITS) | (unit - first))
    unique, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(unique)
    base = unique >> _START_BITS
    span_of = base % spans
    start_units = (unique & ((1 << _START_BITS) - 1)) + np.array(firsts)[span_of]
    span_list = [spans_s[s] for s in span_of.tolist()]
    keys = [
        (names[w], span, u * span * 1000)
        for w, span, u in zip(
            (base // spans).tolist(), span_list, start_units.tolist(), strict=True
        )
    ]
    status_all, rt_all = np.tile(status, spans), np.tile(rt, spans)

    def count(mask: npt.NDArray[np.bool_]) -> Ints:
        return np.bincount(inverse[mask], minlength=k).astype(np.int64)

    timed = (status_all == UP) & (rt_all >= 0)
    on, times = inverse[timed], rt_all[timed]
    low, high = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(low, on, times)
    np.maximum.at(high, on, times)
    pair_codes, pair_counts = np.unique(on * BUCKETS + buckets_of(times), return_counts=True)
    return Tally(
        keys=keys,
        up=count(status_all == UP),
        down=count(status_all == DOWN),
        timeout=count(status_all == TIMEOUT),
        rt_sum=np.bincount(on, weights=times, minlength=k).astype(np.int64),
        rt_min=np.where(np.isinf(low), np.nan, low),
        rt_max=np.where(np.isinf(high), np.nan, high),
        pair_codes=pair_codes.astype(np.int64),
        pair_counts=pair_counts.astype(np.int64),
    )


# A rollup row as written: in store/fastpath.py's ROLLUP_COLUMNS order.
Folded = tuple[str, int, int, int, int, int, int, int | None, int | None, bytes, float | None]


def fold(t: Tally, stored: Mapping[Key, Rolled]) -> list[Folded]:
    """Each key's rollup after the tally is added to its stored row (if any)."""
    k = len(t.keys)
    if k == 0:
        return []
    up, down, timeout, rt_sum = t.up.copy(), t.down.copy(), t.timeout.copy(), t.rt_sum.copy()
    low, high = t.rt_min.copy(), t.rt_max.copy()
    old_at = [i for i, key in enumerate(t.keys) if key in stored]
    codes, counts = t.pair_codes, t.pair_counts
    if old_at:
        old = [stored[t.keys[i]] for i in old_at]
        at = np.array(old_at, dtype=np.int64)
        up[at] += [r.up for r in old]
        down[at] += [r.down for r in old]
        timeout[at] += [r.timeout for r in old]
        rt_sum[at] += [r.rt_sum for r in old]
        low[at] = np.fmin(low[at], np.array([r.rt_min for r in old], dtype=np.float64))
        high[at] = np.fmax(high[at], np.array([r.rt_max for r in old], dtype=np.float64))
        blobs = [r.sketch for r in old]
        pairs = np.frombuffer(b"".join(blobs), dtype="<u2").astype(np.int64)
        owner = np.repeat(at, [len(b) // 4 for b in blobs])
        codes = np.concatenate((codes, owner * BUCKETS + pairs[0::2]))
        counts = np.concatenate((counts, pairs[1::2]))
    merged, inverse = np.unique(codes, return_inverse=True)
    totals = np.bincount(inverse.reshape(-1), weights=counts).astype(np.int64)
    sketches = _encode(merged // BUCKETS, merged % BUCKETS, totals, k)
    lows = [None if v != v else int(v) for v in low.tolist()]  # NaN: no timed check
    highs = [None if v != v else int(v) for v in high.tolist()]
    found = medians(sketches, lows, highs).tolist()
    return [
        (m, span, start, u, d, to, total, lo, hi, blob, None if med != med else med)
        for (m, span, start), u, d, to, total, lo, hi, blob, med in zip(
            t.keys,
            up.tolist(),
            down.tolist(),
            timeout.tolist(),
            rt_sum.tolist(),
            lows,
            highs,
            sketches,
            found,
            strict=True,
        )
    ]


def _encode(owner: Ints, bucket: Ints, count: Ints, k: int) -> list[bytes]:
    """Each key's sketch in Sketch.encode's form, from (key, bucket, count) sorted by key
    and bucket."""
    bounds = np.searchsorted(owner, np.arange(k + 1)).tolist()
    if count.size and int(count.max()) > _U16:  # rare (a day at 1 s checks): Sketch splits
        blobs = []
        for a, b in itertools.pairwise(bounds):
            counts = np.zeros(BUCKETS, dtype=np.int64)
            counts[bucket[a:b]] = count[a:b]
            blobs.append(Sketch(counts).encode())
        return blobs
    pairs = np.empty(2 * len(bucket), dtype="<u2")
    pairs[0::2] = bucket
    pairs[1::2] = count
    raw = pairs.tobytes()
    return [raw[4 * a : 4 * b] for a, b in itertools.pairwise(bounds)]
