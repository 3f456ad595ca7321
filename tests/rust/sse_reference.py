"""A small pure-Python WHATWG event-stream parser: the reference for tests and benchmarks of `router._core`.

Deliberately straightforward (it follows the spec's steps one by one); the only copy in the repository.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class RefEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class RefSseParser:
    """Same contract as `router._core.SseParser`: bytes in, events out."""

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False
        self._first = True
        self._data: list[str] = []
        self._event = ""
        self._retry: int | None = None
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[RefEvent]:
        if not chunk:
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buf = self._buf + chunk
        out: list[RefEvent] = []
        start = 0
        for m in _EOL.finditer(buf):
            self._line(buf[start : m.start()], out)
            start = m.end()
        if buf.endswith(b"\r"):
            self._skip_lf = True  # the CR ended its line; an LF opening the next chunk belongs to it
        self._buf = buf[start:]
        return out

    def finish(self) -> list[RefEvent]:
        self.__init__()  # type: ignore[misc]
        return []

    def _line(self, raw: bytes, out: list[RefEvent]) -> None:
        if self._first:
            self._first = False
            if raw.startswith(_BOM):
                raw = raw[3:]
        line = raw.decode("utf-8", "replace")
        if not line:
            retry, self._retry = self._retry, None
            if self._data:
                out.append(RefEvent("\n".join(self._data), self._event or None, self._last_id, retry))
            self._data = []
            self._event = ""
            return
        if line.startswith(":"):
            return
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value and all("0" <= ch <= "9" for ch in value):
            self._retry = int(value)


def _is_json(data: bytes) -> bool:
    """What a client such as the openai SDK can read: strict UTF-8, then standard JSON (no NaN/Infinity)."""

    def no_constant(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return False
    return True


def ref_tap(stream: bytes) -> tuple[bytes, bool, int]:
    """What `StreamTap` (without usage stripping) forwards of a whole stream: `(bytes, malformed, data_events)`.

    The stream up to the first data event, other than `[DONE]`, that is not JSON; then nothing.
    """
    data: list[bytes] = []
    event_start = pos = 0
    events = 0
    for m in _EOL.finditer(stream):
        line = stream[pos : m.start()]
        if pos == 0 and line.startswith(_BOM):
            line = line[3:]
        pos = m.end()
        if not line:
            if data:
                payload = b"\n".join(data)
                if not payload.startswith(b"[DONE]"):
                    if not _is_json(payload):
                        return stream[:event_start], True, events
                    events += 1
            data = []
            event_start = pos
            continue
        field, sep, value = line.partition(b":")
        if field == b"data":
            data.append(value[1:] if sep and value.startswith(b" ") else value)
    return stream, False, events


def openai_stream(n_chunks: int = 200, *, usage: bool = True, nl: str = "\n") -> bytes:
    """A realistic OpenAI `chat.completion.chunk` stream of `n_chunks` content deltas (plus role, stop, usage, DONE)."""
    head = (
        '{"id":"chatcmpl-9x7Yq2","object":"chat.completion.chunk","created":1732350000,'
        '"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_45c6de4934","choices":'
    )
    tail = ',"logprobs":null,"finish_reason":null}],"usage":null}'
    words = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", " été", " 😀"]
    events = [head + '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}' + tail]
    events += [head + '[{"index":0,"delta":{"content":"' + words[i % len(words)] + '"}' + tail for i in range(n_chunks)]
    events.append(head + '[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}')
    if usage:
        counts = f'"prompt_tokens":1200,"completion_tokens":{n_chunks},"total_tokens":{1200 + n_chunks}'
        events.append(head + '[],"usage":{' + counts + ',"prompt_tokens_details":{"cached_tokens":1024}}}')
    events.append("[DONE]")
    return "".join(f"data: {e}{nl}{nl}" for e in events).encode()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
