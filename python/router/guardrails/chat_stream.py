"""Guardrails on the chat proxy's streamed answers: each choice's content, reasoning and tool-call argument
deltas pass through Rust hold-back scanners (an `AnswerScreen`), so a value split across chunks never reaches
the client, and Python decodes no JSON per chunk.

Each chunk goes out at once with the safe part of its texts, the rest of it byte for byte; held text is
released in an extra chunk that takes over its choice's `finish_reason`, or in a final chunk before `[DONE]`.
"""

from __future__ import annotations

from .._core import AnswerScreen, Masker
from ..metrics import Metrics
from .answers import AnswerGuard
from .policy import Policy, fail_closed


class ChatStreamGuard:
    def __init__(self, policy: Policy, metrics: Metrics, request: Masker | None = None) -> None:
        """`request`: the request's masker when placeholders are restored (numbering continues from it)."""
        self.answer = AnswerGuard(policy, metrics, request)
        self.screen: AnswerScreen | None = None

    @fail_closed
    def feed(self, raw: bytes) -> bytes:
        """Whole events in (what the StreamTap forwards), the same events with screened texts out."""
        if self.screen is None:
            self.screen = self.answer.screen()
        out = self.screen.feed_chat(raw)
        self.answer.check(self.screen)
        return out

    @fail_closed
    def finish(self) -> bytes:
        """The stream ended without [DONE]: release what is held back (masked)."""
        if self.screen is None:
            return b""
        out = self.screen.finish_chat()
        self.answer.check(self.screen)
        return out
