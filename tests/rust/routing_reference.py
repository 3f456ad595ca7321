"""Pure-Python versions of the routing math in rust/src/balance.rs and rust/src/latency.rs.

The tests check the Rust bindings against them; the benchmarks time both.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import xxhash

_M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class PyRendezvous:
    """Pure-Python weighted rendezvous hashing, the same formula as rust/src/balance.rs."""

    def __init__(self, names: list[str], weights: list[float]) -> None:
        total = sum(weights)
        self.targets = [(xxhash.xxh3_64_intdigest(n.encode()), w / total) for n, w in zip(names, weights, strict=True)]

    def pick(self, key: str) -> int:
        hashed = xxhash.xxh3_64_intdigest(key.encode())
        best, best_score = 0, -1.0
        for i, (seed, weight) in enumerate(self.targets):
            u = ((_mix(hashed ^ seed) >> 11) + 0.5) * (1.0 / (1 << 53))
            score = weight / -math.log(u)
            if score > best_score:
                best, best_score = i, score
        return best


class PyLatencyWindow:
    """Pure-Python rolling window (last 100 samples, ≤ 1 h) with the 10% trimmed mean, like latency.rs."""

    def __init__(self, capacity: int = 100, max_age: float = 3600.0, trim: float = 0.1) -> None:
        self.capacity, self.max_age, self.trim = capacity, max_age, trim
        self.windows: dict[str, tuple[deque[tuple[float, float]], list[float]]] = {}
        self.scores: dict[str, float] = {}

    def record(self, target: str, seconds: float, now: float) -> None:
        entry = self.windows.get(target)
        if entry is None:
            entry = self.windows[target] = (deque(), [])
        ring, ordered = entry
        while ring and now - ring[0][0] > self.max_age:
            ordered.pop(bisect.bisect_left(ordered, ring.popleft()[1]))
        if len(ring) == self.capacity:
            ordered.pop(bisect.bisect_left(ordered, ring.popleft()[1]))
        ring.append((now, seconds))
        bisect.insort(ordered, seconds)
        cut = int(len(ordered) * self.trim)
        kept = ordered[cut : len(ordered) - cut]
        self.scores[target] = sum(kept) / len(kept)
