"""What the web search support adds to every chat request: `Need.chat` now asks `web_search.requested`.

Side by side, one run: `Need.chat` on a chat body with two function tools (the common case: the byte search finds
no `"web_search` and nothing is decoded), the same without the check (the baseline: `Need` built as before), and a
body that does ask for web search (decoded once to confirm).
Run: `pytest benches/test_web_search_bench.py --benchmark-only`.
"""

from __future__ import annotations

import msgspec

from router.protocols import web_search
from router.routing.executor import Need
from router.server import requests as rq

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
MESSAGES = [{"role": "user", "content": "What is the weather like in Paris today? " * 20}]
BODY = msgspec.json.encode({"model": "openai/gpt-4o", "messages": MESSAGES, "tools": [TOOL, TOOL]})
SEARCH_BODY = msgspec.json.encode({"model": "openai/gpt-4o", "messages": MESSAGES, "tools": [{"type": "web_search"}]})


def _baseline(body: bytes, fields: dict[str, msgspec.Raw]) -> Need:
    tools = fields.get("tools")
    return Need(
        "chat",
        tools=tools is not None and bytes(tools).strip() not in (b"null", b"[]"),
        vision=b'"image_url"' in body,
        tokens=len(body) // 4,
    )


def test_need_baseline(benchmark) -> None:
    fields = rq.decode_fields(BODY)
    assert not benchmark(_baseline, BODY, fields).search


def test_need_with_search_check(benchmark) -> None:
    fields = rq.decode_fields(BODY)
    assert not benchmark(Need.chat, BODY, fields, False).search


def test_need_with_search_requested(benchmark) -> None:
    fields = rq.decode_fields(SEARCH_BODY)
    assert benchmark(Need.chat, SEARCH_BODY, fields, False).search
    assert web_search.requested(fields)
