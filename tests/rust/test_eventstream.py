"""Tests of the `router._core` AWS event-stream bindings against the pure-Python reference decoder."""

from __future__ import annotations

import itertools
import json

import pytest
from eventstream_reference import RefEventStreamDecoder, RefEventStreamError
from hypothesis import given, settings
from hypothesis import strategies as st

from router._core import EventStreamDecoder, EventStreamError, encode_event_stream_message

Headers = dict[str, str | bytes | bool | int]


def _event(kind: str, body: dict) -> bytes:
    headers: Headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_event_stream_message(headers, json.dumps(body).encode())


def _stream() -> bytes:
    # The event sequence of a Bedrock ConverseStream answer
    # (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html).
    parts = [
        _event("messageStart", {"role": "assistant"}),
        *(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"tok{i} "}}) for i in range(20)),
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": "end_turn"}),
        _event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 20, "totalTokens": 23}, "metrics": {}}),
    ]
    return b"".join(parts)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(c % (len(data) + 1) for c in cuts)
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


def _decode(chunks: list[bytes]) -> list[tuple[dict, bytes]]:
    d = EventStreamDecoder()
    out = [(m.headers, m.payload) for c in chunks for m in d.feed(c)]
    d.finish()
    return out


def test_the_aws_empty_message_vector() -> None:
    # aws-c-event-stream's `encoded/positive/empty_message`.
    wire = bytes.fromhex("000000100000000005c248eb7d98c8ff")
    assert encode_event_stream_message({}, b"") == wire
    assert _decode([wire]) == [({}, b"")]


def test_bedrock_events_decode_with_their_types() -> None:
    d = EventStreamDecoder()
    msgs = d.feed(_stream())
    d.finish()
    assert [m.event_type for m in msgs][:2] == ["messageStart", "contentBlockDelta"]
    assert msgs[0].message_type == "event"
    assert json.loads(msgs[-1].payload)["usage"]["totalTokens"] == 23
    assert msgs[0].headers[":content-type"] == "application/json"


def test_header_types_round_trip() -> None:
    headers: Headers = {"a": True, "b": False, "n": -(2**40), "s": "héllo", "y": b"\x00\xff"}
    [(got, payload)] = _decode([encode_event_stream_message(headers, b"x")])
    assert got == headers and payload == b"x"


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=15))
def test_any_split_matches_the_reference(cuts: list[int]) -> None:
    wire = _stream()
    chunks = _split(wire, cuts)
    ref = RefEventStreamDecoder()
    expected = [m for c in chunks for m in ref.feed(c)]
    assert _decode(chunks) == expected
    assert len(expected) == 24


@settings(max_examples=200, deadline=None)
@given(at=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_a_corrupted_byte_fails_both_decoders(at: int, flip: int) -> None:
    wire = bytearray(_stream())
    wire[at % len(wire)] ^= flip
    with pytest.raises(EventStreamError):
        _decode([bytes(wire)])
    with pytest.raises(RefEventStreamError):
        ref = RefEventStreamDecoder()
        ref.feed(bytes(wire))
        ref.finish()


def test_errors_are_sticky_and_truncation_is_reported() -> None:
    wire = _stream()
    d = EventStreamDecoder()
    d.feed(wire[:30])
    assert d.buffered == 30
    with pytest.raises(EventStreamError, match="ended inside a message"):
        d.finish()
    bad = bytearray(wire)
    bad[9] ^= 1
    d = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="prelude CRC"):
        d.feed(bytes(bad))
    with pytest.raises(EventStreamError):
        d.feed(wire)


def test_oversized_message_is_refused_from_its_prelude() -> None:
    big = encode_event_stream_message({}, b"a" * 5000)
    d = EventStreamDecoder(max_message_size=1024)
    assert d.max_message_size == 1024
    with pytest.raises(EventStreamError, match="length 5016"):
        d.feed(big[:12])


def test_encoder_rejects_bad_headers() -> None:
    with pytest.raises(ValueError, match="header name"):
        encode_event_stream_message({"": "x"}, b"")
    with pytest.raises(TypeError):
        encode_event_stream_message({"a": 1.5}, b"")  # type: ignore[dict-item]
