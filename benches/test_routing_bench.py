"""Routing math: the Rust rendezvous pick and latency window against the same algorithms in pure Python.

Targets (issue 7): pick over 10 targets and a latency update each ≤ 1 µs from Python, at least 10 times the Python
versions. The Python pick uses the `xxhash` C extension for XXH3, so only the arithmetic around it is Python.
Run: `pytest benches/test_routing_bench.py --benchmark-only -o testpaths=benches`.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
from collections import deque
from types import SimpleNamespace

import pytest
import xxhash

from router._core import LatencyTracker, Rendezvous
from router.config import parse_config
from router.metrics import Metrics
from router.routing import Catalog, Need, Routing
from router.server.exchange import Exchange
from router.server.requests import decode_fields

NAMES = [f"provider-{i}/model-{i}" for i in range(10)]
WEIGHTS = [float(w) for w in (30, 20, 10, 10, 5, 5, 5, 5, 5, 5)]
KEYS = [f"trace-{i:06d}" for i in range(4096)]
# Each benchmark round makes 100 calls, so the per-round cost of the harness does not blur a sub-µs call.
BATCH = KEYS[:100]


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


def _picks(pick) -> None:
    # Driven from C (map into a zero-length deque): no Python loop overhead in either measurement.
    deque(map(pick, BATCH), maxlen=0)


@pytest.mark.benchmark(group="rendezvous-pick-10-targets-x100")
def test_pick_rust(benchmark) -> None:
    benchmark(_picks, Rendezvous(NAMES, WEIGHTS).pick)


@pytest.mark.benchmark(group="rendezvous-pick-10-targets-x100")
def test_pick_python(benchmark) -> None:
    benchmark(_picks, PyRendezvous(NAMES, WEIGHTS).pick)


# (target, seconds, now): timestamps repeat every round, so the window stays full and every update evicts.
UPDATES = [("model", 0.05 + (i * 7919 % 97) / 1000, float(i)) for i in range(100)]


def _updates(record) -> None:
    deque(itertools.starmap(record, UPDATES), maxlen=0)


@pytest.mark.benchmark(group="latency-update-full-window-x100")
def test_latency_update_rust(benchmark) -> None:
    record = LatencyTracker().record
    _updates(record)
    benchmark(_updates, record)


@pytest.mark.benchmark(group="latency-update-full-window-x100")
def test_latency_update_python(benchmark) -> None:
    record = PyLatencyWindow().record
    _updates(record)
    benchmark(_updates, record)


# -- the executor's own cost per request, upstream call excluded ------------------------------------------

ROUTING_CONFIG = """
providers: {up: {base_url: 'http://127.0.0.1:1/v1'}}
models:
  - {id: up/a, capabilities: [streaming]}
  - {id: up/b, capabilities: [streaming]}
policies:
  - {name: fallback, type: fallback, targets: [{model: up/a, retries: 2}, {model: up/b}]}
  - {name: load_balance, type: load_balance, targets: [{model: up/a, weight: 70}, {model: up/b, weight: 30}]}
  - {name: latency, type: latency, targets: [{model: up/a}, {model: up/b}]}
"""
BODY = b'{"model":"policy/x","messages":[{"role":"user","content":"What is the capital of France?"}]}'


@pytest.fixture(scope="module")
def routing_run():
    config = parse_config(ROUTING_CONFIG, "bench.yaml")
    routing = Routing(config, Catalog(config, created=0), Metrics(), 0)
    scope = SimpleNamespace(headers={})
    ids = itertools.count()

    async def call(model) -> None:
        return None

    def run(model_id: str) -> None:
        ex = Exchange(scope, None, "chat", f"req_{next(ids)}")  # type: ignore[arg-type]
        fields = decode_fields(BODY)
        coro = routing.run(ex, model_id, Need.chat(BODY, fields, stream=False), fields, call)
        # Nothing awaits for real: drive the coroutine by hand, without an event loop's overhead.
        with contextlib.suppress(StopIteration):
            coro.send(None)

    return run


@pytest.mark.benchmark(group="routing-executor-per-request")
@pytest.mark.parametrize("model", ["up/a", "policy/fallback", "policy/load_balance", "policy/latency"])
def test_routing_run(benchmark, routing_run, model: str) -> None:
    benchmark(routing_run, model)
