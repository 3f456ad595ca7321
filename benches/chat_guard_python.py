"""The chat stream guard as it was before the per-chunk work moved into Rust: the baseline that
`test_guardrails_bench.py` measures `ChatStreamGuard` against (it decodes every chunk with msgspec in Python,
feeds Python-held StreamScanners, and re-encodes changed chunks). Kept only for that comparison."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from router._core import Masker, SseParser, StreamScanner
from router.guardrails.policy import Policy, Restorer, fail_closed
from router.metrics import Metrics

CONTENT = -1  # the slot of a choice's content; tool calls use their index


# What the guard reads of a chunk; decoding into these is much cheaper than into dicts, and a chunk whose
# text comes out of the scanners unchanged is forwarded as it came.
class _Function(msgspec.Struct):
    arguments: str | None = None


class _Call(msgspec.Struct):
    index: int = 0
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_Call] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None


class _Template(msgspec.Struct, omit_defaults=True):
    id: str | None = None
    object: str | None = None
    created: int | None = None
    model: str | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) is not None}


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_template_decoder = msgspec.json.Decoder(_Template)
# (choice position, call position or CONTENT, new text); a release appends held text to a finishing choice.
Edit = tuple[int, int, str]


def _event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


class PythonChatStreamGuard:
    def __init__(self, policy: Policy, metrics: Metrics, request: Masker | None = None) -> None:
        """`request`: the request's masker when placeholders are restored (numbering continues from it)."""
        self.policy = policy
        self.metrics = metrics
        self.request = request
        self.restore = Restorer(request) if request is not None else None
        self.parser = SseParser()
        self.scanners: dict[tuple[int, int], StreamScanner] = {}
        self.counted: dict[tuple[int, int], int] = {}
        # The last chunk's id, object, created and model: the template of a final chunk that releases
        # what is still held back.
        self.template: dict[str, Any] = {}

    @fail_closed
    def feed(self, raw: bytes) -> bytes:
        """Whole events in (what the StreamTap forwards), the same events with masked deltas out."""
        out: list[bytes] = []
        for event in self.parser.feed(raw):
            data = event.data.encode()
            if data == b"[DONE]":
                out.append(self._release())
                out.append(_event(b"[DONE]"))
                continue
            chunk = _chunk_decoder.decode(data)
            if not self.template:
                self.template = _template_decoder.decode(data).fields()
            edits, releases = self._screen(chunk)
            if edits or releases:
                data = self._rewrite(data, edits, releases)
            out.append(_event(data))
        self._verdict()
        return b"".join(out)

    @fail_closed
    def finish(self) -> bytes:
        """The stream ended without [DONE]: release what is held back (masked)."""
        out = self._release()
        self._verdict()
        return out

    def _scanner(self, choice: int, slot: int) -> StreamScanner:
        scanner = self.scanners.get((choice, slot))
        if scanner is None:
            scanner = self.scanners[choice, slot] = self.policy.stream(self.request)
            # The scanner starts with the request's findings, already counted on the way in.
            self.counted[choice, slot] = self.restore.found if self.restore is not None else 0
        return scanner

    def _screen(self, chunk: _Chunk) -> tuple[list[Edit], list[tuple[int, int]]]:
        """Feed the chunk's text to the scanners: the texts that changed, and the choices that finish."""
        edits: list[Edit] = []
        releases: list[tuple[int, int]] = []
        for pos, choice in enumerate(chunk.choices or ()):
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                safe = self._out(self._scanner(choice.index, CONTENT).feed(delta.content))
                if safe != delta.content:
                    edits.append((pos, CONTENT, safe))
            for call_pos, call in enumerate(delta.tool_calls or ()):
                if call.function is not None and call.function.arguments:
                    safe = self._out(self._scanner(choice.index, call.index).feed(call.function.arguments))
                    if safe != call.function.arguments:
                        edits.append((pos, call_pos, safe))
            if choice.finish_reason is not None and any(
                s.held for (c, _), s in self.scanners.items() if c == choice.index
            ):
                releases.append((pos, choice.index))
        return edits, releases

    def _out(self, text: str) -> str:
        # Scanner output ends at whitespace (or the end), so an echoed placeholder is never cut in two.
        return self.restore(text) if self.restore is not None and text else text

    def _rewrite(self, data: bytes, edits: list[Edit], releases: list[tuple[int, int]]) -> bytes:
        chunk = msgspec.json.decode(data)
        choices = chunk["choices"]
        for pos, slot, text in edits:
            delta = choices[pos]["delta"]
            if slot == CONTENT:
                delta["content"] = text
            else:
                delta["tool_calls"][slot]["function"]["arguments"] = text
        for pos, index in releases:
            self._release_into(index, choices[pos]["delta"])
        return msgspec.json.encode(chunk)

    def _release_into(self, index: int, delta: dict[str, Any]) -> None:
        for (choice, slot), scanner in self.scanners.items():
            if choice != index or not scanner.held:
                continue
            rest = self._out(scanner.finish())
            if slot == CONTENT:
                delta["content"] = (delta.get("content") or "") + rest
            else:
                delta.setdefault("tool_calls", []).append({"index": slot, "function": {"arguments": rest}})

    def _release(self) -> bytes:
        held = sorted({choice for (choice, _), s in self.scanners.items() if s.held})
        if not held:
            return b""
        choices = []
        for index in held:
            delta: dict[str, Any] = {}
            self._release_into(index, delta)
            choices.append({"index": index, "delta": delta, "finish_reason": None})
        return _event(msgspec.json.encode({**self.template, "choices": choices}))

    def _verdict(self) -> None:
        found: list[tuple[str, str]] = []
        for key, scanner in self.scanners.items():
            seen = self.counted.get(key, 0)
            new = scanner.found[seen:]
            if new:
                found += new
                self.counted[key] = seen + len(new)
        self.policy.verdict([(c, k, n) for (c, k), n in Counter(found).items()], "response", self.metrics)
