"""Prometheus metrics, recorded for the price of a dict update.

prometheus-client's metric objects take a lock and walk their buckets on every call; at thousands of
requests per second the nine updates a request makes cost ~12% of a worker (measured with wrk). So the hot
path only bumps plain counters here, and a custom collector turns them into metric families when
Prometheus scrapes. With several granian workers each one also writes its totals to a small file under
ROUTER_METRICS_DIR (set by `router serve`) once a second and on shutdown, and a scrape of any worker
adds up every worker's file, so totals never depend on which worker answered.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ._core import FindingCounts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)

# name → (help, label names, buckets or None for a counter)
FAMILIES: dict[str, tuple[str, tuple[str, ...], tuple[float, ...] | None]] = {
    "router_requests": (
        "Requests answered, by endpoint, model, provider and HTTP status.",
        ("endpoint", "model", "provider", "status"),
        None,
    ),
    "router_request_duration_seconds": (
        "Time from request received to response complete.",
        ("endpoint", "model"),
        LATENCY_BUCKETS,
    ),
    "router_upstream_duration_seconds": (
        "Time spent waiting on the upstream provider.",
        ("provider", "model"),
        LATENCY_BUCKETS,
    ),
    "router_time_to_first_token_seconds": (
        "Time from request received to the first streamed token.",
        ("provider", "model"),
        LATENCY_BUCKETS,
    ),
    "router_overhead_seconds": (
        "Time the gateway itself added to a request (total minus upstream).",
        ("endpoint",),
        OVERHEAD_BUCKETS,
    ),
    "router_tokens": ("Tokens counted, by model and kind (prompt, completion, cached).", ("model", "kind"), None),
    "router_cost_usd": (
        "Cost of proxied requests in USD, from catalog prices, by model, provider and the key's first group id.",
        ("model", "provider", "group"),
        None,
    ),
    "router_policy_attempts": (
        "Attempts made for policy/<name> requests, by policy, target model and outcome "
        "(ok, error: retryable failure, rejected: non-retryable upstream answer, broken_stream, skipped).",
        ("policy", "model", "outcome"),
        None,
    ),
    "router_guardrail_findings": (
        "Sensitive values found by the guardrails, by category, direction (request, response) and action.",
        ("category", "direction", "action"),
        None,
    ),
    "router_mcp_calls": (
        "MCP gateway calls, by server, tool (whitelisted tools only; 'other' past the cap) and outcome.",
        ("server", "tool", "status"),
        None,
    ),
    "router_mcp_call_duration_seconds": (
        "Time from an MCP tools/call received to its answer sent, by server and tool.",
        ("server", "tool"),
        LATENCY_BUCKETS,
    ),
}
IN_FLIGHT = "router_in_flight_requests"
UPSTREAM_IN_FLIGHT = "router_upstream_in_flight"
UPSTREAM_QUEUED = "router_upstream_queued"

# A histogram series: per-bucket counts (last slot is +Inf) and the sum of observed values.
Series = list[float]


class Snapshot(msgspec.Struct):
    """One worker's totals, as written to its file for the other workers' scrapes."""

    pid: int
    in_flight: int
    series: dict[str, list[tuple[list[str], list[float]]]]
    # provider → [requests in flight to it, requests queued for one of its slots]
    upstream: dict[str, list[int]] = {}


METRICS_DIR_ENV = "ROUTER_METRICS_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(METRICS_DIR_ENV)
    return Path(value) if value else None


class _RequestCells:
    """The series one (endpoint, model, provider, status) updates; the optional ones made when first counted."""

    __slots__ = ("completion", "count", "duration", "overhead", "prompt", "upstream")

    def __init__(self, count: Series, duration: Series, overhead: Series) -> None:
        self.count = count
        self.duration = duration
        self.overhead = overhead
        self.upstream: Series | None = None
        self.prompt: Series | None = None
        self.completion: Series | None = None


class Metrics:
    def __init__(self) -> None:
        self.in_flight = 0
        self._series: dict[str, dict[tuple[str, ...], Series]] = {name: {} for name in FAMILIES}
        # (endpoint, model, provider, status) → the series its requests update (`observe_request`).
        self._request_cells: dict[tuple[str, str, str, int], _RequestCells] = {}
        # Counted in Rust by the guardrails' `Actions.record`, with the request's audit triggers in one call.
        self.guardrail_findings = FindingCounts()
        self._dir = multiprocess_dir()
        # Gauges read at scrape time from shared state (budgets): (name, help, label name, [(label, value)]).
        self.gauges: Callable[[], list[tuple[str, str, str, list[tuple[str, float]]]]] | None = None
        # provider → (in flight, queued) in this worker, read when a snapshot is taken (set by the app).
        self.upstream_load: Callable[[], dict[str, tuple[int, int]]] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- recording (hot path) -----------------------------------------------------------------------

    def _count(self, name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        series = self._series[name]
        cell = series.get(labels)
        if cell is None:
            series[labels] = [amount]
        else:
            cell[0] += amount

    def _observe(self, name: str, labels: tuple[str, ...], value: float) -> None:
        series = self._series[name]
        cell = series.get(labels)
        buckets = FAMILIES[name][2]
        assert buckets is not None
        if cell is None:
            cell = series[labels] = [0.0] * (len(buckets) + 2)
        cell[bisect.bisect_left(buckets, value)] += 1
        cell[-1] += value

    def _cell(self, name: str, labels: tuple[str, ...]) -> Series:
        """The series of `name` with these labels, created empty if new."""
        series = self._series[name]
        cell = series.get(labels)
        if cell is None:
            buckets = FAMILIES[name][2]
            cell = series[labels] = [0.0] if buckets is None else [0.0] * (len(buckets) + 2)
        return cell

    def observe_request(
        self,
        endpoint: str,
        model: str,
        provider: str,
        status: int,
        seconds: float,
        overhead: float,
        upstream: float = 0.0,
        ttft: float | None = None,
        prompt: int | None = None,
        completion: int | None = None,
        cached: int | None = None,
        cost_usd: float = 0.0,
        group: str = "",
    ) -> None:
        """Everything one answered request updates (the request counter, the duration and overhead histograms;
        and what applies of the upstream's duration, the time to first token, tokens and cost), in one call:
        the series of a (endpoint, model, provider, status) are found with one lookup, not one per series, and
        none is created before it has something to count."""
        key = (endpoint, model, provider, status)
        cells = self._request_cells.get(key)
        if cells is None:
            cells = self._request_cells[key] = _RequestCells(
                self._cell("router_requests", (endpoint, model, provider, str(status))),
                self._cell("router_request_duration_seconds", (endpoint, model)),
                self._cell("router_overhead_seconds", (endpoint,)),
            )
        cells.count[0] += 1
        duration = cells.duration
        duration[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        duration[-1] += seconds
        spent = cells.overhead
        spent[bisect.bisect_left(OVERHEAD_BUCKETS, overhead)] += 1
        spent[-1] += overhead
        if upstream:
            waited = cells.upstream
            if waited is None:
                waited = cells.upstream = self._cell("router_upstream_duration_seconds", (provider, model))
            waited[bisect.bisect_left(LATENCY_BUCKETS, upstream)] += 1
            waited[-1] += upstream
        if ttft is not None:
            self.observe_ttft(provider, model, ttft)
        if prompt:
            if cells.prompt is None:
                cells.prompt = self._cell("router_tokens", (model, "prompt"))
            cells.prompt[0] += prompt
        if completion:
            if cells.completion is None:
                cells.completion = self._cell("router_tokens", (model, "completion"))
            cells.completion[0] += completion
        if cached:
            self._count("router_tokens", (model, "cached"), cached)
        if cost_usd:
            self._count("router_cost_usd", (model, provider, group), cost_usd)

    def observe_ttft(self, provider: str, model: str, seconds: float) -> None:
        self._observe("router_time_to_first_token_seconds", (provider, model), seconds)

    def count_attempt(self, policy: str, model: str, outcome: str) -> None:
        self._count("router_policy_attempts", (policy, model, outcome))

    def observe_mcp(self, server: str, tool: str, status: str, seconds: float) -> None:
        self._count("router_mcp_calls", (server, tool, status))
        self._observe("router_mcp_call_duration_seconds", (server, tool), seconds)

    # -- several workers ----------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        self._series["router_guardrail_findings"] = {
            (category, direction, action): [n] for category, direction, action, n in self.guardrail_findings.items()
        }
        series = {name: [(list(k), list(v)) for k, v in cells.items()] for name, cells in self._series.items()}
        load = self.upstream_load() if self.upstream_load is not None else {}
        return Snapshot(os.getpid(), self.in_flight, series, {p: list(v) for p, v in load.items()})

    async def publish(self, interval: float = 1.0) -> None:
        """Keep this worker's file current for the other workers' scrapes (run as a task when several)."""
        while True:
            await asyncio.sleep(interval)
            self.write_snapshot()

    @property
    def shared(self) -> bool:
        return self._dir is not None

    def write_snapshot(self) -> None:
        if self._dir is None:
            return
        target = self._dir / f"router-{os.getpid()}.json"
        scratch = target.with_suffix(".tmp")
        scratch.write_bytes(msgspec.json.encode(self._snapshot()))
        os.replace(scratch, target)  # atomic: a scrape never reads half a file

    def close(self) -> None:
        """Final totals of a worker that is shutting down; its in-flight count drops out."""
        self.in_flight = 0
        self.write_snapshot()

    def _all_snapshots(self) -> list[Snapshot]:
        own = self._snapshot()
        if self._dir is None:
            return [own]
        snapshots = [own]
        decoder = msgspec.json.Decoder(Snapshot)
        for file in self._dir.glob("router-*.json"):
            with contextlib.suppress(OSError, msgspec.DecodeError):
                other = decoder.decode(file.read_bytes())
                if other.pid != own.pid:
                    snapshots.append(other)
        return snapshots

    # -- scraping -------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        snapshots = self._all_snapshots()
        for name, (doc, label_names, buckets) in FAMILIES.items():
            merged: dict[tuple[str, ...], list[float]] = {}
            for snap in snapshots:
                for labels, values in snap.series.get(name, []):
                    key = tuple(labels)
                    if key in merged:
                        merged[key] = [a + b for a, b in zip(merged[key], values, strict=True)]
                    else:
                        merged[key] = list(values)
            if buckets is None:
                family = CounterMetricFamily(name, doc, labels=label_names)
                for key, (total,) in sorted(merged.items()):
                    family.add_metric(key, total)
            else:
                family = HistogramMetricFamily(name, doc, labels=label_names)
                bounds = [*(repr(b) for b in buckets), "+Inf"]
                for key, values in sorted(merged.items()):
                    cumulative, running = [], 0.0
                    for bound, count in zip(bounds, values[:-1], strict=True):
                        running += count
                        cumulative.append((bound, running))
                    family.add_metric(key, cumulative, sum_value=values[-1])
            yield family
        if self.gauges is not None:
            for name, doc, label, values in self.gauges():
                family = GaugeMetricFamily(name, doc, labels=[label])
                for value_label, value in values:
                    family.add_metric([value_label], value)
                yield family
        live = [s for s in snapshots if s.pid == os.getpid() or pid_alive(s.pid)]
        gauge = GaugeMetricFamily(IN_FLIGHT, "Requests being handled right now, across workers.")
        gauge.add_metric([], sum(s.in_flight for s in live))
        yield gauge
        totals: dict[str, list[int]] = {}
        for s in live:
            for provider, (flying, queued) in s.upstream.items():
                total = totals.setdefault(provider, [0, 0])
                total[0] += flying
                total[1] += queued
        for name, doc, at in (
            (UPSTREAM_IN_FLIGHT, "Requests in flight to each upstream provider, across workers.", 0),
            (UPSTREAM_QUEUED, "Requests waiting for a slot of a capped provider (max_connections).", 1),
        ):
            family = GaugeMetricFamily(name, doc, labels=["provider"])
            for provider in sorted(totals):
                family.add_metric([provider], totals[provider][at])
            yield family

    def render(self) -> bytes:
        return generate_latest(self.registry)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
