"""Routing math: the Rust rendezvous pick and latency window against the same algorithms in pure Python.

Targets (issue 7): pick over 10 targets and a latency update each ≤ 1 µs from Python, at least 10 times the Python
versions. The Python pick uses the `xxhash` C extension for XXH3, so only the arithmetic around it is Python.
Run: `pytest benches/test_routing_bench.py --benchmark-only -o testpaths=benches`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque

import pytest
import xxhash

from router._core import LatencyTracker, Rendezvous

NAMES = [f"provider-{i}/model-{i}" for i in range(10)]
WEIGHTS = [float(w) for w in (30, 20, 10, 10, 5, 5, 5, 5, 5, 5)]
KEYS = [f"trace-{i:06d}" for i in range(4096)]


class PyRendezvous:
    """Pure-Python weighted rendezvous hashing, the same formula as rust/src/balance.rs."""

    def __init__(self, names: list[str], weights: list[float]) -> None:
        total = sum(weights)
        self.targets = [(xxhash.xxh3_64_intdigest(n.encode()), w / total) for n, w in zip(names, weights, strict=True)]

    def pick(self, key: str) -> int:
        data = key.encode()
        best, best_score = 0, -1.0
        for i, (seed, weight) in enumerate(self.targets):
            u = ((xxhash.xxh3_64_intdigest(data, seed) >> 11) + 0.5) * (1.0 / (1 << 53))
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


def test_python_pick_matches_rust() -> None:
    rust, python = Rendezvous(NAMES, WEIGHTS), PyRendezvous(NAMES, WEIGHTS)
    assert [rust.pick(k) for k in KEYS] == [python.pick(k) for k in KEYS]


def test_python_window_matches_rust() -> None:
    rust, python = LatencyTracker(), PyLatencyWindow()
    for i in range(300):
        value = 0.05 + (i * 7919 % 97) / 1000
        rust.record("m", value, float(i))
        python.record("m", value, float(i))
    assert rust.score("m", 299.0) == pytest.approx(python.scores["m"])


def _cycle_keys():
    return itertools.cycle(KEYS).__next__


@pytest.mark.benchmark(group="rendezvous-pick-10-targets")
def test_pick_rust(benchmark) -> None:
    pick, key = Rendezvous(NAMES, WEIGHTS).pick, _cycle_keys()
    benchmark(lambda: pick(key()))


@pytest.mark.benchmark(group="rendezvous-pick-10-targets")
def test_pick_python(benchmark) -> None:
    pick, key = PyRendezvous(NAMES, WEIGHTS).pick, _cycle_keys()
    benchmark(lambda: pick(key()))


def _samples():
    values = itertools.cycle([0.05 + (i * 7919 % 97) / 1000 for i in range(1000)]).__next__
    clock = itertools.count().__next__
    return values, clock


@pytest.mark.benchmark(group="latency-update-full-window")
def test_latency_update_rust(benchmark) -> None:
    tracker = LatencyTracker()
    values, clock = _samples()
    for _ in range(200):  # a full window: every update also evicts
        tracker.record("model", values(), float(clock()))
    benchmark(lambda: tracker.record("model", values(), float(clock())))


@pytest.mark.benchmark(group="latency-update-full-window")
def test_latency_update_python(benchmark) -> None:
    window = PyLatencyWindow()
    values, clock = _samples()
    for _ in range(200):
        window.record("model", values(), float(clock()))
    benchmark(lambda: window.record("model", values(), float(clock())))
