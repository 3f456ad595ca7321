"""Guardrails on the chat proxy's streamed answers: the proxy's StreamTap carries the answer's `AnswerScreen`,
so each choice's content, reasoning and tool-call argument deltas pass through Rust hold-back scanners in the
tap's own call per upstream read (a value split across chunks never reaches the client), and Python decodes
no JSON per chunk.

Each chunk goes out at once with the safe part of its texts, the rest of it byte for byte; held text is
released in an extra chunk that takes over its choice's `finish_reason`, or in a final chunk before `[DONE]`
(or at the end of a stream cut short).
"""

from __future__ import annotations

from .._core import Masker, StreamTap
from ..metrics import Metrics
from .answers import AnswerGuard
from .policy import Policy, fail_closed


class ChatStreamGuard:
    def __init__(self, policy: Policy, metrics: Metrics, request: Masker | None = None) -> None:
        """`request`: the request's masker when placeholders are restored (numbering continues from it)."""
        self.answer = AnswerGuard(policy, metrics, request)

    @fail_closed
    def tap(self, strip_usage_chunk: bool = False) -> StreamTap:
        """The stream tap for one attempt's answer, screening what it forwards."""
        return StreamTap(strip_usage_chunk, screen=self.answer.screen())

    def check(self, tap: StreamTap) -> None:
        """Count what the tap's screen found since the last check; raise for a blocked category."""
        self.answer.check(tap)
