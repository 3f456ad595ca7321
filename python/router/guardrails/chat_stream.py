"""Guardrails on streamed chat answers: content and tool-call argument deltas pass through Rust
StreamScanners (one per choice and field), so a value split across chunks never reaches the client.

Each chunk is forwarded at once with the safe part of its delta; the held-back tail is released in a later
chunk, in the chunk that carries the choice's `finish_reason`, or in a final chunk before `[DONE]`.
Chunks without text are forwarded byte for byte.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._core import SseParser, StreamScanner
from ..metrics import Metrics
from .policy import Policy, fail_closed

CONTENT = -1  # the slot of a choice's content; tool calls use their index


def _event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


class ChatStreamGuard:
    def __init__(self, policy: Policy, metrics: Metrics) -> None:
        self.policy = policy
        self.metrics = metrics
        self.parser = SseParser()
        self.scanners: dict[tuple[int, int], StreamScanner] = {}
        self.counted: dict[tuple[int, int], int] = {}
        # The last chunk, the template of a final chunk that releases what is still held back.
        self.last: dict[str, Any] | None = None

    @fail_closed
    def feed(self, raw: bytes) -> bytes:
        """Whole events in (what the StreamTap forwards), the same events with masked deltas out."""
        out: list[bytes] = []
        for event in self.parser.feed(raw):
            if event.data == "[DONE]":
                out.append(self._release())
                out.append(_event(b"[DONE]"))
                continue
            chunk = msgspec.json.decode(event.data)
            if isinstance(chunk, dict) and self._screen(chunk):
                out.append(_event(msgspec.json.encode(chunk)))
            else:
                out.append(_event(event.data.encode()))
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
            scanner = self.scanners[choice, slot] = self.policy.stream()
        return scanner

    def _screen(self, chunk: dict[str, Any]) -> bool:
        changed = False
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
                continue
            index, delta = choice.get("index", 0), choice["delta"]
            content = delta.get("content")
            if isinstance(content, str) and content:
                delta["content"] = self._scanner(index, CONTENT).feed(content)
                changed = True
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                arguments = function.get("arguments") if isinstance(function, dict) else None
                if isinstance(arguments, str) and arguments:
                    function["arguments"] = self._scanner(index, call.get("index", 0)).feed(arguments)
                    changed = True
            if choice.get("finish_reason") is not None:
                changed |= self._release_into(index, delta)
        self.last = chunk
        return changed

    def _release_into(self, index: int, delta: dict[str, Any]) -> bool:
        changed = False
        for (choice, slot), scanner in self.scanners.items():
            if choice != index or not scanner.held:
                continue
            rest = scanner.finish()
            if slot == CONTENT:
                delta["content"] = (delta.get("content") or "") + rest
            else:
                delta.setdefault("tool_calls", []).append({"index": slot, "function": {"arguments": rest}})
            changed = True
        return changed

    def _release(self) -> bytes:
        held = sorted({choice for (choice, _), s in self.scanners.items() if s.held})
        if not held:
            return b""
        template = self.last or {}
        choices = []
        for index in held:
            delta: dict[str, Any] = {}
            self._release_into(index, delta)
            choices.append({"index": index, "delta": delta, "finish_reason": None})
        chunk = {k: template[k] for k in ("id", "object", "created", "model") if k in template}
        chunk["choices"] = choices
        return _event(msgspec.json.encode(chunk))

    def _verdict(self) -> None:
        found: list[tuple[str, str]] = []
        for key, scanner in self.scanners.items():
            seen = self.counted.get(key, 0)
            new = scanner.found[seen:]
            if new:
                found += new
                self.counted[key] = seen + len(new)
        self.policy.verdict(found, "response", self.metrics)
