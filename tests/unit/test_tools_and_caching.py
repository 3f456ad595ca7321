"""Tool-call analytics: extraction from answers and requests, the per-tool report, and auto-cache defaults."""

from __future__ import annotations

import json

import msgspec
import pytest

from router.protocols import anthropic, caching, responses, tools
from router.server import requests as rq
from router.server.proxy import decode_answer
from router.store import UsageRow, open_store
from router.store.analytics import Filters
from router.store.records import KeyRecord


def _chat_body(messages: list[dict]) -> bytes:
    return json.dumps({"model": "m", "messages": messages}).encode()


CALLS = [
    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
    {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
]


def test_chat_results_are_the_trailing_tool_messages_named_by_their_call() -> None:
    old_turn = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c0", "function": {"name": "lookup"}}]},
        {"role": "tool", "tool_call_id": "c0", "content": "earlier"},
    ]
    body = _chat_body(
        [
            *old_turn,
            {"role": "assistant", "content": None, "tool_calls": CALLS},
            {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ]
    )
    request = rq.validate_chat(body)
    # Only this turn's results: the earlier `lookup` result was counted by the request that sent it first.
    assert tools.chat_results(body, request.messages[-1].role) == [("get_time", False), ("get_weather", False)]
    assert tools.chat_results(_chat_body([*old_turn, {"role": "user", "content": "?"}]), "user") is None
    orphan = _chat_body([{"role": "tool", "tool_call_id": "nowhere", "content": "x"}])
    assert tools.chat_results(orphan, "tool") is None


def test_anthropic_results_carry_is_error() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "12:00"},
                    {"type": "text", "text": "go on"},
                ],
            },
        ],
    }
    request = anthropic.validate_messages(json.dumps(body).encode())
    assert tools.messages_results(request) == [("get_weather", True), ("get_time", False)]
    body["messages"] = body["messages"][:1]
    assert tools.messages_results(anthropic.validate_messages(json.dumps(body).encode())) is None


def test_responses_results_are_the_trailing_function_call_outputs() -> None:
    items = [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "b", "output": "12:00"},
    ]
    request = responses.validate_responses(json.dumps({"model": "m", "input": items}).encode())
    assert tools.responses_results(request.input) == [("get_weather", False), ("get_time", False)]
    # With previous_response_id the calls are not in the request: nothing can be named.
    assert tools.responses_results(items[3:]) is None
    assert tools.responses_results("just text") is None


@pytest.mark.parametrize(
    ("api", "reply"),
    [
        ("chat", {"choices": [{"message": {"tool_calls": CALLS}}]}),
        (
            "messages",
            {
                "content": [
                    {"type": "text", "text": "let me check"},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "get_time", "input": {}},
                ]
            },
        ),
        (
            "responses",
            {
                "output": [
                    {"type": "function_call", "call_id": "a", "name": "get_weather"},
                    {"type": "function_call", "call_id": "b", "name": "get_time"},
                ]
            },
        ),
    ],
)
def test_whole_answers_name_their_calls_in_order(api: str, reply: dict) -> None:
    assert tools.called(reply, api) == ["get_weather", "get_time"]
    assert tools.called({"choices": [{"message": {"content": "hi"}}], "content": [], "output": []}, api) is None


def test_passed_through_chat_answers_name_their_calls_and_never_fail() -> None:
    answer = decode_answer(json.dumps({"choices": [{"message": {"tool_calls": CALLS}}], "usage": {"prompt_tokens": 1}}))
    assert tools.chat_calls(answer.choices) == ["get_weather", "get_time"] and answer.usage.prompt_tokens == 1
    assert tools.chat_calls(decode_answer(b'{"choices": [{"message": {"content": "hi"}}]}').choices) is None
    # Shapes the analytics cannot read are ignored, never an error for the answer: the usage still counts.
    odd = decode_answer(b'{"choices": [{"message": {"tool_calls": {"odd": 1}}}], "usage": {"prompt_tokens": 3}}')
    assert tools.chat_calls(odd.choices) is None and odd.usage.prompt_tokens == 3
    with pytest.raises(msgspec.DecodeError):
        decode_answer(b'{"usage": "not an object"}')
    assert tools.called({"choices": "odd", "content": "x", "output": [1, None]}, "chat") is None
    assert tools.called({"content": "text", "output": [1, None]}, "messages") is None
    assert tools.called({"output": [1, None, {"type": "function_call", "name": 5}]}, "responses") is None


def test_malformed_tool_history_is_not_an_analytics_error() -> None:
    body = _chat_body([{"role": "tool", "tool_call_id": 7, "content": "x"}])
    assert tools.chat_results(body, "tool") is None
    items = [
        {"type": "function_call", "call_id": ["a"], "name": "f"},
        {"type": "function_call_output", "call_id": {"x": 1}, "output": "?"},
    ]
    assert tools.responses_results(items) is None


def _row(i: int, calls: list[str] | None, results: list[tuple[str, bool]] | None, latency: float, **kw) -> UsageRow:
    return UsageRow(
        request_id=f"req_{i}", ts=1000.0 + i, key_id=kw.pop("key_id", "key_a"), endpoint="chat", model="m",
        provider="p", status=200, latency_ms=latency, trace_id="t",
        tool_calls=json.dumps(calls) if calls else None, tool_results=tools.results_json(results), **kw,
    )  # fmt: skip


def test_tool_report_counts_calls_results_errors_and_latency(tmp_path, db_url) -> None:
    store = open_store(db_url)
    store.write_usage(
        [
            _row(1, ["search", "search", "fetch"], None, 100.0),
            _row(2, ["search"], [("search", True), ("search", False), ("fetch", False)], 300.0),
            _row(3, None, [("search", True)], 50.0),
            _row(4, ["fetch"], None, 900.0, key_id="key_b"),
        ]
    )
    report = {r["tool"]: r for r in store.tool_report(Filters(start=0, end=10_000))}
    search, fetch = report["search"], report["fetch"]
    assert (search["calls"], search["requests"], search["results"], search["errors"]) == (3, 2, 3, 2)
    assert search["error_rate"] == pytest.approx(2 / 3)
    assert search["latency_ms"] == {"p50": 300.0, "p95": 300.0}  # requests 1 and 2, whatever calls they made
    assert (fetch["calls"], fetch["requests"], fetch["results"], fetch["errors"], fetch["error_rate"]) == (
        2,
        2,
        1,
        0,
        0.0,
    )
    only_a = {r["tool"]: r for r in store.tool_report(Filters(start=0, end=10_000, keys=["key_a"]))}
    assert only_a["fetch"]["calls"] == 1 and only_a["fetch"]["latency_ms"]["p95"] == 100.0
    assert store.tool_report(Filters(start=0, end=10_000, keys=[])) == []
    assert store.tool_report(Filters(start=2000, end=3000)) == []
    (first, *_) = store.trace("t", None)
    assert first["tool_calls"] == ["search", "search", "fetch"] and first["tool_results"] == []
    store.close()


def test_auto_cache_resolution_request_then_key_then_org_then_config(tmp_path, db_url) -> None:
    store = open_store(db_url)
    defaults = caching.Defaults(store, configured=True)
    key = KeyRecord(id="k", name="k", prefix="rk-", created_at=0.0)
    assert defaults.resolve(None, key) is True  # config
    store.set_org_auto_cache(False)
    assert defaults.resolve(None, key) is False  # org, seen at once: the change bumped the epoch
    keyed = msgspec.structs.replace(key, auto_cache=True)
    assert defaults.resolve(None, keyed) is True  # key
    assert defaults.resolve(False, keyed) is False  # request
    assert defaults.resolve(None, keyed) is True  # the request did not say
    store.close()
