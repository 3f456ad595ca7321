"""Chat completions through the gateway with the official openai SDK."""

from __future__ import annotations

import json

import openai

from servers import usage_rows

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    },
]


def test_chat_completion(client: openai.OpenAI, mock, gateway) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mock/gpt-4o", messages=MESSAGES)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 16
    assert completion.usage.prompt_tokens > 0
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert float(raw.headers["x-router-overhead-ms"]) >= 0
    (seen,) = mock.requests()
    # The upstream sees its own model name, the gateway's request id, and the provider key, not the client's.
    assert seen["model"] == "gpt-4o"
    assert seen["request_id"] == request_id
    assert seen["headers"]["authorization"].startswith("Bearer m")
    rows = usage_rows(gateway, f"request_id = '{request_id}'")
    assert rows[0]["status"] == 200 and rows[0]["model"] == "mock/gpt-4o" and rows[0]["provider"] == "mock"
    assert rows[0]["completion_tokens"] == 16 and rows[0]["stream"] == 0


def test_unknown_fields_tools_and_response_format_pass_through_untouched(client: openai.OpenAI, mock) -> None:
    completion = client.chat.completions.create(
        model="mock/gpt-4o",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice="auto",
        response_format={"type": "json_object"},
        temperature=0.25,
        extra_body={"vendor_extension": {"nested": [1, 2, {"x": None}]}, "top_k": 7},
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "days": 1}
    body = mock.requests()[0]["body"]
    assert body["tools"] == TOOLS
    assert body["response_format"] == {"type": "json_object"}
    assert body["vendor_extension"] == {"nested": [1, 2, {"x": None}]}
    assert body["top_k"] == 7 and body["temperature"] == 0.25 and body["tool_choice"] == "auto"
    assert body["model"] == "gpt-4o"


def test_streaming_text_arrives_whole_and_in_order(client: openai.OpenAI, gateway) -> None:
    whole = client.chat.completions.create(model="mock/gpt-4o", messages=MESSAGES).choices[0].message.content
    stream = client.chat.completions.with_raw_response.create(
        model="mock/gpt-4o", messages=MESSAGES, stream=True, extra_body={"mock": {"token_delay_ms": 2}}
    )
    request_id = stream.headers["x-request-id"]
    chunks = list(stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert len(chunks) >= 16
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The client did not ask for usage, so it sees no usage chunk, but the gateway still counted tokens.
    assert all(c.choices for c in chunks)
    (row,) = usage_rows(gateway, f"request_id = '{request_id}'")
    assert row["stream"] == 1 and row["completion_tokens"] == 16 and row["prompt_tokens"] > 0
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_streaming_include_usage_is_honoured(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="mock/gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 16
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_streaming_tool_calls_keep_their_indexes(client: openai.OpenAI) -> None:
    calls: dict[int, dict] = {}
    finish = None
    with client.chat.completions.stream(
        model="mock/gpt-4o", messages=MESSAGES, tools=TOOLS, tool_choice="required"
    ) as stream:
        for event in stream:
            if event.type == "chunk" and event.chunk.choices:
                choice = event.chunk.choices[0]
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or []:
                    entry = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                    if delta.id:
                        assert entry["id"] is None, "id must be sent once per tool call"
                        entry["id"] = delta.id
                    if delta.function and delta.function.name:
                        entry["name"] += delta.function.name
                    if delta.function and delta.function.arguments:
                        entry["arguments"] += delta.function.arguments
        final = stream.get_final_completion()
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "mock", "days": 1}
    assert json.loads(calls[1]["arguments"]) == {"zone": "mock"}
    assert [t.function.name for t in final.choices[0].message.tool_calls] == ["get_weather", "get_time"]


def test_x_api_key_header_authenticates(gateway, api_key) -> None:
    import httpx

    r = httpx.get(f"{gateway.base}/v1/models", headers={"x-api-key": api_key})
    assert r.status_code == 200
    assert r.headers["x-request-id"].startswith("req_")
