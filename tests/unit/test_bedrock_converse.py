"""Anthropic Messages ↔ Bedrock Converse mapping (`router.providers.bedrock_converse`)."""

from __future__ import annotations

import json

import pytest

from router._core import ConverseStreamTranslator, encode_event_stream_message
from router.errors import InvalidRequest
from router.providers.bedrock_converse import converse_to_messages, messages_to_converse

CLAUDE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
LLAMA = "meta.llama3-70b-instruct-v1:0"


def test_request_mapping() -> None:
    req = {
        "model": "x",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "thinking", "thinking": "unsigned"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "out", "is_error": True},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "UEQ="}},
                ],
            },
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["S"],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
    }
    out = messages_to_converse(req, CLAUDE)
    assert out["system"] == [{"text": "sys"}, {"cachePoint": {"type": "default"}}]
    assert out["messages"][0] == {"role": "user", "content": [{"text": "a"}, {"text": "b"}]}
    assert out["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}},
    ]
    assert out["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "out"}], "status": "error"}},
        {"document": {"format": "pdf", "name": "document 1", "source": {"bytes": "UEQ="}}},
    ]
    assert out["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.5, "topP": 0.9, "stopSequences": ["S"]}
    assert out["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2000}, "top_k": 5}
    assert out["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}, "description": "d"}}],
        "toolChoice": {"tool": {"name": "f"}},
    }


def test_thinking_is_for_anthropic_models_only() -> None:
    req = {"max_tokens": 10, "messages": [{"role": "user", "content": "a"}], "thinking": {"type": "enabled"}}
    assert "additionalModelRequestFields" not in messages_to_converse(req, LLAMA)


def test_tool_choice_none_drops_the_tools_without_tool_history() -> None:
    req = {
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "a"}],
        "tools": [{"name": "f", "input_schema": {}}],
        "tool_choice": {"type": "none"},
    }
    assert "toolConfig" not in messages_to_converse(req, CLAUDE)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, "base64"),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": ""}}, "image/tiff"),
        ({"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}, "base64"),
        ({"type": "search_result"}, "search_result"),
    ],
)
def test_unsupported_parts_are_400s_naming_the_part(block: dict, message: str) -> None:
    req = {"max_tokens": 10, "messages": [{"role": "user", "content": [block]}]}
    with pytest.raises(InvalidRequest, match=message) as info:
        messages_to_converse(req, CLAUDE)
    assert "messages[0].content[0]" in info.value.message


def test_server_tools_are_refused() -> None:
    req = {
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "a"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(InvalidRequest, match="tools\\[0\\]"):
        messages_to_converse(req, CLAUDE)


def test_reply_mapping() -> None:
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
                    {"text": "hello"},
                    {"toolUse": {"toolUseId": "u1", "name": "f", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "guardrail_intervened",
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 17, "cacheReadInputTokens": 10},
    }
    out = converse_to_messages(body, CLAUDE, "msg_1")
    assert out["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "hello"},
        {"type": "tool_use", "id": "u1", "name": "f", "input": {"a": 1}},
    ]
    assert out["stop_reason"] == "refusal"
    assert out["usage"] == {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_read_input_tokens": 10,
        "cache_creation_input_tokens": 0,
    }


def _events(raw: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.decode().split("\n") if line.startswith("data: ")]


def _wire(kind: str, body: dict) -> bytes:
    headers: dict[str, str | bytes | bool | int] = {":event-type": kind, ":message-type": "event"}
    return encode_event_stream_message(headers, json.dumps(body).encode())


def test_stream_translation() -> None:
    t = ConverseStreamTranslator(CLAUDE, "msg_1")
    out = b""
    for kind, body in [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "th"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sg"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "u", "name": "f"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a":'}}}),
        ("contentBlockStop", {"contentBlockIndex": 2}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 6}}),
    ]:
        out += t.feed(_wire(kind, body))
    events = _events(out)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1]["content_block"]["type"] == "thinking"
    assert events[3]["delta"] == {"type": "signature_delta", "signature": "sg"}
    assert events[8]["content_block"] == {"type": "tool_use", "id": "u", "name": "f", "input": {}}
    assert events[9]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":'}
    assert events[11]["delta"]["stop_reason"] == "tool_use" and events[11]["usage"]["output_tokens"] == 6
    assert t.done
