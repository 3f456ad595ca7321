"""router._core.Transcoder from Python: byte-identical to the pure-Python reference for all nine pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from router._core import Transcoder

from sse_reference import chunked
from transcode_reference import RefTranscoder, long_stream

APIS = ("chat", "messages", "responses")
GOLDEN = Path(__file__).resolve().parents[2] / "rust" / "src" / "transcode" / "golden"
PAIRS = [(up, caller) for up in APIS for caller in APIS]


def _run(transcoder: Transcoder | RefTranscoder, chunks: list[bytes]) -> bytes:
    return b"".join(transcoder.feed(chunk) for chunk in chunks)


@pytest.mark.parametrize(("upstream", "caller"), PAIRS)
@pytest.mark.parametrize("source", ["golden", "long"])
def test_matches_the_python_reference(upstream: str, caller: str, source: str) -> None:
    stream = (GOLDEN / f"{upstream}.sse").read_bytes() if source == "golden" else long_stream(upstream)
    args = (upstream, caller, "gw/model", 1_700_000_123, 42)
    rust = Transcoder(*args)
    out = _run(rust, chunked(stream, 1024))
    assert out == _run(RefTranscoder(*args), [stream])
    assert rust.done and not rust.malformed and rust.error is None
    assert rust.prompt_tokens == 50 and rust.cached_tokens == 10
    if source == "golden":
        assert out == (GOLDEN / f"{upstream}_to_{caller}.sse").read_bytes()


def test_unknown_api_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'chat', 'messages' or 'responses'"):
        Transcoder("gemini", "chat", "m", 0)


def test_fail_renders_the_callers_error_event() -> None:
    transcoder = Transcoder("chat", "messages", "m", 0)
    out = transcoder.fail("upstream_stream_incomplete", "cut short")
    assert out == (b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut short"}}\n\n')
    assert transcoder.error == ("upstream_stream_incomplete", "cut short")
    assert transcoder.feed(b"data: [DONE]\n\n") == b""


def _sse(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


def test_consecutive_text_blocks_are_one_responses_message() -> None:
    """Anthropic splits a cited answer into text blocks: Responses callers get one message, as OpenAI sends."""
    events = [
        '{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":0}}}',
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"One. "}}',
        '{"type":"content_block_stop","index":0}',
        '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
        '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Two."}}',
        '{"type":"content_block_stop","index":1}',
        '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
        '{"type":"message_stop"}',
    ]
    stream = b"".join(_sse(e) for e in events)
    args = ("messages", "responses", "gw/model", 1_700_000_123, 42)
    out = _run(Transcoder(*args), chunked(stream, 7))
    assert out == _run(RefTranscoder(*args), [stream])
    assert out.count(b"event: response.output_item.added") == 1
    assert b'"text":"One. Two."' in out
