"""The usage row a request leaves: every column filled from the right part of the exchange.

`App._account` builds the row positionally (cheaper than 37 keyword arguments), so a column added to or moved in
`UsageRow` without the same change there would shift values into the wrong columns: this test gives every
input a distinct value and checks each column by name."""

from __future__ import annotations

import time
from types import SimpleNamespace

import msgspec

from router.config import Prices
from router.metrics import Metrics
from router.server.app import App
from router.server.exchange import Exchange
from router.server.requests import Metadata
from router.store.records import USAGE_COLUMNS, UsageRow


class _Guardrails:
    def encoded(self) -> str:
        return '[["request","pii","email","mask",1]]'


def test_every_column_comes_from_its_own_field() -> None:
    scope = SimpleNamespace(headers={})
    ex = Exchange(scope, None, "chat", "req_0123456789abcdef01234567")  # type: ignore[arg-type]
    ex.started = time.perf_counter() - 0.5
    ex.key_id = "key-1"
    ex.model = "up/gpt-4o"
    ex.provider = "up"
    ex.status = 200
    ex.prompt_tokens, ex.completion_tokens, ex.cached_tokens, ex.reasoning_tokens = 1000, 200, 300, 40
    ex.ttft = 0.25
    ex.stream = True
    ex.error_type = "broken_stream"
    ex.prices = Prices(input=2.5, output=10.0, cached_input=1.25)
    ex.period = 202612
    ex.budgets = ("key:key-1", "group:g-1")
    ex.owner = "user-1"
    ex.end_user = "ignored: the metadata's user wins"
    ex.metadata = Metadata(tags=["a", "b"], user_id="end-1", trace_id="trace-1", extra={"feature": "x"})
    ex.attempts = 2
    ex.byok = True
    ex.tool_calls = ["lookup"]
    ex.tool_results = [("search", False)]
    ex.triggers = _Guardrails()  # type: ignore[assignment]
    ex.prompt = "greeting@3"
    ex.upstream_seconds = 0.1
    ex.turn = SimpleNamespace(session_id="sess-1", branch=2, parent="req_parent")  # type: ignore[assignment]
    rows: list[UsageRow] = []
    host = SimpleNamespace(
        metrics=Metrics(),
        spend=None,
        sessions=SimpleNamespace(finish=lambda ex: None),
        usage=SimpleNamespace(add=rows.append),
    )
    App._account(host, ex)  # type: ignore[arg-type]

    (row,) = rows
    got = dict(zip(USAGE_COLUMNS, msgspec.to_builtins(row), strict=True))
    assert 0.4 < got.pop("latency_ms") / 1000 < 5
    assert 0 < got.pop("overhead_ms") < got["ttft_ms"] + 5000
    assert abs(got.pop("ts") - time.time()) < 60
    assert got == {
        "request_id": "req_0123456789abcdef01234567",
        "key_id": "key-1",
        "endpoint": "chat",
        "model": "up/gpt-4o",
        "provider": "up",
        "status": 200,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cached_tokens": 300,
        "ttft_ms": 250.0,
        "stream": True,
        "error_type": "broken_stream",
        "cost": got["cost"],
        "cost_estimated": False,
        "cache_savings": got["cache_savings"],
        "period": 202612,
        "budgets": "key:key-1 group:g-1",
        "user_id": "user-1",
        "end_user": "end-1",
        "trace_id": "trace-1",
        "tags": '["a","b"]',
        "extra": '{"feature":"x"}',
        "attempt": 2,
        "byok": True,
        "tool_calls": '["lookup"]',
        "tool_results": '[{"name":"search","is_error":false}]',
        "reasoning_tokens": 40,
        "guardrails": '[["request","pii","email","mask",1]]',
        "prompt": "greeting@3",
        "session_id": "sess-1",
        "session_branch": 2,
        "session_parent": "req_parent",
    }
    # 700 uncached input tokens at 2.5, 300 cached at 1.25, 200 output at 10 (USD per million).
    assert abs(got["cost"] - (700 * 2.5 + 300 * 1.25 + 200 * 10.0) / 1e6) < 1e-9
    assert abs(got["cache_savings"] - 300 * 1.25 / 1e6) < 1e-12
    assert set(USAGE_COLUMNS) == set(UsageRow.__struct_fields__)
