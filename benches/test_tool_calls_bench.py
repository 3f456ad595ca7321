"""Tool-call analytics on the streaming hot path: tool names observed in Rust by the `StreamTap`, against the
straightforward alternative (decode every chunk in Python to look for tool calls).

Two OpenAI chunk streams of 1,000 data events cut into 1 KiB network chunks: all text (what most streams are;
every event now also goes through the tap's `"name"` pre-filter), and an agent turn with 20 tool calls whose
arguments stream in 49 deltas each. Run: `pytest benches/test_tool_calls_bench.py --benchmark-only`.
Before/after numbers for the existing benches (`test_sse_bench.py`, `test_transcode_bench.py`) are in the README.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from router._core import SseParser, StreamTap
from router.protocols.tools import chat_calls
from router.server.proxy import _usage_decoder, decode_answer


def _event(delta: dict) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _stream(tools: int) -> tuple[list[bytes], list[str]]:
    events, names = [], []
    per_tool = 1000 // tools if tools else 0
    for i in range(1000):
        if tools and i % per_tool == 0:
            name = f"tool_{i // per_tool}"
            names.append(name)
            call = {"index": i // per_tool, "id": f"call_{i}", "type": "function"}
            events.append(_event({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]}))
        elif tools:
            events.append(_event({"tool_calls": [{"index": i // per_tool, "function": {"arguments": '{"k": 1'}}]}))
        else:
            events.append(_event({"content": f"token {i} of a long answer "}))
    body = b"".join(events) + b"data: [DONE]\n\n"
    return [body[i : i + 1024] for i in range(0, len(body), 1024)], names


TEXT, _ = _stream(0)
AGENT, AGENT_TOOLS = _stream(20)


class _Function(msgspec.Struct):
    name: str | None = None


class _Call(msgspec.Struct):
    function: _Function | None = None


class _Delta(msgspec.Struct):
    tool_calls: list[_Call] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


_chunk = msgspec.json.Decoder(_Chunk)


def _rust(chunks: list[bytes]) -> list[str]:
    tap = StreamTap()
    for chunk in chunks:
        tap.feed(chunk)
    tap.finish()
    return tap.tool_names


def _python(chunks: list[bytes]) -> list[str]:
    """The tap forwarding as before, plus a Python decode of every event for its tool calls."""
    tap, parser, names = StreamTap(), SseParser(), []
    for chunk in chunks:
        tap.feed(chunk)
        for event in parser.feed(chunk):
            if event.data != "[DONE]":
                for choice in _chunk.decode(event.data).choices:
                    calls = (choice.delta and choice.delta.tool_calls) or ()
                    names.extend(c.function.name for c in calls if c.function is not None and c.function.name)
    tap.finish()
    return names


@pytest.mark.parametrize("impl", ["rust-tap", "python-decode"])
@pytest.mark.parametrize("stream", ["text", "agent"])
def test_tool_names(benchmark, stream: str, impl: str) -> None:
    chunks, expected = (TEXT, []) if stream == "text" else (AGENT, AGENT_TOOLS)
    benchmark.group = f"tool names, 1,000-event {stream} stream"
    assert benchmark(_rust if impl == "rust-tap" else _python, chunks) == expected


# -- whole chat answers: usage and tool names decoded in one pass (before: usage only) --------------------


ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A long answer. " * 200, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 600, "total_tokens": 650},
    }
).encode()


def _usage_and_tools(data: bytes) -> list[str] | None:
    answer = decode_answer(data)
    assert answer.usage is not None
    return chat_calls(answer.choices)


def _usage_only(data: bytes) -> None:
    """What forward_unary did before."""
    assert _usage_decoder.decode(data).usage is not None


@pytest.mark.parametrize("impl", ["usage-and-tool-names", "usage-only-before"])
def test_unary_answer_decode(benchmark, impl: str) -> None:
    benchmark.group = "unary chat answer (3 KB, no tool calls)"
    assert benchmark(_usage_and_tools if impl == "usage-and-tool-names" else _usage_only, ANSWER) is None
