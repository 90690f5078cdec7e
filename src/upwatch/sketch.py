"""A mergeable response-time sketch: counts in fixed log-scale buckets.

Each value v ≥ 1 ms falls in bucket ``ceil(log(v) / log(GAMMA))`` (offset by one: zero
has bucket 0), and a bucket reads back as the point whose relative distance to both
its edges is ALPHA, as in DDSketch (Masson et al., VLDB 2019): any quantile read from
the sketch is within ALPHA of the exact one of the same rank. Response times are whole
milliseconds, so a bucket holding a single integer reads back as that integer: small
times come back exact.

Why fixed log buckets rather than DDSketch's collapsing store or an HDR histogram:
response times are bounded (the longest timeout is 60 s), so at ALPHA = 0.95 % the
whole range is about 620 buckets and nothing ever needs collapsing, and a sketch is a
dense array that numpy adds, sums and searches at C speed: merging a thousand monitors'
months of hours is one ``bincount`` per monitor (measured: bench/stats.py, README).
ALPHA stays under 1 % so that the figures the API shows, rounded to 0.001 ms, are
within the 1 % SPEC §9 asks.

Stored form: little-endian uint16 pairs (bucket, count) for the busy buckets, a count
above 65,535 split over several pairs: 4 bytes a busy bucket, decoded without a
Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

ALPHA = 0.0095
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MAX_MS = 120_000  # anything longer counts here (a check never lasts this long)
BUCKETS = math.ceil(math.log(MAX_MS) / _LOG_GAMMA) + 2
_U16 = 0xFFFF

Counts = npt.NDArray[np.int64]


def bucket_of(value: int) -> int:
    """The bucket of a response time in whole milliseconds (0 for 0)."""
    if value <= 0:
        return 0
    return min(BUCKETS - 1, math.ceil(math.log(value) / _LOG_GAMMA - 1e-9) + 1)


def buckets_of(values: Sequence[int]) -> npt.NDArray[np.intp]:
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(v), dtype=np.intp)
    pos = v > 0
    out[pos] = np.ceil(np.log(v[pos]) / _LOG_GAMMA - 1e-9).astype(np.intp) + 1
    return np.minimum(out, BUCKETS - 1)


def value_of(bucket: int) -> float:
    """What a bucket reads back as: its single integer if it holds one, else the point
    within ALPHA of everything in it."""
    if bucket <= 0:
        return 0.0
    low, high = GAMMA ** (bucket - 2), GAMMA ** (bucket - 1)  # the bucket is (low, high]
    if math.floor(high + 1e-9) - math.floor(low + 1e-9) == 1:
        return float(math.floor(high + 1e-9))
    return 2 * high / (GAMMA + 1)


class Sketch:
    """Counts per bucket. ``add`` values, ``merge`` other sketches, read ``quantile``."""

    __slots__ = ("counts",)

    def __init__(self, counts: Counts | None = None) -> None:
        self.counts: Counts = np.zeros(BUCKETS, dtype=np.int64) if counts is None else counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, value: int, n: int = 1) -> None:
        self.counts[bucket_of(value)] += n

    def add_all(self, values: Iterable[int]) -> None:
        listed = list(values)
        if listed:
            self.counts += np.bincount(buckets_of(listed), minlength=BUCKETS)

    def merge(self, other: Sketch) -> None:
        self.counts += other.counts

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (rank ceil(q * n)), None when empty."""
        cumulative = np.cumsum(self.counts)
        total = int(cumulative[-1])
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        return value_of(int(np.searchsorted(cumulative, rank)))

    def encode(self) -> bytes:
        busy = np.flatnonzero(self.counts)
        counts = self.counts[busy]
        if counts.size and int(counts.max()) > _U16:  # rare: split the big ones
            reps = (counts + _U16 - 1) // _U16
            busy = np.repeat(busy, reps)
            counts = np.concatenate(
                [
                    [_U16] * (int(r) - 1) + [int(c) - _U16 * (int(r) - 1)]
                    for c, r in zip(counts, reps, strict=True)
                ]
            )
        pairs = np.empty(2 * len(busy), dtype="<u2")
        pairs[0::2] = busy
        pairs[1::2] = counts
        return pairs.tobytes()

    @classmethod
    def decode(cls, data: bytes) -> Sketch:
        return cls.decode_all([data])

    @classmethod
    def decode_all(cls, blobs: Sequence[bytes]) -> Sketch:
        """One sketch of many stored ones, merged in one pass."""
        pairs = np.frombuffer(b"".join(blobs), dtype="<u2")
        counts = np.bincount(pairs[0::2], weights=pairs[1::2], minlength=BUCKETS)
        return cls(counts.astype(np.int64))


_BUCKET_VALUES = np.array([value_of(b) for b in range(BUCKETS)], dtype=np.float64)


def medians(
    blobs: Sequence[bytes], lows: Sequence[int | None], highs: Sequence[int | None]
) -> npt.NDArray[np.float64]:
    """Each stored sketch's nearest-rank median (as ``quantile(0.5)``), kept within its
    rollup's [low, high] where known and rounded to 0.001 ms as the API shows it; NaN
    for an empty sketch. Many at once in one pass of numpy: a thousand monitors' day
    is 24,000 sketches, too many to decode one by one."""
    out = np.full(len(blobs), np.nan)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // 4
    pairs = np.frombuffer(b"".join(blobs), dtype="<u2")  # (bucket, count), by bucket
    if not pairs.size:
        return out
    # Values counted up to each pair, all sketches end to end: a sketch's rank-th value
    # is in the first of its pairs that reaches the count before it plus the rank.
    reached = np.cumsum(pairs[1::2], dtype=np.int64)
    ends = np.cumsum(lengths)
    counted = np.concatenate(([0], reached))
    before = counted[ends - lengths]
    totals = counted[ends] - before
    busy = totals > 0
    ranks = np.maximum(1, np.ceil(totals[busy] * 0.5)).astype(np.int64)
    at = np.searchsorted(reached, before[busy] + ranks)
    low = np.array(lows, dtype=np.float64)[busy]  # None reads as NaN: no bound
    high = np.array(highs, dtype=np.float64)[busy]
    out[busy] = np.fmin(np.fmax(_BUCKET_VALUES[pairs[0::2][at]], low), high).round(3)
    return out


def exact_quantile(ordered: Sequence[int], q: float) -> int | None:
    """The nearest-rank q-quantile of sorted values: the sketch's definition, exactly."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
