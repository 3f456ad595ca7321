"""What the request checks add to the hot path, side by side with the path without them.

`decode_fields` (what every proxy endpoint runs first) is timed as it was (msgspec cutting the body into raw
top-level fields) and as it is (the whole-body UTF-8 and nesting check first, `json_fault`), on a small chat
request, a tools-heavy one, 400 KB of ASCII and 400 KB of mostly CJK text. The parameter range check
(`limits.check_fields`) is timed on a chat request carrying six sampling parameters.
"""

from __future__ import annotations

import msgspec
import pytest

from router.protocols import limits
from router.server import requests as rq

_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
SCHEMA = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 40} for i in range(8)}}
TOOLS = [{"type": "function", "function": {"name": f"tool_{i}", "parameters": SCHEMA}} for i in range(40)]
SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "seed": 42, "presence_penalty": 0.1, "n": 1}


def chat(content: str, **extra: object) -> bytes:
    return msgspec.json.encode({"model": "mock/gpt-4o", "messages": [{"role": "user", "content": content}], **extra})


BODIES = {
    "small": chat("What is the capital of France?", **SAMPLING),
    "tools-30KB": chat("Plan the trip.", tools=TOOLS, **SAMPLING),
    "ascii-400KB": chat("lorem ipsum dolor sit amet " * 15_000),
    "cjk-400KB": chat("東京の天気は晴れです。" * 13_000),
}


@pytest.mark.parametrize("path", ["without checks", "with checks"])
@pytest.mark.parametrize("body", list(BODIES))
def test_decode_fields(benchmark, body: str, path: str) -> None:
    data = BODIES[body]
    decode = _fields.decode if path == "without checks" else rq.decode_fields
    fields = benchmark(decode, data)
    assert "messages" in fields


def test_check_fields_six_sampling_parameters(benchmark) -> None:
    fields = _fields.decode(BODIES["small"])
    benchmark(limits.check_fields, fields, limits.CHAT)
