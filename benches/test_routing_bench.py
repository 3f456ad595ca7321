"""Routing math: the Rust rendezvous pick and latency window against the same algorithms in pure Python.

Targets (issue 7): pick over 10 targets and a latency update each ≤ 1 µs from Python, at least 10 times the Python
versions (tests/rust/routing_reference.py; its pick uses the `xxhash` C extension for XXH3).
The executor's own cost per request is measured for a direct model and each policy kind, and for a target
paying with the organisation's BYOK key and a key-scoped policy (issue 7's API part), next to the others.
Run: `pytest benches/test_routing_bench.py --benchmark-only -o testpaths=benches`.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest

from router._core import LatencyTracker, Rendezvous
from router.config import parse_config
from router.metrics import Metrics
from router.routing import Catalog, Need, Routing
from router.routing.credentials import Credential
from router.server.exchange import Exchange
from router.server.requests import decode_fields

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from routing_reference import PyLatencyWindow, PyRendezvous

NAMES = [f"provider-{i}/model-{i}" for i in range(10)]
WEIGHTS = [float(w) for w in (30, 20, 10, 10, 5, 5, 5, 5, 5, 5)]
# Each benchmark round makes 100 calls, so the per-round cost of the harness does not blur a sub-µs call.
BATCH = [f"trace-{i:06d}" for i in range(100)]


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
  - {name: byok, type: fallback, targets: [{model: up/a, key_strategy: own_then_router}, {model: up/b}]}
  - {name: scoped, type: fallback, targets: [{model: up/a}, {model: up/b}]}
"""
BODY = b'{"model":"policy/x","messages":[{"role":"user","content":"What is the capital of France?"}]}'


@pytest.fixture(scope="module")
def routing_run():
    config = parse_config(ROUTING_CONFIG, "bench.yaml")
    routing = Routing(config, Catalog(config, created=0), Metrics(), 0)
    # policy/byok pays with the organisation's own key; policy/scoped belongs to the key the requests use.
    own = Credential({"authorization": "Bearer own"}, True)
    routing.own_keys = {"up": own}.get
    routing.replace_policies(list(config.policies), "bench", {"scoped": "key_bench"})
    scope = SimpleNamespace(headers={})
    ids = itertools.count()

    async def call(model) -> None:
        return None

    def run(model_id: str) -> None:
        ex = Exchange(scope, None, "chat", f"req_{next(ids)}")  # type: ignore[arg-type]
        ex.key_id = "key_bench"
        fields = decode_fields(BODY)
        coro = routing.run(ex, model_id, Need.chat(BODY, fields, stream=False), fields, call)
        # Nothing awaits for real: drive the coroutine by hand, without an event loop's overhead.
        with contextlib.suppress(StopIteration):
            coro.send(None)

    return run


@pytest.mark.benchmark(group="routing-executor-per-request")
@pytest.mark.parametrize(
    "model", ["up/a", "policy/fallback", "policy/load_balance", "policy/latency", "policy/byok", "policy/scoped"]
)
def test_routing_run(benchmark, routing_run, model: str) -> None:
    benchmark(routing_run, model)
