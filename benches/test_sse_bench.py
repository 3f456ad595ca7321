"""SSE hot path: Rust `SseParser`/`StreamTap` against the pure-Python reference parser.

A realistic OpenAI `chat.completion.chunk` stream (200 content deltas, usage chunk, [DONE]) cut into
1 KiB network chunks. Run: `pytest benches/test_sse_bench.py --benchmark-only`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from router._core import SseParser, StreamTap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from sse_reference import RefSseParser, chunked, openai_stream

STREAM = openai_stream(200)
CHUNKS = chunked(STREAM, 1024)
N_EVENTS = 204  # role + 200 deltas + stop + usage + [DONE]


def _parse(parser: SseParser | RefSseParser) -> int:
    n = 0
    for chunk in CHUNKS:
        n += len(parser.feed(chunk))
    return n + len(parser.finish())


@pytest.mark.benchmark(group="sse-parse")
def test_parse_rust(benchmark) -> None:
    assert benchmark(lambda: _parse(SseParser())) == N_EVENTS


@pytest.mark.benchmark(group="sse-parse")
def test_parse_python_reference(benchmark) -> None:
    assert benchmark(lambda: _parse(RefSseParser())) == N_EVENTS


def _tap(strip: bool) -> StreamTap:
    tap = StreamTap(strip_usage_chunk=strip)
    for chunk in CHUNKS:
        tap.feed(chunk)
    tap.finish()
    return tap


def _python_observe() -> bytes | None:
    """What the tap does, done in Python: parse, then json.loads the events that mention usage."""
    usage = None
    parser = RefSseParser()
    for chunk in CHUNKS:
        for event in parser.feed(chunk):
            if '"usage"' in event.data and event.data != "[DONE]":
                u = json.loads(event.data).get("usage")
                if u is not None:
                    usage = u
    return usage


@pytest.mark.benchmark(group="sse-tap")
def test_tap_rust(benchmark) -> None:
    tap = benchmark(_tap, False)
    assert tap.data_events == N_EVENTS - 1
    assert tap.usage is not None


@pytest.mark.benchmark(group="sse-tap")
def test_tap_rust_strip_usage(benchmark) -> None:
    tap = benchmark(_tap, True)
    assert tap.done
    assert tap.usage is not None


@pytest.mark.benchmark(group="sse-tap")
def test_tap_rust_strip_usage_one_read(benchmark) -> None:
    """The whole stream in one read, as a local upstream sends it: the usage event is cut out of the middle."""

    def run() -> tuple[StreamTap, bytes]:
        tap = StreamTap(strip_usage_chunk=True)
        return tap, tap.feed(STREAM) + tap.finish()

    tap, out = benchmark(run)
    assert tap.usage is not None and b'"usage":{' not in out and out.endswith(b"data: [DONE]\n\n")


@pytest.mark.benchmark(group="sse-tap")
def test_tap_python_parse_and_json(benchmark) -> None:
    assert benchmark(_python_observe) is not None
