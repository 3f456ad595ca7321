"""Native provider streams to Messages SSE: the Rust translators against the Python ones, on the same answer.

- Bedrock ConverseStream (AWS event stream): `ConverseStreamTranslator` (decode and translate in one pass)
  against the Rust event-stream decoder handing each event to the Python translator (tests/rust/
  converse_reference.py, the adapter's former path).
- Gemini streamGenerateContent (SSE): `GeminiStreamTranslator` against the Rust SSE parser handing each chunk
  to the Python translator (`gemini_content.StreamTranslator`, kept for grounded answers).

Each answer is 200 text deltas with a start, a stop and usage, fed in 1 KiB network chunks; the outputs are
checked equal. Run: `pytest benches/test_native_stream_bench.py --benchmark-only`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

from router._core import (
    ConverseStreamTranslator,
    EventStreamDecoder,
    GeminiStreamTranslator,
    SseParser,
    encode_event_stream_message,
)
from router.providers.gemini_content import StreamTranslator as GeminiPython

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from converse_reference import StreamTranslator as ConversePython

MODEL = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
TOKENS = 200


def _event(kind: str, body: dict) -> bytes:
    headers: dict[str, str | bytes | bool | int] = {
        ":event-type": kind,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_event_stream_message(headers, msgspec.json.encode(body))


CONVERSE = b"".join(
    [
        _event("messageStart", {"role": "assistant"}),
        *(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" t{i}"}}) for i in range(TOKENS)),
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": "end_turn"}),
        _event("metadata", {"usage": {"inputTokens": 10, "outputTokens": TOKENS, "totalTokens": 210}, "metrics": {}}),
    ]
)
GEMINI = b"".join(
    b"data: " + msgspec.json.encode(chunk) + b"\r\n\r\n"
    for chunk in [
        *(
            {"candidates": [{"content": {"role": "model", "parts": [{"text": f" t{i}"}]}, "index": 0}],
             "modelVersion": "gemini-2.5-flash"}
            for i in range(TOKENS)
        ),
        {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": TOKENS, "totalTokenCount": 210},
         "modelVersion": "gemini-2.5-flash"},
    ]
)  # fmt: skip


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1024] for i in range(0, len(data), 1024)]


def converse_rust() -> bytes:
    translator = ConverseStreamTranslator(MODEL, "msg_1")
    out = b"".join(translator.feed(chunk) for chunk in _chunks(CONVERSE))
    translator.finish()
    return out


def converse_python() -> bytes:
    decoder, translator = EventStreamDecoder(), ConversePython(MODEL, "msg_1")
    out = b""
    for chunk in _chunks(CONVERSE):
        for _, kind, payload in decoder.feed_events(chunk):
            out += translator.event(kind, payload)
    decoder.finish()
    return out


def gemini_rust() -> bytes:
    translator = GeminiStreamTranslator("gemini-2.5-flash", "msg_1")
    return b"".join(translator.feed(chunk) for chunk in _chunks(GEMINI)) + translator.finish()


def gemini_python() -> bytes:
    parser, translator = SseParser(), GeminiPython("gemini-2.5-flash", "msg_1")
    out = b""
    for chunk in _chunks(GEMINI):
        for event in parser.feed(chunk):
            out += translator.chunk(event.data)
    return out + translator.finish()


def test_outputs_are_identical() -> None:
    assert converse_rust() == converse_python()
    assert gemini_rust() == gemini_python()


@pytest.mark.benchmark(group="converse-stream")
def test_converse_rust(benchmark) -> None:
    benchmark(converse_rust)


@pytest.mark.benchmark(group="converse-stream")
def test_converse_python(benchmark) -> None:
    benchmark(converse_python)


@pytest.mark.benchmark(group="gemini-stream")
def test_gemini_rust(benchmark) -> None:
    benchmark(gemini_rust)


@pytest.mark.benchmark(group="gemini-stream")
def test_gemini_python(benchmark) -> None:
    benchmark(gemini_python)
