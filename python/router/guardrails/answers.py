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
from .policy import ANSWER_NOT_TEXT, WHOLE_TEXT, Policy, Restorer, fail_closed, map_tree


class _Findings(Protocol):
    @property
    def has_findings(self) -> bool: ...

    def take_found(self) -> list[tuple[str, str, int]]: ...


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
        return self.policy.answer_screen(self.request)

    @fail_closed
    def check(self, source: _Findings) -> None:
        """Count what a stream's scanners found since the last check; raise for a blocked category."""
        if source.has_findings:
            self.policy.verdict(source.take_found(), "response", self.metrics)

    @fail_closed
    def reply(self, reply: dict[str, Any], caller: str) -> bool:
        """Mask a whole answer in `caller`'s API in place (or raise for a blocked category); True if changed."""
        masker = self.request if self.request is not None else self.policy.masker()
        before = masker.found_count
        mask: Callable[[str], str] = masker.mask
        if self.request is not None:
            restore = Restorer(self.request)

            def mask(text: str) -> str:
                return restore(masker.mask(text))

        changed = False
        for field in {"chat": ("choices",), "messages": ("content",)}.get(caller, ("output", "output_text")):
            if field in reply:
                reply[field], c = map_tree(mask, reply[field], ANSWER_NOT_TEXT, WHOLE_TEXT)
                changed |= c
        self.policy.verdict(masker.tally(before), "response", self.metrics)
        return changed
