"""`router._core.ConverseStreamTranslator` (Bedrock's ConverseStream → Messages SSE, in Rust) against the
pure-Python reference translator: byte for byte, however the network splits the stream."""

from __future__ import annotations

import itertools
import json

import msgspec
import pytest
from converse_reference import StreamTranslator
from eventstream_reference import RefEventStreamDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from router._core import ConverseStreamTranslator, EventStreamError, encode_event_stream_message

MODEL = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _message(kind: str, body: dict | bytes, message_type: str = "event") -> bytes:
    name = ":event-type" if message_type == "event" else ":exception-type"
    headers: dict[str, str | bytes | bool | int] = {
        name: kind,
        ":content-type": "application/json",
        ":message-type": message_type,
    }
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return encode_event_stream_message(headers, payload)


def _reference(wire: bytes) -> bytes:
    decoder, translator = RefEventStreamDecoder(), StreamTranslator(MODEL, "msg_1")
    out = b""
    for headers, payload in decoder.feed(wire):
        out += translator.event(headers.get(":event-type"), payload)  # type: ignore[arg-type]
    return out


def _rust(chunks: list[bytes]) -> bytes:
    translator = ConverseStreamTranslator(MODEL, "msg_1")
    out = b"".join(translator.feed(chunk) for chunk in chunks)
    translator.finish()
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(c % (len(data) + 1) for c in cuts)
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


_text = st.text(max_size=12)  # any Unicode, quotes, backslashes and control characters included
_index = st.integers(0, 3)
_event = st.one_of(
    st.tuples(st.just("contentBlockDelta"), st.fixed_dictionaries({"contentBlockIndex": _index, "delta": st.one_of(
        st.fixed_dictionaries({"text": _text}),
        st.fixed_dictionaries({"toolUse": st.fixed_dictionaries({"input": _text})}),
        st.fixed_dictionaries({"reasoningContent": st.one_of(
            st.fixed_dictionaries({"text": _text}),
            st.fixed_dictionaries({"signature": _text}),
            st.fixed_dictionaries({"text": _text, "signature": _text}),
            st.fixed_dictionaries({"redactedContent": _text}),
        )}),
    )})),
    st.tuples(st.just("contentBlockStart"), st.fixed_dictionaries({
        "contentBlockIndex": _index,
        "start": st.fixed_dictionaries({"toolUse": st.fixed_dictionaries({"toolUseId": _text, "name": _text})}),
    })),
    st.tuples(st.just("contentBlockStop"), st.fixed_dictionaries({"contentBlockIndex": _index})),
    st.tuples(st.just("messageStop"), st.fixed_dictionaries({"stopReason": st.sampled_from(
        ["end_turn", "tool_use", "max_tokens", "stop_sequence", "guardrail_intervened", "content_filtered", "new"]
    )})),
)  # fmt: skip
_usage = st.fixed_dictionaries({}, optional={
    "inputTokens": st.integers(0, 10**9), "outputTokens": st.integers(0, 10**9),
    "cacheReadInputTokens": st.integers(0, 10**6), "cacheWriteInputTokens": st.integers(0, 10**6),
})  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(events=st.lists(_event, max_size=12), usage=_usage, cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_matches_the_python_reference_however_split(events: list, usage: dict, cuts: list[int]) -> None:
    wire = b"".join(
        [
            _message("messageStart", {"role": "assistant"}),
            *(_message(kind, body) for kind, body in events),
            _message("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}),
        ]
    )
    assert _rust(_split(wire, cuts)) == _reference(wire)


def test_an_exception_ends_the_translation_and_is_reported_once() -> None:
    wire = b"".join(
        [
            _message("messageStart", {"role": "assistant"}),
            _message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            _message("throttlingException", {"message": "Too many requests"}, "exception"),
            _message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "after"}}),
        ]
    )
    translator = ConverseStreamTranslator(MODEL, "msg_1")
    out = translator.feed(wire)
    assert b'"text":"Hi"' in out and b"after" not in out
    assert translator.take_exception() == ("throttlingException", b'{"message":"Too many requests"}')
    assert translator.take_exception() is None
    assert not translator.done


@pytest.mark.parametrize(
    "wire",
    [
        _message("contentBlockDelta", b'{"contentBlockIndex": 0, "delta": {"text": '),
        _message("metadata", b'{"usage": {"inputTokens": -1}}'),
        _message("messageStart", b"[1, 2]"),
    ],
)
def test_a_malformed_event_is_an_event_stream_error(wire: bytes) -> None:
    with pytest.raises(EventStreamError, match="not valid JSON"):
        ConverseStreamTranslator(MODEL, "msg_1").feed(wire)


def test_corrupt_framing_and_truncation_are_event_stream_errors() -> None:
    wire = _message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
    with pytest.raises(EventStreamError, match="CRC"):
        ConverseStreamTranslator(MODEL, "msg_1").feed(wire[:-1] + bytes([wire[-1] ^ 1]))
    translator = ConverseStreamTranslator(MODEL, "msg_1")
    assert translator.feed(wire[:-3]) == b""
    with pytest.raises(EventStreamError, match="ended inside a message"):
        translator.finish()
    with pytest.raises(EventStreamError, match="length"):
        ConverseStreamTranslator(MODEL, "msg_1", max_message_size=64).feed(
            _message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 100}})
        )


def test_the_answer_is_json_a_messages_client_reads() -> None:
    wire = _message("messageStart", {}) + _message("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2}})
    out = ConverseStreamTranslator(MODEL, 'msg_"1"').feed(wire)
    events = [json.loads(line[6:]) for line in out.decode().split("\n") if line.startswith("data: ")]
    assert events[0]["message"]["id"] == 'msg_"1"' and events[0]["message"]["model"] == MODEL
    assert events[1]["usage"] == {
        "input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
    }  # fmt: skip
    assert events[2] == {"type": "message_stop"}
