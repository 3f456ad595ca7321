"""Tests of the `router._core` SSE bindings: `SseParser`, `SseEvent`, `StreamTap`."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router._core import SseEvent, SseParser, StreamTap

from sse_reference import RefEvent, RefSseParser, chunked, openai_stream, ref_tap

Fields = tuple[str | None, str, str | None, int | None]


def _as_tuple(e: SseEvent | RefEvent) -> Fields:
    return (e.event, e.data, e.id, e.retry)


def _parse(parser: SseParser | RefSseParser, chunks: list[bytes]) -> list[Fields]:
    out = []
    for c in chunks:
        out.extend(parser.feed(c))
    out.extend(parser.finish())
    return [_as_tuple(e) for e in out]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(c % (len(data) + 1) for c in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --- SseEvent ---------------------------------------------------------------------------------------------------


def test_event_is_frozen_and_comparable() -> None:
    e = SseParser().feed(b"event: x\nid: 1\nretry: 5\ndata: a\n\n")[0]
    assert (e.event, e.data, e.id, e.retry) == ("x", "a", "1", 5)
    assert e == SseEvent("a", event="x", id="1", retry=5)
    assert e != SseEvent("a")
    with pytest.raises(AttributeError):
        e.data = "b"  # type: ignore[misc]
    assert repr(SseEvent("a")) == 'SseEvent(data="a", event=None, id=None, retry=None)'


# --- framing ------------------------------------------------------------------------------------------------------

CASES: list[tuple[str, list[bytes], list[Fields]]] = [
    ("lf", [b"data: a\n\ndata: b\n\n"], [(None, "a", None, None), (None, "b", None, None)]),
    ("crlf", [b"data: a\r\n\r\ndata: b\r\n\r\n"], [(None, "a", None, None), (None, "b", None, None)]),
    ("cr", [b"data: a\r\rdata: b\r\r"], [(None, "a", None, None), (None, "b", None, None)]),
    ("cr-split-lf", [b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], [(None, "a", None, None), (None, "b", None, None)]),
    ("cr-split-no-extra-line", [b"data: a\r", b"\ndata: b\r", b"\n\r\n"], [(None, "a\nb", None, None)]),
    ("split-line", [b"da", b"ta: he", b"llo\n", b"\n"], [(None, "hello", None, None)]),
    ("utf8-split", [b"data: \xc3", b"\xa9t\xf0\x9f", b"\x98\x80\n\n"], [(None, "\u00e9t\U0001f600", None, None)]),
    ("invalid-utf8", [b"data: a\xffb\n\n"], [(None, "a\ufffdb", None, None)]),
    ("comments", [b": ping\n\ndata: a\n: mid\ndata: b\n\n"], [(None, "a\nb", None, None)]),
    ("multi-line", [b"data: a\ndata:\ndata:  c\n\n"], [(None, "a\n\n c", None, None)]),
    ("no-colon", [b"data\n\n"], [(None, "", None, None)]),
    ("event-name-resets", [b"event: x\ndata: 1\n\ndata: 2\n\n"], [("x", "1", None, None), (None, "2", None, None)]),
    ("id-persists", [b"id: 7\ndata: a\n\ndata: b\n\n"], [(None, "a", "7", None), (None, "b", "7", None)]),
    ("retry", [b"retry: 100\ndata: a\n\nretry: 1x\ndata: b\n\n"], [(None, "a", None, 100), (None, "b", None, None)]),
    ("bom", [b"\xef\xbb", b"\xbfdata: a\n\n"], [(None, "a", None, None)]),
    ("blank-only", [b"\n\n\r\n\r"], []),
    ("no-data-no-dispatch", [b"event: x\nid: 1\n\n"], []),
    ("no-trailing-blank", [b"data: a\n\ndata: b\n"], [(None, "a", None, None)]),
    ("unknown-field", [b"foo: bar\ndata: a\n\n"], [(None, "a", None, None)]),
]


@pytest.mark.parametrize(("chunks", "expected"), [(c, e) for _, c, e in CASES], ids=[n for n, _, _ in CASES])
def test_framing(chunks: list[bytes], expected: list[Fields]) -> None:
    assert _parse(SseParser(), chunks) == expected
    assert _parse(RefSseParser(), chunks) == expected
    one_byte = [bytes([b]) for b in b"".join(chunks)]
    assert _parse(SseParser(), one_byte) == expected


def test_finish_discards_and_resets() -> None:
    p = SseParser()
    assert p.feed(b"id: 1\ndata: partial") == []
    assert p.finish() == []
    assert p.last_event_id is None
    assert p.feed(b"\n\n") == []


def test_parser_state_properties() -> None:
    p = SseParser()
    p.feed(b"id: abc\nretry: 3000\n\n")
    assert p.last_event_id == "abc"
    assert p.reconnection_time == 3000


def test_feed_rejects_str() -> None:
    with pytest.raises(TypeError):
        SseParser().feed("data: a\n\n")  # type: ignore[arg-type]


# --- property: any split equals the reference parser -------------------------------------------------------------

_pieces = st.sampled_from(
    [
        b"data: ",
        b"data:",
        b"data",
        b"event: e",
        b"id: 1",
        b"id",
        b"retry: 30",
        b"retry: x",
        b": c",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\xef\xbb\xbf",
        "\u00e9\U0001f600".encode(),
        b"\xff",
        b"\xe2\x82",
        b"x",
        b" ",
        b":",
        b"\0",
    ]
)
_streams = st.one_of(
    st.lists(st.one_of(_pieces, st.binary(max_size=4)), max_size=40).map(b"".join),
    st.binary(max_size=200),
)


@settings(max_examples=400, deadline=None)
@given(stream=_streams, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_matches_reference(stream: bytes, cuts: list[int]) -> None:
    expected = _parse(RefSseParser(), [stream])
    assert _parse(SseParser(), _split(stream, cuts)) == expected
    assert _parse(RefSseParser(), _split(stream, cuts)) == expected


@settings(max_examples=50, deadline=None)
@given(size=st.integers(min_value=1, max_value=2048), nl=st.sampled_from(["\n", "\r\n", "\r"]))
def test_openai_stream_matches_reference(size: int, nl: str) -> None:
    stream = openai_stream(30, nl=nl)
    got = _parse(SseParser(), chunked(stream, size))
    assert got == _parse(RefSseParser(), [stream])
    assert len(got) == 34
    assert got[-1][1] == "[DONE]"


# --- StreamTap ----------------------------------------------------------------------------------------------------


def _tap(tap: StreamTap, chunks: list[bytes]) -> bytes:
    out = [tap.feed(c) for c in chunks]
    out.append(tap.finish())
    return b"".join(out)


def _usage_event(stream: bytes, nl: str) -> bytes:
    start = stream.rindex((nl + nl).encode(), 0, stream.index(b'"choices":[]')) + 2 * len(nl)
    end = stream.index((nl + nl).encode(), start) + 2 * len(nl)
    return stream[start:end]


def test_tap_observes_openai_stream() -> None:
    stream = openai_stream(20)
    tap = StreamTap()
    assert _tap(tap, [stream]) == stream
    assert tap.data_events == 23
    assert tap.done
    assert tap.model == "gpt-4o-2024-08-06"
    assert tap.error is None
    assert json.loads(tap.usage or b"") == {
        "prompt_tokens": 1200,
        "completion_tokens": 20,
        "total_tokens": 1220,
        "prompt_tokens_details": {"cached_tokens": 1024},
    }
    assert not tap.strip_usage_chunk


def test_tap_returns_same_object_for_whole_events() -> None:
    tap = StreamTap()
    chunk = b"data: {}\n\n"
    assert tap.feed(chunk) is chunk
    assert tap.feed(b'data: "x"') == b""
    assert tap.feed(b"\n\n: y") == b'data: "x"\n\n'
    assert tap.finish() == b": y"
    assert not tap.malformed


def test_tap_strips_usage_chunk() -> None:
    stream = openai_stream(5)
    usage_event = _usage_event(stream, "\n")
    assert b'"choices":[]' in usage_event
    tap = StreamTap(strip_usage_chunk=True)
    assert _tap(tap, [stream]) == stream.replace(usage_event, b"")
    assert tap.usage is not None
    assert tap.strip_usage_chunk


def test_tap_error_and_non_object_json() -> None:
    err = b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}'
    stream = b'data: ["usage", "error"]\n\ndata: {"error": null}\n\ndata: ' + err + b"\n\n"
    tap = StreamTap(strip_usage_chunk=True)
    assert _tap(tap, [stream]) == stream
    assert tap.error == err
    assert tap.usage is None
    assert tap.data_events == 3
    assert not tap.done
    assert not tap.malformed


# --- StreamTap: malformed data events are never forwarded ---------------------------------------------------------


def _events(stream: bytes, nl: str) -> list[bytes]:
    sep = (nl + nl).encode()
    return [e + sep for e in stream.split(sep)[:-1]]


def test_tap_malformed_in_the_middle() -> None:
    events = _events(openai_stream(5), "\n")
    stream = b"".join([*events[:3], b"data: {not json\n\n", *events[3:]])
    tap = StreamTap()
    assert tap.feed(stream) == b"".join(events[:3])
    assert tap.malformed
    assert tap.data_events == 3
    assert tap.model == "gpt-4o-2024-08-06"
    assert tap.usage is None
    assert not tap.done
    assert tap.feed(stream) == b""
    assert tap.finish() == b""
    assert (tap.data_events, tap.done, tap.usage) == (3, False, None)


def test_tap_malformed_split_across_chunks() -> None:
    tap = StreamTap()
    assert tap.feed(b'data: {"a":1}\n\ndata: {"b"') == b'data: {"a":1}\n\n'
    assert tap.feed(b":2\n") == b""
    assert not tap.malformed
    assert tap.feed(b'data: "c":3}\n\ndata: {}\n\n') == b""
    assert tap.malformed
    assert tap.data_events == 1
    assert tap.feed(b"data: {}\n\n") == b""
    assert tap.finish() == b""


@pytest.mark.parametrize(
    "bad",
    [b"data:", b"data: {", b'data: {"a":1} x', b"data: NaN", b"data: [DON]", b'data: "\xff"', b"data: 1\ndata: 2"],
)
def test_tap_malformed_payloads(bad: bytes) -> None:
    stream = b"data: {}\n\n: ping\n\n" + bad + b"\n\ndata: [DONE]\n\n"
    tap = StreamTap()
    assert _tap(tap, [stream]) == b"data: {}\n\n: ping\n\n"
    assert tap.malformed
    assert tap.data_events == 1
    assert not tap.done


def test_tap_does_not_validate_done_comments_or_dataless_events() -> None:
    stream = b": {not json\n\nevent: x\nid: 1\n\ndata: [DONE]\n\ndata: [DONE] and more\n\n"
    tap = StreamTap()
    assert _tap(tap, [stream]) == stream
    assert not tap.malformed
    assert tap.done
    assert tap.data_events == 0


_BAD_EVENTS = [
    b"data: {not json{nl}{nl}",
    b"data:{nl}{nl}",
    b'event: x{nl}data: {"usage":{"total_tokens":3}{nl}{nl}',
    b'data: {"a":1}{nl}: mid{nl}data: {"b":2}{nl}{nl}',
    b"id: 1{nl}data: [DONE{nl}{nl}",
]


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    nl=st.sampled_from(["\n", "\r\n", "\r"]),
    strip=st.booleans(),
    bad=st.sampled_from(_BAD_EVENTS),
    at=st.integers(min_value=0, max_value=8),
)
def test_tap_malformed_any_split(cuts: list[int], nl: str, strip: bool, bad: bytes, at: int) -> None:
    events = _events(openai_stream(4, nl=nl), nl)  # role, 4 deltas, stop, usage, [DONE]
    events.insert(at, bad.replace(b"{nl}", nl.encode()))
    stream = b"".join(events)
    tap = StreamTap(strip_usage_chunk=strip)
    out = _tap(tap, _split(stream, cuts))
    expected = b"".join(e for e in events[:at] if not (strip and b'"choices":[]' in e))
    assert out == expected
    assert tap.malformed
    assert tap.data_events == min(at, 7)
    assert tap.done == (at == 8)
    assert (tap.usage is not None) == (at >= 7)
    # What the client gets parses: every event but [DONE] is JSON.
    for event in RefSseParser().feed(out):
        if event.data != "[DONE]":
            json.loads(event.data)


def test_tap_rejects_str() -> None:
    with pytest.raises(TypeError):
        StreamTap().feed("data: a\n\n")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    nl=st.sampled_from(["\n", "\r\n", "\r"]),
    strip=st.booleans(),
    usage=st.booleans(),
)
def test_tap_any_split(cuts: list[int], nl: str, strip: bool, usage: bool) -> None:
    stream = openai_stream(12, usage=usage, nl=nl)
    tap = StreamTap(strip_usage_chunk=strip)
    out = _tap(tap, _split(stream, cuts))
    expected = stream.replace(_usage_event(stream, nl), b"") if strip and usage else stream
    assert out == expected
    assert tap.data_events == 14 + usage
    assert tap.done
    assert tap.model == "gpt-4o-2024-08-06"
    assert (tap.usage is not None) == usage
    if usage:
        assert json.loads(tap.usage or b"")["completion_tokens"] == 12


@settings(max_examples=300, deadline=None)
@given(stream=_streams, cuts=st.lists(st.integers(min_value=0), max_size=12), strip=st.booleans())
def test_tap_forwards_arbitrary_bytes_up_to_malformed(stream: bytes, cuts: list[int], strip: bool) -> None:
    tap = StreamTap(strip_usage_chunk=strip)
    expected, malformed, data_events = ref_tap(stream)
    assert _tap(tap, _split(stream, cuts)) == expected
    assert tap.malformed == malformed
    assert tap.data_events == data_events
