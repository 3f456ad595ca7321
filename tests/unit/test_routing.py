"""The routing executor with scripted upstream outcomes, an injected clock and sleep (nothing really waits)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, defaultdict
from types import SimpleNamespace

import msgspec
import pytest

from router._core import LatencyTracker, Rendezvous
from router.config import PolicyConfig, PolicyTarget, parse_config
from router.errors import ConfigError, GatewayError
from router.metrics import Metrics
from router.routing import Catalog, Model, Need, Routing
from router.routing.executor import trace_key
from router.server.exchange import Exchange
from router.server.requests import Metadata, request_metadata

CONFIG = """
providers:
  p: {base_url: 'http://127.0.0.1:1/v1'}
models:
  - {id: p/a, capabilities: [streaming, tools, vision]}
  - {id: p/b, capabilities: [streaming, tools, vision]}
  - {id: p/c, capabilities: [streaming, tools, vision]}
  - {id: p/plain, capabilities: []}
  - {id: p/small, context_window: 10}
  - {id: p/emb, capabilities: [embeddings]}
  - {id: p/emb2, capabilities: [embeddings]}
routing: {breaker_failures: 3, breaker_cooldown: 5}
policies:
"""

# An outcome: "ok", an upstream HTTP status, (status, retry-after), or "broken" (a stream that died mid-way).
Outcome = str | int | tuple[int, str]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, policies: str, uniform: float = 0.5, **routing: object) -> None:
        text = CONFIG + policies
        if routing:
            text = text.replace("routing: {breaker_failures: 3, breaker_cooldown: 5}", f"routing: {routing}")
        config = parse_config(text, "test.yaml")
        self.clock = Clock()
        self.sleeps: list[float] = []
        self.metrics = Metrics()
        self.routing = Routing(
            config,
            Catalog(config, created=0),
            self.metrics,
            0,
            clock=self.clock,
            sleep=self._sleep,
            uniform=lambda: uniform,
            latency=LatencyTracker(seed=11),
        )
        self.script: dict[str, list[Outcome]] = defaultdict(list)
        self.latency: dict[str, float] = defaultdict(lambda: 0.1)
        self.calls: list[str] = []
        self._ids = 0

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.now += seconds

    def exchange(self, endpoint: str = "chat") -> Exchange:
        self._ids += 1
        return Exchange(SimpleNamespace(headers={}), None, endpoint, f"req_{self._ids}")  # type: ignore[arg-type]

    async def request(
        self,
        model: str,
        need: Need | None = None,
        fields: dict[str, msgspec.Raw] | None = None,
        allowed=None,
    ) -> tuple[Exchange, GatewayError | None]:
        ex = self.exchange("embeddings" if need is not None and need.endpoint == "embeddings" else "chat")
        ex.stream = bool(need and need.stream)
        # What each endpoint's `_charge` does before routing.
        ex.metadata = request_metadata((fields or {}).get("requesty"), None, 4096)

        async def call(target: Model) -> None:
            self.calls.append(target.id)
            queue = self.script[target.id]
            outcome = queue.pop(0) if queue else "ok"
            ex.upstream_seconds = self.latency[target.id]
            if outcome == "broken":
                ex.responded, ex.status, ex.error_type = True, 200, "upstream_stream_incomplete"
                return
            if outcome != "ok":
                status, after = outcome if isinstance(outcome, tuple) else (outcome, None)
                raise target.provider.error_from_status(status, b'{"error": {"message": "scripted"}}', after)
            ex.ttft = self.latency[target.id]
            ex.responded, ex.status = True, 200

        try:
            await self.routing.run(ex, model, need or Need("chat"), fields or {}, call, allowed)
        except GatewayError as exc:
            return ex, exc
        return ex, None

    def run(self, model: str, **kw: object) -> tuple[Exchange, GatewayError | None]:
        return asyncio.run(self.request(model, **kw))  # type: ignore[arg-type]


def trace(value: str) -> dict[str, msgspec.Raw]:
    return {"requesty": msgspec.Raw(msgspec.json.encode({"trace_id": value}))}


CHAIN = """
  - name: chain
    type: fallback
    targets: [{model: p/a, retries: 2}, {model: p/b}]
"""


def test_429_twice_then_success_on_the_same_target_with_backoff() -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = [(429, "0"), (429, "0")]
    ex, error = h.run("policy/chain")
    assert error is None
    assert h.calls == ["p/a", "p/a", "p/a"]
    assert (ex.model, ex.provider, ex.attempts) == ("p/a", "p", 3)
    assert h.sleeps == [0.5, 1.0]
    # Every attempt but the last has its own usage row; the last is the request's own row.
    assert [(r.attempt, r.status, r.model) for r in ex.attempt_rows] == [(1, 429, "p/a"), (2, 429, "p/a")]
    assert ex.routing_seconds >= 0


@pytest.mark.parametrize(("uniform", "first"), [(0.0, 0.45), (1.0, 0.55)])
def test_jitter_is_ten_percent(uniform: float, first: float) -> None:
    h = Harness(CHAIN, uniform=uniform)
    h.script["p/a"] = [503, 503]
    h.run("policy/chain")
    assert h.sleeps == pytest.approx([first, first * 2])


def test_backoff_doubles_up_to_the_cap() -> None:
    h = Harness("  - {name: long, type: fallback, targets: [{model: p/a, retries: 6}]}\n", breaker_failures=10)
    h.script["p/a"] = [500] * 6
    ex, error = h.run("policy/long")
    assert error is None and ex.attempts == 7
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_longer_retry_after_is_honoured() -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = [(429, "2"), (429, "2")]
    h.run("policy/chain")
    assert h.sleeps == [2.0, 2.0]


def test_retry_after_beyond_the_limit_moves_to_the_next_target_at_once() -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = [(429, "60")]
    ex, error = h.run("policy/chain")
    assert error is None and h.calls == ["p/a", "p/b"] and h.sleeps == []
    assert ex.model == "p/b" and ex.attempts == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_non_retryable_moves_on_at_once(status: int) -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = [status]
    ex, error = h.run("policy/chain")
    assert error is None
    assert h.calls == ["p/a", "p/b"] and h.sleeps == []
    assert ex.attempts == 2 and ex.model == "p/b"


def test_dead_target_is_cooled_down_then_probed() -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = [503] * 4
    ex, _ = h.run("policy/chain")
    assert h.calls == ["p/a", "p/a", "p/a", "p/b"] and ex.attempts == 4
    assert 'router_circuit_state{model="p/a"} 1.0' in h.metrics.render().decode()
    # While cooling down, p/a is skipped without a call and without a wait.
    h.calls.clear()
    h.sleeps.clear()
    ex, _ = h.run("policy/chain")
    assert h.calls == ["p/b"] and ex.attempts == 1 and h.sleeps == []
    # After the cooldown one request probes p/a; its failure opens the circuit again at once.
    h.clock.now += 5.1
    h.calls.clear()
    ex, _ = h.run("policy/chain")
    assert h.calls[0] == "p/a" and ex.model == "p/b"
    h.calls.clear()
    h.run("policy/chain")
    assert h.calls == ["p/b"]
    # The next probe succeeds: the circuit closes.
    h.clock.now += 5.1
    h.calls.clear()
    ex, _ = h.run("policy/chain")
    assert h.calls == ["p/a"] and ex.model == "p/a"
    assert "router_circuit_state{" not in h.metrics.render().decode()


def test_cooldown_follows_a_longer_retry_after() -> None:
    h = Harness("  - {name: one, type: fallback, targets: [{model: p/a}, {model: p/b}]}\n", breaker_failures=1)
    h.script["p/a"] = [(429, "8")]
    h.run("policy/one")
    h.clock.now += 6  # past the 5 s cooldown, not past the 8 s the upstream asked for
    h.calls.clear()
    h.run("policy/one")
    assert h.calls == ["p/b"]


def test_all_targets_cooling_answers_503_with_retry_after() -> None:
    h = Harness("  - {name: solo, type: fallback, targets: [{model: p/a}]}\n", breaker_failures=1)
    h.script["p/a"] = [503]
    _, error = h.run("policy/solo")
    assert error is not None and error.status == 502
    h.calls.clear()
    _, error = h.run("policy/solo")
    assert h.calls == []
    assert error is not None and error.status == 503 and error.code == "policy_targets_unavailable"
    assert ("retry-after", "5") in error.headers


def test_when_everything_fails_the_last_upstream_error_lists_the_attempts() -> None:
    h = Harness("  - {name: bad, type: fallback, targets: [{model: p/a}, {model: p/b}]}\n")
    h.script["p/a"] = [503]
    h.script["p/b"] = [422]
    ex, error = h.run("policy/bad")
    assert error is not None and error.status == 422 and error.type == "invalid_request_error"
    assert error.message.endswith("[policy/bad: every target failed; attempts: p/a (503), p/b (422)]")
    assert ex.attempts == 2 and ex.model == "p/b"
    assert [(r.attempt, r.status, r.error_type) for r in ex.attempt_rows] == [(1, 503, "upstream_error")]


def test_targets_that_cannot_serve_are_skipped_without_a_call(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness("  - {name: mixed, type: fallback, targets: [{model: p/plain}, {model: p/small}, {model: p/b}]}\n")
    with caplog.at_level(logging.INFO, logger="router.routing"):
        ex, error = h.run("policy/mixed", need=Need("chat", stream=True, tokens=50))
    assert error is None and h.calls == ["p/b"] and ex.attempts == 1
    assert "policy/mixed: skipped p/plain: it does not support streaming" in caplog.messages
    _, error = h.run("policy/mixed", need=Need("chat", tools=True))
    assert error is None and h.calls[-1] == "p/b"
    h.calls.clear()
    _, error = h.run("policy/mixed", need=Need("chat", stream=True, tokens=50), allowed=lambda m: m != "p/b")
    assert h.calls == []
    assert error is not None and error.status == 400 and error.code == "no_capable_target"
    assert "p/plain does not support streaming" in error.message
    assert "p/small has a context window of 10 tokens, the request is ~50" in error.message


def test_targets_outside_the_allowed_set_are_skipped_and_none_allowed_is_403() -> None:
    h = Harness(CHAIN)
    _ex, error = h.run("policy/chain", allowed=lambda m: m == "p/b")
    assert error is None and h.calls == ["p/b"]
    h.calls.clear()
    _, error = h.run("policy/chain", allowed=lambda m: False)
    assert h.calls == []
    assert error is not None and error.status == 403 and error.code == "model_not_allowed"


def test_direct_model_outside_the_allowed_set_is_403() -> None:
    h = Harness(CHAIN)
    _, error = h.run("p/a", allowed=lambda m: False)
    assert error is not None and error.status == 403 and h.calls == []


def test_direct_model_is_one_attempt_and_feeds_the_breaker() -> None:
    h = Harness(CHAIN)
    ex, error = h.run("p/a")
    assert error is None and ex.attempts == 1 and ex.model == "p/a" and ex.provider == "p"
    h.script["p/a"] = [503] * 3
    for _ in range(3):
        _, error = h.run("p/a")
        assert error is not None and error.status == 502
    h.calls.clear()
    h.run("policy/chain")
    assert h.calls == ["p/b"]


def test_stream_broken_after_the_first_byte_does_not_fail_over() -> None:
    h = Harness(CHAIN)
    h.script["p/a"] = ["broken"]
    ex, error = h.run("policy/chain", need=Need("chat", stream=True))
    assert error is None and h.calls == ["p/a"] and ex.attempts == 1
    assert ex.error_type == "upstream_stream_incomplete"


def test_unknown_policy_and_wrong_endpoint() -> None:
    h = Harness(CHAIN)
    _, error = h.run("policy/nope")
    assert error is not None and error.status == 404 and "(defined: policy/chain)" in error.message
    _, error = h.run("policy/chain", need=Need("embeddings"))
    assert error is not None and error.status == 400 and error.code == "model_not_supported"


def test_embeddings_policy() -> None:
    h = Harness("  - {name: emb, type: fallback, targets: [{model: p/emb}, {model: p/emb2}]}\n")
    h.script["p/emb"] = [500]
    _ex, error = h.run("policy/emb", need=Need("embeddings"))
    assert error is None and h.calls == ["p/emb", "p/emb2"]


NESTED = """
  - name: outer
    type: fallback
    targets: [{policy: spread}, {model: p/c}]
  - name: spread
    type: load_balance
    targets: [{model: p/a, weight: 70}, {model: p/b, weight: 30}]
"""


def test_nested_policy_expands_in_place() -> None:
    h = Harness(NESTED)
    expected = ["p/a", "p/b"][Rendezvous(["p/a", "p/b"], [70, 30]).pick("trace-42")]
    ex, error = h.run("policy/outer", fields=trace("trace-42"))
    assert error is None and h.calls == [expected]
    # Both balanced targets down: their rendezvous order, then the fallback.
    h.calls.clear()
    h.script["p/a"] = [503]
    h.script["p/b"] = [503]
    ex, error = h.run("policy/outer", fields=trace("trace-42"))
    order = [["p/a", "p/b"][i] for i in Rendezvous(["p/a", "p/b"], [70, 30]).rank("trace-42")]
    assert error is None and h.calls == [*order, "p/c"] and ex.attempts == 3


LB = """
  - name: lb
    type: load_balance
    targets: [{model: p/a, weight: 70}, {model: p/b, weight: 20}, {model: p/c, weight: 10}]
"""


async def _picks(h: Harness, n: int, prefix: str = "user-") -> list[str]:
    picks = []
    for i in range(n):
        ex, error = await h.request("policy/lb", fields=trace(f"{prefix}{i}"))
        assert error is None
        picks.append(ex.model)
    return picks


def test_load_balancing_distribution_within_two_points_over_10000_traces() -> None:
    h = Harness(LB)
    counts = Counter(asyncio.run(_picks(h, 10_000)))
    for model, weight in (("p/a", 0.7), ("p/b", 0.2), ("p/c", 0.1)):
        assert abs(counts[model] / 10_000 - weight) <= 0.02, counts


def test_same_trace_same_target() -> None:
    h = Harness(LB)
    first = asyncio.run(_picks(h, 200))
    again = asyncio.run(_picks(h, 200))
    assert first == again
    assert len(set(first)) == 3


def test_weight_change_moves_only_the_needed_fraction() -> None:
    h = Harness(LB)
    before = asyncio.run(_picks(h, 10_000))
    # p/c: 10 → 30 of the total. Its share goes from 10% to 25%: exactly 15% of traces must move, all to p/c.
    h.routing.replace_policies(
        [
            PolicyConfig(
                "lb",
                "load_balance",
                [PolicyTarget(model="p/a", weight=70), PolicyTarget(model="p/b", weight=20),
                 PolicyTarget(model="p/c", weight=30)],
            )
        ]
    )  # fmt: skip
    after = asyncio.run(_picks(h, 10_000))
    moved = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert all(y == "p/c" for _, y in moved)
    assert abs(len(moved) / 10_000 - 0.15) <= 0.01


def test_trace_key_precedence() -> None:
    def raw(value: object) -> msgspec.Raw:
        return msgspec.Raw(msgspec.json.encode(value))

    assert trace_key(Metadata(trace_id="t", user_id="u"), {"user": raw("o")}, "req") == "t"
    assert trace_key(Metadata(user_id="u"), {"user": raw("o")}, "req") == "u"
    assert trace_key(None, {"user": raw("o")}, "req") == "o"
    assert trace_key(None, {}, "req") == "req"
    # A `requesty` that is not an object never gets this far: reading the metadata refuses it.
    with pytest.raises(GatewayError) as err:
        request_metadata(raw(["not", "an", "object"]), None, 4096)
    assert err.value.status == 400 and err.value.param == "requesty"


def test_routing_reads_the_trace_key_from_metadata_and_leaves_the_fields_alone() -> None:
    # The endpoints drop `requesty` from what goes upstream (checked end to end in test_policies and
    # test_spend); routing takes the load-balancing key from the decoded metadata and changes no field.
    h = Harness(LB)
    fields = trace("x")
    asyncio.run(h.request("policy/lb", fields=fields))
    assert "requesty" in fields


LATENCY = """
  - name: fastest
    type: latency
    targets: [{model: p/a}, {model: p/b}]
"""


async def _latency_run(h: Harness, n: int, step: float = 0.1) -> list[str]:
    served = []
    for _ in range(n):
        h.clock.now += step
        ex, error = await h.request("policy/fastest")
        assert error is None
        served.append(ex.model)
    return served


def test_latency_routing_converges_on_the_faster_target_and_explores_a_new_one() -> None:
    h = Harness(LATENCY)
    h.latency.update({"p/a": 0.2, "p/b": 0.05, "p/c": 0.01})
    served = asyncio.run(_latency_run(h, 200))
    # The first target gets the first request; the one without data is explored on ~7% of requests, and
    # from its first sample on everything goes to the faster one.
    first_b = served.index("p/b")
    assert served[:first_b] == ["p/a"] * first_b and first_b > 0
    assert set(served[first_b:]) == {"p/b"}
    assert h.routing.latency.score("p/b", h.clock.now) == pytest.approx(0.05)

    h.routing.replace_policies(
        [PolicyConfig("fastest", "latency", [PolicyTarget(model=m) for m in ("p/a", "p/b", "p/c")])]
    )
    served = asyncio.run(_latency_run(h, 400))
    # The new target is explored on a small share of requests; once measured, it wins.
    first_c = served.index("p/c")
    assert served[:first_c] == ["p/b"] * first_c and first_c > 3
    assert set(served[first_c:]) == {"p/c"}


def test_a_slow_new_target_is_explored_until_it_has_five_samples() -> None:
    h = Harness(LATENCY)
    h.latency.update({"p/a": 0.05, "p/b": 0.5})
    served = asyncio.run(_latency_run(h, 600))
    b_at = [i for i, m in enumerate(served) if m == "p/b"]
    # p/b is explored (about 7% of requests) until its window holds 5 samples, then never chosen first.
    assert len(b_at) == 5
    assert 0.02 < 5 / (b_at[-1] + 1) < 0.25


def test_a_recovered_target_wins_its_traffic_back_within_minutes() -> None:
    h = Harness(LATENCY)
    h.latency.update({"p/a": 0.05, "p/b": 0.5})
    asyncio.run(_latency_run(h, 200))
    assert h.routing.latency.samples("p/b", h.clock.now) == 5
    # p/b recovers. One request a second: once its samples are older than `refresh` (120 s) it is explored
    # again, its first fresh sample replaces the slow window, and from then on it serves (p/a, now the
    # one left idle, is only re-measured: at most 5 probes once its own samples are 120 s old).
    h.latency["p/b"] = 0.01
    served = asyncio.run(_latency_run(h, 300, step=1.0))
    first_b = served.index("p/b")
    assert first_b < 240
    assert served[first_b:].count("p/a") <= 5


def test_a_target_that_stays_slow_is_probed_in_bounded_bursts() -> None:
    h = Harness(LATENCY)
    h.latency.update({"p/a": 0.05, "p/b": 0.5})
    served = asyncio.run(_latency_run(h, 1200, step=1.0))
    b_at = [i for i, m in enumerate(served) if m == "p/b"]
    # Bursts of 5 probes, each burst at least `refresh` (120 s, one request a second) after the last.
    bursts = [b_at[i : i + 5] for i in range(0, len(b_at), 5)]
    assert 3 <= len(bursts) <= 10
    assert all(len(b) == 5 for b in bursts[:-1])
    assert all(nxt[0] - prev[-1] > 120 for prev, nxt in itertools.pairwise(bursts))


def test_latency_failures_count_against_a_target() -> None:
    h = Harness(LATENCY)
    h.latency.update({"p/a": 0.05, "p/b": 0.1})
    asyncio.run(_latency_run(h, 20))
    h.script["p/a"] = [503] * 3
    served = asyncio.run(_latency_run(h, 3))
    # p/a failed and was skipped over: the next fastest served, and p/a's score now carries the penalty.
    assert served == ["p/b"] * 3
    assert h.routing.latency.score("p/a", h.clock.now) > 1.0


def test_replace_policies_rejects_bad_sets_and_keeps_the_old_one() -> None:
    h = Harness(CHAIN)
    with pytest.raises(ConfigError) as err:
        h.routing.replace_policies([PolicyConfig("loop", "fallback", [PolicyTarget(policy="loop")])])
    assert str(err.value) == "policy update: at policies[0]: policies form a cycle: policy/loop → policy/loop"
    _ex, error = h.run("policy/chain")
    assert error is None


def test_models_list_includes_policies() -> None:
    h = Harness(NESTED)
    listing = msgspec.json.decode(h.routing.models_list())
    ids = [entry["id"] for entry in listing["data"]]
    assert "p/a" in ids and "policy/outer" in ids and "policy/spread" in ids
    outer = next(e for e in listing["data"] if e["id"] == "policy/outer")
    assert outer["policy_type"] == "fallback" and outer["targets"] == ["policy/spread", "p/c"]
    # With the governance hook: only admitted models, and only policies that can reach one of them.
    only_c = msgspec.json.decode(h.routing.models_list(lambda m: m == "p/c"))
    assert [e["id"] for e in only_c["data"]] == ["p/c", "policy/outer"]
