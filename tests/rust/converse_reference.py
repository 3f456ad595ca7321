"""The pure-Python ConverseStream → Anthropic Messages SSE translator: the cross-check and benchmark baseline for
`router._core.ConverseStreamTranslator`, which the Bedrock adapter uses.

Written the straightforward way (each event's payload decoded to a dict, each Messages event built as a dict and
encoded), as the adapter did before the translation moved to Rust.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.protocols.anthropic import sse_event
from router.providers.bedrock_converse import _FROM_CONVERSE_STOP, _usage

Json = dict[str, Any]


class StreamTranslator:
    """ConverseStream events (decoded event-stream messages) → Anthropic Messages SSE bytes.

    Converse opens text and reasoning blocks implicitly with their first delta (only tool uses get a
    `contentBlockStart`), and sends the stop reason (`messageStop`) before the usage (`metadata`): the
    `message_delta` that carries both goes out with `metadata`, then `message_stop`.
    """

    __slots__ = ("_kind", "_message_id", "_model", "_stop", "done")

    def __init__(self, model_id: str, message_id: str) -> None:
        self._model = model_id
        self._message_id = message_id
        self._kind: dict[int, str] = {}
        self._stop = "end_turn"
        self.done = False

    def _start(self, index: int, kind: str, block: Json) -> bytes:
        self._kind[index] = kind
        return sse_event("content_block_start", {"index": index, "content_block": block})

    def event(self, event_type: str | None, payload: bytes) -> bytes:
        body: Json = msgspec.json.decode(payload) if payload else {}
        if event_type == "contentBlockDelta":
            index = body.get("contentBlockIndex", 0)
            delta = body.get("delta") or {}
            out = b""
            if "text" in delta:
                if index not in self._kind:
                    out = self._start(index, "text", {"type": "text", "text": ""})
                return out + sse_event(
                    "content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": delta["text"]}}
                )
            if "toolUse" in delta:
                partial = (delta["toolUse"] or {}).get("input", "")
                return sse_event(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "input_json_delta", "partial_json": partial}},
                )
            if "reasoningContent" in delta:
                reasoning = delta["reasoningContent"] or {}
                if "redactedContent" in reasoning:
                    return self._start(
                        index, "redacted", {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
                    )
                if index not in self._kind:
                    out = self._start(index, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                if "text" in reasoning:
                    out += sse_event(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "thinking_delta", "thinking": reasoning["text"]}},
                    )
                if "signature" in reasoning:
                    out += sse_event(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "signature_delta", "signature": reasoning["signature"]}},
                    )
                return out
            return b""
        if event_type == "contentBlockStart":
            index = body.get("contentBlockIndex", 0)
            use = (body.get("start") or {}).get("toolUse")
            if use is not None:
                block = {"type": "tool_use", "id": use.get("toolUseId", ""), "name": use.get("name", ""), "input": {}}
                return self._start(index, "tool_use", block)
            return b""
        if event_type == "contentBlockStop":
            index = body.get("contentBlockIndex", 0)
            return sse_event("content_block_stop", {"index": index}) if index in self._kind else b""
        if event_type == "messageStart":
            message: Json = {
                "id": self._message_id,
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            return sse_event("message_start", {"message": message})
        if event_type == "messageStop":
            self._stop = _FROM_CONVERSE_STOP.get(body.get("stopReason") or "end_turn", "end_turn")
            return b""
        if event_type == "metadata":
            self.done = True
            usage = _usage(body.get("usage") or {})
            delta = {"delta": {"stop_reason": self._stop, "stop_sequence": None}, "usage": usage}
            return sse_event("message_delta", delta) + sse_event("message_stop", {})
        return b""  # events added after this was written

    @staticmethod
    def error(kind: str, message: str) -> bytes:
        return sse_event("error", {"error": {"type": kind, "message": message}})
