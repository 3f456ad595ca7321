"""The Bedrock adapter's stream reader (`providers.bedrock._StreamResponse`): ConverseStream bytes in, Messages SSE
out, mid-stream exceptions as error events in the caller's terms, broken streams as upstream errors."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from router._core import encode_event_stream_message
from router.errors import UpstreamError
from router.providers.bedrock import _StreamResponse


def _message(kind: str, body: dict | bytes, message_type: str = "event") -> bytes:
    name = {"event": ":event-type", "exception": ":exception-type", "error": ":error-code"}[message_type]
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return encode_event_stream_message({name: kind, ":message-type": message_type}, payload)


class _Reader:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def read_chunk(self) -> bytes | None:
        return self.chunks.pop(0) if self.chunks else None


class _Response:
    status = 200

    def __init__(self, chunks: list[bytes]) -> None:
        self.body_reader = _Reader(chunks)

    def get_header(self, name: str) -> str | None:
        return None


def _read(chunks: list[bytes]) -> list[dict]:
    async def run() -> bytes:
        stream = _StreamResponse(_Response(chunks), "m", "aws")  # type: ignore[arg-type]
        out = b""
        while (chunk := await stream.read_chunk()) is not None:
            out += chunk
        return out

    out = asyncio.run(run()).decode()
    return [json.loads(line[6:]) for line in out.split("\n") if line.startswith("data: ")]


def test_a_whole_answer_split_across_chunks() -> None:
    wire = b"".join(
        [
            _message("messageStart", {"role": "assistant"}),
            _message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            _message("contentBlockStop", {"contentBlockIndex": 0}),
            _message("messageStop", {"stopReason": "end_turn"}),
            _message("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2}}),
        ]
    )
    events = _read([wire[:50], wire[50:51], wire[51:]])
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
    assert events[0]["message"]["id"].startswith("msg_bdrk_")


@pytest.mark.parametrize(
    ("kind", "message_type", "error_type"),
    [
        ("throttlingException", "exception", "rate_limit_error"),
        ("modelStreamErrorException", "exception", "api_error"),
        ("serviceUnavailableException", "exception", "overloaded_error"),
        ("SomethingNew", "error", "api_error"),
    ],
)
def test_a_mid_stream_exception_ends_with_a_mapped_error_event(kind: str, message_type: str, error_type: str) -> None:
    wire = _message("messageStart", {"role": "assistant"}) + _message(kind, {"message": "Slow down"}, message_type)
    events = _read([wire])
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == error_type
    name = kind[:1].upper() + kind[1:]
    assert events[-1]["error"]["message"] == f"Upstream provider 'aws' failed ({name}): Slow down"


@pytest.mark.parametrize(
    "chunks",
    [
        [_message("contentBlockDelta", b'{"contentBlockIndex": 0, "delta": ')],  # not JSON
        [_message("messageStart", {"role": "assistant"})[:-1] + b"\x00"],  # message CRC
        [_message("messageStart", {"role": "assistant"})[:20]],  # ends inside a message
    ],
)
def test_a_broken_stream_is_an_upstream_error(chunks: list[bytes]) -> None:
    with pytest.raises(UpstreamError, match="malformed event stream") as caught:
        _read(chunks)
    assert caught.value.code == "upstream_invalid_stream"
