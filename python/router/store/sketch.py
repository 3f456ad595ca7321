"""Latency sketches for the usage rollups: log-bucketed histograms (the DDSketch scheme) that merge by adding
counts, so a month of hourly rollup rows answers p50/p90/p95/p99 without reading a raw row.

Why this scheme: a value x > 0 lands in bucket ceil(log(x) / log(G)) with G = (1 + A) / (1 - A); every value in
a bucket is within a relative distance A of the bucket's midpoint 2 G^i / (G + 1). So the quantile read back is
within **A = 1% relative error** of the exact value at the same rank, whatever the distribution, and two
sketches merge exactly (add the counts), which is what folding rows into hour and day cells and summing cells
over a range needs. t-digest merges only approximately (its error depends on the merge order); an HDR
histogram needs a fixed range and precision chosen up front. Sketches are sparse: only buckets that hold a
value are stored: a few hundred at most between 1 ms and 10 minutes.

In SQLite a sketch is a BLOB: the number of buckets n (u16), then their indexes in order (n x i16), then their
counts (n x u64), little-endian, so a report reads one with two `array.frombytes` calls and no sort. `register`
adds the SQL functions the rollup upserts and reports use: `sketch_merge(a, b)`, the aggregate
`sketch_sum(sketch)` and the aggregate `sketch_of(value)` (for rebuilding a rollup from raw rows).
"""

from __future__ import annotations

import math
import sqlite3
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
# Values at or below this (in milliseconds) share the lowest bucket: a microsecond is below any latency measured.
_MIN_VALUE = 1e-3
_MIN_INDEX = math.ceil(math.log(_MIN_VALUE) / _LOG_GAMMA)
# A bucket's value read back: 2 G^i / (G + 1), within ALPHA of everything in it.
_MID = 2 / (GAMMA + 1)

_COUNT = struct.Struct("<H")
_SWAP = sys.byteorder == "big"  # arrays are native-endian; the stored form is little-endian everywhere


def index(value: float) -> int:
    if value <= _MIN_VALUE:
        return _MIN_INDEX
    return math.ceil(math.log(value) / _LOG_GAMMA)


def add(sketch: dict[int, int], value: float) -> None:
    i = index(value)
    sketch[i] = sketch.get(i, 0) + 1


def encode(sketch: dict[int, int]) -> bytes | None:
    """Canonical (buckets in order): a cell folded in batches and one rebuilt from raw rows are equal bytes."""
    if not sketch:
        return None
    buckets = sorted(sketch)
    indexes, counts = array("h", buckets), array("Q", map(sketch.__getitem__, buckets))
    if _SWAP:
        indexes.byteswap()
        counts.byteswap()
    return _COUNT.pack(len(buckets)) + indexes.tobytes() + counts.tobytes()


def _arrays(blob: bytes) -> tuple[array, array]:
    (n,) = _COUNT.unpack_from(blob)
    indexes, counts = array("h"), array("Q")
    indexes.frombytes(blob[2 : 2 + 2 * n])
    counts.frombytes(blob[2 + 2 * n : 2 + 10 * n])
    if _SWAP:
        indexes.byteswap()
        counts.byteswap()
    return indexes, counts


def decode(blob: bytes | None) -> dict[int, int]:
    return dict(zip(*_arrays(blob), strict=True)) if blob else {}


def stored_quantiles(blob: bytes | None, qs: Sequence[float]) -> tuple[int, list[float | None]]:
    """(how many values, the quantiles) of a stored sketch, read without building a dict."""
    if not blob:
        return 0, [None] * len(qs)
    indexes, counts = _arrays(blob)
    return _read(indexes, list(accumulate(counts)), qs)


def _read(buckets: Sequence[int], seen: list[int], qs: Sequence[float]) -> tuple[int, list[float | None]]:
    # The bucket holding rank r is the first whose cumulative count exceeds r.
    total = seen[-1]
    return total, [_MID * GAMMA ** buckets[bisect_right(seen, min(total - 1, int(q * total)))] for q in qs]


def merge_into(sketch: dict[int, int], other: dict[int, int]) -> None:
    for i, n in other.items():
        sketch[i] = sketch.get(i, 0) + n


def quantiles(sketch: dict[int, int], qs: Sequence[float]) -> list[float | None]:
    """The values at ranks int(q * count) (0-based, as the raw-row report ranks them), within ALPHA."""
    if not sketch:
        return [None] * len(qs)
    buckets = sorted(sketch)
    return _read(buckets, list(accumulate(map(sketch.__getitem__, buckets))), qs)[1]


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
    merged = decode(a)
    merge_into(merged, decode(b))
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
            self.sketch = decode(self.first)
        merge_into(self.sketch, decode(blob))

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
