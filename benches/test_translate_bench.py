"""Non-streamed translation in Python (msgspec decode, dict rewrite, msgspec encode) against what the
pass-through path does with the same request (split top-level fields, swap the model, re-encode), to show it
is not the bottleneck. Run: `pytest benches/test_translate_bench.py --benchmark-only`.
"""

from __future__ import annotations

import msgspec
import pytest

from router.protocols.to_caller import translate_reply
from router.protocols.to_upstream import translate_request
from router.server import requests as rq

REQUEST = msgspec.json.encode(
    {
        "model": "gw/model",
        "max_tokens": 1000,
        "system": "Be brief. " * 50,
        "messages": [
            {"role": "user", "content": "hello " * 100},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "weather"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "Sunny"}]},
        ],
        "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
    }
)
REPLY = msgspec.json.encode(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The quick brown fox " * 10},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 400, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 100}},
    }
)  # fmt: skip
UPSTREAM_NAME = msgspec.Raw(b'"gpt-4o"')


def _translated() -> int:
    body, plan = translate_request(msgspec.json.decode(REQUEST), "messages", "chat", None)
    body["model"] = "gpt-4o"
    sent = msgspec.json.encode(body)
    reply = translate_reply(msgspec.json.decode(REPLY), "chat", "messages", "gw/model", plan)
    return len(sent) + len(msgspec.json.encode(reply))


def _passed_through() -> int:
    fields = rq.decode_fields(REQUEST)
    fields["model"] = UPSTREAM_NAME
    sent = rq.encode_fields(fields)
    return len(sent) + len(REPLY)


@pytest.mark.benchmark(group="non-streamed request + reply")
def test_translated_messages_to_chat(benchmark) -> None:
    assert benchmark(_translated) > 0


@pytest.mark.benchmark(group="non-streamed request + reply")
def test_pass_through(benchmark) -> None:
    assert benchmark(_passed_through) > 0
