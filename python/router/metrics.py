"""Prometheus metrics.

With several granian workers each process records into files under PROMETHEUS_MULTIPROC_DIR (set by
`router serve` before workers start) and a scrape of any worker aggregates all of them; with one worker
the values live in memory. Label children are cached in plain dicts because `.labels()` takes a lock
and builds a tuple on every call, which shows up at thousands of requests per second.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as mp

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "router_requests", "Requests answered, by endpoint, model, provider and HTTP status.",
            ["endpoint", "model", "provider", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "router_request_duration_seconds", "Time from request received to response complete.",
            ["endpoint", "model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_latency = Histogram(
            "router_upstream_duration_seconds", "Time spent waiting on the upstream provider.",
            ["provider", "model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "router_time_to_first_token_seconds", "Time from request received to the first streamed token.",
            ["provider", "model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.overhead = Histogram(
            "router_overhead_seconds", "Time the gateway itself added to a request (total minus upstream).",
            ["endpoint"], buckets=_OVERHEAD_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "router_tokens", "Tokens counted, by model and kind (prompt, completion, cached).",
            ["model", "kind"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "router_in_flight_requests", "Requests being handled right now.", registry=r, multiprocess_mode="livesum"
        )
        self._children: dict[tuple, object] = {}

    def _child(self, metric, *labels: str):  # type: ignore[no-untyped-def]
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(
        self, endpoint: str, model: str, provider: str, status: int, seconds: float, overhead: float
    ) -> None:
        self._child(self.requests, endpoint, model, provider, str(status)).inc()
        self._child(self.latency, endpoint, model).observe(seconds)
        self._child(self.overhead, endpoint).observe(overhead)

    def observe_upstream(self, provider: str, model: str, seconds: float) -> None:
        self._child(self.upstream_latency, provider, model).observe(seconds)

    def observe_ttft(self, provider: str, model: str, seconds: float) -> None:
        self._child(self.ttft, provider, model).observe(seconds)

    def count_tokens(self, model: str, prompt: int | None, completion: int | None, cached: int | None) -> None:
        if prompt:
            self._child(self.tokens, model, "prompt").inc(prompt)
        if completion:
            self._child(self.tokens, model, "completion").inc(completion)
        if cached:
            self._child(self.tokens, model, "cached").inc(cached)

    def render(self) -> bytes:
        if multiprocess_enabled():
            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def mark_worker_dead(pid: int) -> None:
    if multiprocess_enabled():
        mp.mark_process_dead(pid)
