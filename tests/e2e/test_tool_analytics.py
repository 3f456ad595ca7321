"""Tool-call analytics as users meet them: an agent loop through the openai (and anthropic) SDK, every
endpoint, streamed and not, against every upstream kind; then traces and `GET /v1/manage/tools`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from servers import Server, gateway_env, manage_call, start_gateway, usage_rows

# One model per upstream wire format, all served by the mock (python/router/demo.yaml).
MODELS = ["mock/gpt-4o", "anthropic/claude-sonnet-4-5", "openai-responses/gpt-4o"]
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
ASK = [{"role": "user", "content": "Weather and time in Paris?"}]


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = server.base
        self.admin = server.env["ROUTER_ADMIN_KEY"]

    def manage(self, path: str, secret: str | None = None, method: str = "GET", body: dict | None = None) -> dict:
        r = manage_call(self.base, secret or self.admin, method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def key(self, **spec) -> dict:
        return self.manage("/apikey", method="POST", body={"name": "tools", **spec})

    def openai(self, secret: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=secret, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    server = start_gateway(gateway_env(tmp_path_factory.mktemp("tools") / "router.db", mock_server.base))
    yield Gateway(server)
    server.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> dict:
    return gw.key()


def _calls(gw: Gateway, trace: str, expect: int) -> list[list[str]]:
    rows = usage_rows(gw.server, f"trace_id = '{trace}'", expect=expect)
    assert len(rows) == expect
    return [json.loads(r["tool_calls"]) if r["tool_calls"] else [] for r in rows]


@pytest.mark.parametrize("model", MODELS)
def test_chat_answers_record_their_tool_calls_streamed_or_not(gw: Gateway, key: dict, model: str) -> None:
    client = gw.openai(key["key"])
    trace = f"chat-{model}"
    meta = {"requesty": {"trace_id": trace}}
    whole = client.chat.completions.create(
        model=model, messages=ASK, tools=CHAT_TOOLS, tool_choice="required", extra_body=meta
    )
    assert [c.function.name for c in whole.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    with client.chat.completions.stream(
        model=model, messages=ASK, tools=CHAT_TOOLS, tool_choice="required", extra_body=meta
    ) as stream:
        final = stream.get_final_completion()
    assert [c.function.name for c in final.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    plain = client.chat.completions.create(model=model, messages=ASK, extra_body=meta)
    assert plain.choices[0].message.tool_calls is None
    assert _calls(gw, trace, 3) == [["get_weather", "get_time"], ["get_weather", "get_time"], []]


@pytest.mark.parametrize("model", MODELS)
def test_responses_answers_record_their_tool_calls(gw: Gateway, key: dict, model: str) -> None:
    client = gw.openai(key["key"])
    trace = f"responses-{model}"
    tools = [{"type": "function", **t["function"]} for t in CHAT_TOOLS]
    meta = {"requesty": {"trace_id": trace}}
    whole = client.responses.create(model=model, input="Weather?", tools=tools, tool_choice="required", extra_body=meta)
    assert [i.name for i in whole.output if i.type == "function_call"] == ["get_weather", "get_time"]
    with client.responses.stream(
        model=model, input="Weather?", tools=tools, tool_choice="required", extra_body=meta
    ) as stream:
        final = stream.get_final_response()
    assert [i.name for i in final.output if i.type == "function_call"] == ["get_weather", "get_time"]
    assert _calls(gw, trace, 2) == [["get_weather", "get_time"], ["get_weather", "get_time"]]


def test_an_agent_loop_is_one_trace_with_its_calls_and_results_in_order(gw: Gateway, key: dict) -> None:
    client = gw.openai(key["key"])
    meta = {"requesty": {"trace_id": "agent-1"}}
    first = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=ASK, tools=CHAT_TOOLS, tool_choice="required", extra_body=meta
    )
    message = first.choices[0].message
    history = [
        *ASK,
        message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls),
    ]
    second = client.chat.completions.create(
        model="mock/gpt-4o", messages=history, tools=CHAT_TOOLS, tool_choice="none", extra_body=meta
    )
    assert second.choices[0].message.content
    usage_rows(gw.server, "trace_id = 'agent-1'", expect=2)
    trace = gw.manage("/traces/agent-1")
    steps = [(r["model"], r["tool_calls"], r["tool_results"]) for r in trace["requests"]]
    assert steps == [
        ("anthropic/claude-sonnet-4-5", ["get_weather", "get_time"], []),
        (
            "mock/gpt-4o",
            [],
            [{"name": "get_weather", "is_error": False}, {"name": "get_time", "is_error": False}],
        ),
    ]


def test_tools_report_counts_errors_and_latency_per_tool(gw: Gateway) -> None:
    user = gw.manage("/user", method="POST", body={"email": "tools-owner@corp.test"})
    own = gw.key(owner={"type": "user", "id": user["id"]})
    other = gw.key()
    client = gw.openai(own["key"])
    meta = {"requesty": {"trace_id": "report-1"}}
    for _ in range(3):
        client.chat.completions.create(
            model="mock/gpt-4o", messages=ASK, tools=CHAT_TOOLS, tool_choice="required", extra_body=meta
        )
    # Results sent back through the Anthropic endpoint, one of them marked as failed.
    claude = anthropic.Anthropic(base_url=gw.base, api_key=own["key"], max_retries=0, timeout=20)
    calls = [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ]
    results = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12:00"},
    ]
    claude.messages.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=20,
        messages=[*ASK, {"role": "assistant", "content": calls}, {"role": "user", "content": results}],
        extra_body=meta,
    )
    # Someone else's tool calls, in the same trace: a standard user must not see them.
    gw.openai(other["key"]).chat.completions.create(
        model="mock/gpt-4o", messages=ASK, tools=CHAT_TOOLS[1:], tool_choice="required", extra_body=meta
    )
    usage_rows(gw.server, "trace_id = 'report-1'", expect=5)

    report = {r["tool"]: r for r in gw.manage("/tools?trace=report-1")["data"]}
    weather, clock = report["get_weather"], report["get_time"]
    assert (weather["calls"], weather["requests"], weather["results"], weather["errors"]) == (3, 3, 1, 1)
    assert weather["error_rate"] == 1.0
    assert (clock["calls"], clock["results"], clock["errors"], clock["error_rate"]) == (4, 1, 0, 0.0)
    assert 0 < weather["latency_ms"]["p50"] <= weather["latency_ms"]["p95"]

    mine = {r["tool"]: r for r in gw.manage("/tools?trace=report-1", secret=own["key"])["data"]}
    assert mine["get_time"]["calls"] == 3  # the other key's call is not in the owner's view
    assert gw.manage(f"/tools?trace=report-1&key={other['id']}", secret=own["key"])["data"] == []
    by_model = gw.manage("/tools?trace=report-1&model=anthropic/claude-sonnet-4-5")["data"]
    assert [(r["tool"], r["calls"], r["results"]) for r in by_model] == [("get_time", 0, 1), ("get_weather", 0, 1)]
    bad = httpx.get(
        f"{gw.base}/v1/manage/tools", params={"start": "nope"}, headers={"authorization": f"Bearer {gw.admin}"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "start"
