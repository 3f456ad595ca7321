"""Guardrails on answers in every API: what a model writes is masked (or blocked) before the client sees it.

Unary bodies are screened here: chat `choices[].message`, Anthropic Messages `content` blocks (text, thinking,
tool inputs) and Responses `output` items (message text, refusals, function-call arguments, reasoning
summaries) plus `output_text`, all with one placeholder numbering. Streams are screened in Rust by an
`AnswerScreen` (see `rust/src/transcode/screen.rs`), inside the Transcoder for Messages and Responses callers
and for translated chat streams, and on the chat proxy's chunks (`chat_stream.ChatStreamGuard`); Python only
turns its findings into metrics and, for a `block` category, an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._core import AnswerScreen, Masker
from ..metrics import Metrics
from .policy import Policy, Restorer, fail_closed, map_message

# Keys whose values are identifiers, formats, citations or opaque blobs, not text the model wrote.
_NOT_TEXT = frozenset({
    "type", "id", "role", "status", "name", "model", "object", "call_id", "signature", "encrypted_content",
    "data", "annotations", "logprobs", "stop_reason", "stop_sequence", "finish_reason", "usage",
})  # fmt: skip


class _Findings(Protocol):
    @property
    def has_findings(self) -> bool: ...

    def take_found(self) -> list[tuple[str, str]]: ...


def _map_tree(fn: Callable[[str], str], node: Any) -> tuple[Any, bool]:
    """Every string of a JSON tree through `fn`, except values under `_NOT_TEXT` keys."""
    if isinstance(node, str):
        new = fn(node) if node else node
        return new, new != node
    changed = False
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i], c = _map_tree(fn, item)
            changed |= c
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _NOT_TEXT:
                node[key], c = _map_tree(fn, value)
                changed |= c
    return node, changed


class AnswerGuard:
    """One request's guardrails on its answer.

    `request`: the request's masker when placeholders are restored (the answer continues its numbering and
    gets its values back where it echoes their placeholders)."""

    def __init__(self, policy: Policy, metrics: Metrics, request: Masker | None = None) -> None:
        self.policy = policy
        self.metrics = metrics
        self.request = request

    @fail_closed
    def screen(self) -> AnswerScreen:
        """The stream scanners for one attempt's answer (hand it to a Transcoder)."""
        return AnswerScreen(self.policy.engine, self.policy.categories, self.request, self.request is not None)

    @fail_closed
    def check(self, source: _Findings) -> None:
        """Count what a stream's scanners found since the last check; raise for a blocked category."""
        if source.has_findings:
            self.policy.verdict(source.take_found(), "response", self.metrics)

    @fail_closed
    def reply(self, reply: dict[str, Any], caller: str) -> bool:
        """Mask a whole answer in `caller`'s API in place (or raise for a blocked category); True if changed."""
        masker = self.request if self.request is not None else self.policy.masker()
        before = len(masker.found)
        mask: Callable[[str], str] = masker.mask
        if self.request is not None:
            restore = Restorer(self.request)

            def mask(text: str) -> str:
                return restore(masker.mask(text))

        changed = False
        if caller == "chat":
            for choice in reply.get("choices") or ():
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    changed |= map_message(mask, choice["message"])
        else:
            for field in ("content",) if caller == "messages" else ("output", "output_text"):
                if field in reply:
                    reply[field], c = _map_tree(mask, reply[field])
                    changed |= c
        self.policy.verdict(masker.found[before:], "response", self.metrics)
        return changed
