"""`Metrics.observe_request` updates every series an answered request touches in one call: the same series,
with the same values, as one update per series, and none made for what the request did not have."""

from __future__ import annotations

from router.metrics import Metrics


def _series(metrics: Metrics) -> dict[str, dict[tuple[str, ...], list[float]]]:
    return {name: {k: list(v) for k, v in cells.items()} for name, cells in metrics._series.items() if cells}


def test_an_answer_with_everything_counts_each_series_once() -> None:
    metrics = Metrics()
    for _ in range(2):
        metrics.observe_request(
            "chat", "up/m", "up", 200, 0.2, 0.0003, upstream=0.15, ttft=0.05, prompt=10, completion=5, cached=3,
            cost_usd=0.25, group="g1",
        )  # fmt: skip
    got = _series(metrics)
    assert got["router_requests"] == {("chat", "up/m", "up", "200"): [2]}
    assert got["router_tokens"] == {("up/m", "prompt"): [20], ("up/m", "completion"): [10], ("up/m", "cached"): [6]}
    assert got["router_cost_usd"] == {("up/m", "up", "g1"): [0.5]}
    duration = got["router_request_duration_seconds"][("chat", "up/m")]
    assert sum(duration[:-1]) == 2 and duration[-1] == 0.4
    assert sum(got["router_upstream_duration_seconds"][("up", "up/m")][:-1]) == 2
    assert sum(got["router_time_to_first_token_seconds"][("up", "up/m")][:-1]) == 2
    assert sum(got["router_overhead_seconds"][("chat",)][:-1]) == 2
    text = metrics.render().decode()
    assert 'router_requests_total{endpoint="chat",model="up/m",provider="up",status="200"} 2.0' in text
    assert 'router_tokens_total{kind="cached",model="up/m"} 6.0' in text


def test_an_answer_without_upstream_tokens_or_cost_makes_only_the_request_series() -> None:
    metrics = Metrics()
    metrics.observe_request("chat", "unknown", "none", 400, 0.001, 0.001)
    metrics.observe_request("chat", "up/m", "up", 502, 0.3, 0.001, upstream=0.0, prompt=0, completion=None)
    assert set(_series(metrics)) == {"router_requests", "router_request_duration_seconds", "router_overhead_seconds"}
    # A later answer of the same cell with tokens and an upstream time creates those series then.
    metrics.observe_request("chat", "up/m", "up", 502, 0.3, 0.001, upstream=0.2, prompt=4, completion=2)
    got = _series(metrics)
    assert got["router_tokens"] == {("up/m", "prompt"): [4], ("up/m", "completion"): [2]}
    assert sum(got["router_upstream_duration_seconds"][("up", "up/m")][:-1]) == 1
    assert "router_cost_usd" not in got
