"""`router._core.GeminiStreamTranslator` (Gemini streamGenerateContent → Messages SSE, in Rust) against the Python
translator the adapter keeps for grounded answers: byte for byte on every ungrounded stream, however split."""

from __future__ import annotations

import itertools
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router._core import GeminiStreamTranslator
from router.providers.gemini_content import StreamTranslator

MESSAGE_ID = "msg_gemini_0123456789abcdef"


def _sse(chunks: list[dict]) -> bytes:
    return b"".join(b"data: " + msgspec.json.encode(c) + b"\r\n\r\n" for c in chunks)


def _python(chunks: list[dict]) -> bytes:
    translator = StreamTranslator("gemini-2.5-flash", MESSAGE_ID)
    return b"".join(translator.chunk(msgspec.json.encode(c).decode()) for c in chunks) + translator.finish()


def _rust(pieces: list[bytes]) -> bytes:
    translator = GeminiStreamTranslator("gemini-2.5-flash", MESSAGE_ID)
    return b"".join(translator.feed(p) for p in pieces) + translator.finish()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(c % (len(data) + 1) for c in cuts)
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


_text = st.text(max_size=10)  # any Unicode, quotes, backslashes and control characters included
_args = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(-5, 5), _text, st.booleans(), st.none()), max_size=3),
)
_call = st.fixed_dictionaries({"name": _text}, optional={"args": _args, "id": _text})
_part = st.one_of(
    st.fixed_dictionaries({"text": _text}),
    st.fixed_dictionaries({"text": _text, "thought": st.booleans()}),
    st.fixed_dictionaries({"thought": st.just(True)}, optional={"text": _text, "thoughtSignature": _text}),
    st.fixed_dictionaries({"functionCall": _call}),
    st.fixed_dictionaries({"inlineData": st.fixed_dictionaries({"mimeType": st.just("image/png"), "data": _text})}),
)  # fmt: skip
_usage = st.fixed_dictionaries({}, optional={
    "promptTokenCount": st.integers(0, 10**6), "candidatesTokenCount": st.integers(0, 10**6),
    "thoughtsTokenCount": st.integers(0, 10**4), "cachedContentTokenCount": st.integers(0, 10**6),
    "totalTokenCount": st.integers(0, 10**6),
})  # fmt: skip
_finish = st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "SPII", "OTHER", "NEW_REASON", ""])
_chunk = st.one_of(
    st.fixed_dictionaries(
        {"candidates": st.lists(
            st.fixed_dictionaries(
                {"content": st.fixed_dictionaries({"role": st.just("model"), "parts": st.lists(_part, max_size=3)})},
                optional={"finishReason": _finish},
            ), min_size=1, max_size=2)},
        optional={"usageMetadata": _usage, "modelVersion": st.sampled_from(["gemini-2.5-pro", ""])},
    ),
    st.fixed_dictionaries({"promptFeedback": st.fixed_dictionaries({"blockReason": st.sampled_from(["SAFETY", ""])})}),
    st.fixed_dictionaries({"candidates": st.just([])}, optional={"usageMetadata": _usage}),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(_chunk, max_size=8), cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_matches_the_python_translator_however_split(chunks: list[dict], cuts: list[int]) -> None:
    assert _rust(_split(_sse(chunks), cuts)) == _python(chunks)


def test_an_answer_reads_as_messages_events() -> None:
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "modelVersion": "gemini-2.5-flash-001"},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}},
    ]  # fmt: skip
    out = _rust([_sse(chunks)])
    events = [json.loads(line[6:]) for line in out.decode().split("\n") if line.startswith("data: ")]
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert events[0]["message"]["model"] == "gemini-2.5-flash-001"
    assert events[5]["usage"]["output_tokens"] == 2 and events[5]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("data", [b'data: {"candidates": [\r\n\r\n', b"data: [1, 2]\n\n", b"data: \n\n"])
def test_a_malformed_chunk_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="GenerateContentResponse"):
        GeminiStreamTranslator("m", MESSAGE_ID).feed(data)
