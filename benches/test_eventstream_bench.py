"""Bedrock streaming hot path: the Rust AWS event-stream decoder against a pure-Python one, and SigV4 signing.

A ConverseStream answer (messageStart, 200 text deltas, stop, metadata) cut into 1 KiB network chunks; each
decoder yields every message's event type and payload. `extra_info["MB/s"]` is the decode throughput
(fastest round).
Run: `pytest benches/test_eventstream_bench.py --benchmark-only`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from router._core import EventStreamDecoder, encode_event_stream_message
from router.providers.sigv4 import Credentials, SigV4Signer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from eventstream_reference import RefEventStreamDecoder


def _event(kind: str, body: dict) -> bytes:
    headers: dict[str, str | bytes | bool | int] = {
        ":event-type": kind,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_event_stream_message(headers, json.dumps(body).encode())


STREAM = b"".join(
    [
        _event("messageStart", {"role": "assistant"}),
        *(_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" token{i}"}}) for i in range(200)),
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": "end_turn"}),
        _event("metadata", {"usage": {"inputTokens": 10, "outputTokens": 200, "totalTokens": 210}, "metrics": {}}),
    ]
)
CHUNKS = [STREAM[i : i + 1024] for i in range(0, len(STREAM), 1024)]
N_MESSAGES = 204


def _rust() -> int:
    """What the Bedrock stream loop does: event type and payload of every message."""
    decoder = EventStreamDecoder()
    n = 0
    for chunk in CHUNKS:
        for _, kind, payload in decoder.feed_events(chunk):
            n += bool(kind) and bool(payload)
    decoder.finish()
    return n


def _rust_messages() -> int:
    decoder = EventStreamDecoder()
    n = 0
    for chunk in CHUNKS:
        for message in decoder.feed(chunk):
            n += bool(message.event_type) and bool(message.payload)
    decoder.finish()
    return n


def _python() -> int:
    decoder = RefEventStreamDecoder()
    n = 0
    for chunk in CHUNKS:
        for headers, payload in decoder.feed(chunk):
            n += bool(headers[":event-type"]) and bool(payload)
    decoder.finish()
    return n


def _throughput(benchmark) -> None:
    # From the fastest round: on a shared machine the mean measures the neighbours as much as the code.
    benchmark.extra_info["MB/s"] = round(len(STREAM) / benchmark.stats.stats.min / 1e6, 1)


@pytest.mark.benchmark(group="eventstream-decode")
def test_decode_rust(benchmark) -> None:
    assert benchmark(_rust) == N_MESSAGES
    _throughput(benchmark)


@pytest.mark.benchmark(group="eventstream-decode")
def test_decode_rust_message_objects(benchmark) -> None:
    assert benchmark(_rust_messages) == N_MESSAGES
    _throughput(benchmark)


@pytest.mark.benchmark(group="eventstream-decode")
def test_decode_python_reference(benchmark) -> None:
    assert benchmark(_python) == N_MESSAGES
    _throughput(benchmark)


SIGNER = SigV4Signer(
    Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token"), "eu-central-1", "bedrock"
)
BODY = json.dumps(
    {"messages": [{"role": "user", "content": [{"text": "Hello " * 100}]}], "inferenceConfig": {}}
).encode()


@pytest.mark.benchmark(group="sigv4")
def test_sigv4_sign(benchmark) -> None:
    path = "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    host = "bedrock-runtime.eu-central-1.amazonaws.com"
    headers = [("content-type", "application/json")]
    out = benchmark(lambda: SIGNER.sign("POST", host, path, "", headers, BODY))
    assert out["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
