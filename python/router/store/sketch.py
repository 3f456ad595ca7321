"""Latency sketches for the usage rollups: log-bucketed histograms (the DDSketch scheme) that merge by adding
counts, so a month of hourly rollup rows answers p50/p90/p95/p99 without reading a raw row.

Why this scheme: a value x > 0 lands in bucket ceil(log(x) / log(G)) with G = (1 + A) / (1 - A); every value in
a bucket is within a relative distance A of the bucket's midpoint 2 G^i / (G + 1). So the quantile read back is
within **A = 1% relative error** of the exact value at the same rank, whatever the distribution, and two
sketches merge exactly (add the counts), which is what folding rows into hour and day cells and summing cells
over a range needs. t-digest merges only approximately (its error depends on the merge order); an HDR
histogram needs a fixed range and precision chosen up front. Sketches are sparse: only buckets that hold a
value are stored, ~250 at most over 1 ms to 10 min.

In SQLite a sketch is a BLOB (msgpack of {bucket: count}); `register` adds the SQL functions the rollup
upserts and reports use: `sketch_merge(a, b)`, the aggregate `sketch_sum(sketch)` and the aggregate
`sketch_of(value)` (for rebuilding a rollup from raw rows).
"""

from __future__ import annotations

import math
import sqlite3
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

import msgspec

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
# Values at or below this (in milliseconds) share the lowest bucket: a microsecond is below any latency measured.
_MIN_VALUE = 1e-3
_MIN_INDEX = math.ceil(math.log(_MIN_VALUE) / _LOG_GAMMA)
# A bucket's value read back: 2 G^i / (G + 1), within ALPHA of everything in it.
_MID = 2 / (GAMMA + 1)

_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.Decoder(dict[int, int]).decode


def index(value: float) -> int:
    if value <= _MIN_VALUE:
        return _MIN_INDEX
    return math.ceil(math.log(value) / _LOG_GAMMA)


def add(sketch: dict[int, int], value: float) -> None:
    i = index(value)
    sketch[i] = sketch.get(i, 0) + 1


def encode(sketch: dict[int, int]) -> bytes | None:
    """Canonical (buckets in order): a cell folded in batches and one rebuilt from raw rows are equal bytes."""
    return _encode(dict(sorted(sketch.items()))) if sketch else None


def decode(blob: bytes | None) -> dict[int, int]:
    return _decode(blob) if blob else {}


def merge_into(sketch: dict[int, int], other: dict[int, int]) -> None:
    for i, n in other.items():
        sketch[i] = sketch.get(i, 0) + n


def quantiles(sketch: dict[int, int], qs: Sequence[float]) -> list[float | None]:
    """The values at ranks int(q * count) (0-based, as the raw-row report ranks them), within ALPHA."""
    if not sketch:
        return [None] * len(qs)
    buckets = sorted(sketch)
    # Cumulative counts in bucket order: the bucket holding rank r is the first whose count exceeds r.
    seen = list(accumulate(map(sketch.__getitem__, buckets)))
    total = seen[-1]
    return [_MID * GAMMA ** buckets[bisect_right(seen, min(total - 1, int(q * total)))] for q in qs]


def of(values: Iterable[float]) -> dict[int, int]:
    sketch: dict[int, int] = {}
    for v in values:
        add(sketch, v)
    return sketch


def _merge(a: bytes | None, b: bytes | None) -> bytes | None:
    if not a:
        return b
    if not b:
        return a
    merged = _decode(a)
    merge_into(merged, _decode(b))
    return encode(merged)


class _Sum:
    """Merges a group's sketches; a group of one (a day x model report on the daily rollup) is passed through
    without decoding."""

    def __init__(self) -> None:
        self.first: bytes | None = None
        self.sketch: dict[int, int] | None = None

    def step(self, blob: bytes | None) -> None:
        if not blob:
            return
        if self.first is None:
            self.first = blob
            return
        if self.sketch is None:
            self.sketch = _decode(self.first)
        merge_into(self.sketch, _decode(blob))

    def finalize(self) -> bytes | None:
        return self.first if self.sketch is None else encode(self.sketch)


class _Of:
    def __init__(self) -> None:
        self.sketch: dict[int, int] = {}

    def step(self, value: float | None) -> None:
        if value is not None:
            add(self.sketch, value)

    def finalize(self) -> bytes | None:
        return encode(self.sketch)


def register(conn: sqlite3.Connection) -> None:
    conn.create_function("sketch_merge", 2, _merge, deterministic=True)
    conn.create_aggregate("sketch_sum", 1, _Sum)
    conn.create_aggregate("sketch_of", 1, _Of)
