"""Anthropic Messages ↔ Gemini generateContent mapping (`router.providers.gemini_content`)."""

from __future__ import annotations

import json

import pytest

from router.errors import InvalidRequest
from router.protocols.to_caller import anthropic_to_chat
from router.protocols.to_upstream import Plan
from router.providers.gemini_content import StreamTranslator, gemini_to_messages, messages_to_gemini


def test_tool_results_are_named_by_their_call() -> None:
    req = {
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {"c": 1}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x", "is_error": True}],
            },
        ],
        "tool_choice": {"type": "tool", "name": "get"},
        "tools": [{"name": "get", "input_schema": {"type": "object"}}],
    }
    out = messages_to_gemini(req, "gemini-2.5-flash")
    assert out["contents"][1] == {"role": "model", "parts": [{"functionCall": {"name": "get", "args": {"c": 1}}}]}
    assert out["contents"][2]["parts"][0] == {"functionResponse": {"name": "get", "response": {"error": "x"}}}
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get"]}}


def test_a_result_without_its_call_is_a_400() -> None:
    req = {"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "zz"}]}]}
    with pytest.raises(InvalidRequest, match="zz"):
        messages_to_gemini(req, "gemini-2.5-flash")


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("MAX_TOKENS", "length"), ("STOP", "stop")],
)
def test_finish_reasons_reach_chat(reason: str, finish: str) -> None:
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}, "finishReason": reason}],
        "usageMetadata": {
            "promptTokenCount": 10,
            "cachedContentTokenCount": 4,
            "candidatesTokenCount": 3,
            "thoughtsTokenCount": 2,
        },
    }
    messages = gemini_to_messages(body, "gemini-2.5-pro", "msg_1")
    assert messages["usage"] == {
        "input_tokens": 6,
        "output_tokens": 5,
        "cache_read_input_tokens": 4,
        "cache_creation_input_tokens": 0,
    }
    chat = anthropic_to_chat(messages, "google/gemini-2.5-pro", Plan())
    assert chat["choices"][0]["finish_reason"] == finish
    assert chat["usage"]["prompt_tokens"] == 10 and chat["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


def test_a_blocked_prompt_is_a_refusal() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    assert gemini_to_messages(body, "m", "msg_1")["stop_reason"] == "refusal"


def test_stream_translation() -> None:
    t = StreamTranslator("gemini-2.5-pro", "msg_1")
    out = b""
    for chunk in [
        {"candidates": [{"content": {"parts": [{"text": "hm", "thought": True}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]},
        {
            "candidates": [
                {"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
        },
    ]:
        out += t.chunk(json.dumps(chunk))
    out += t.finish()
    events = [json.loads(line[6:]) for line in out.decode().split("\n") if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_a_stream_without_a_finish_reason_is_incomplete() -> None:
    t = StreamTranslator("m", "msg_1")
    t.chunk(json.dumps({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}))
    assert t.finish() == b""
