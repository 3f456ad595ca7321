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

    def feed(self, raw: bytes) -> bytes:
        """Whole events in (what the StreamTap forwards), the same events with screened texts out."""
        # Per chunk: one Rust call and a flag check. Building the screen and judging findings fail closed;
        # feeding cannot fail (it takes bytes and never raises).
        screen = self.screen if self.screen is not None else self._start()
        out = screen.feed_chat(raw)
        if screen.has_findings:
            self.answer.check(screen)
        return out

    @fail_closed
    def finish(self) -> bytes:
        """The stream ended without [DONE]: release what is held back (masked)."""
        if self.screen is None:
            return b""
        out = self.screen.finish_chat()
        self.answer.check(self.screen)
        return out

    def _start(self) -> AnswerScreen:
        self.screen = self.answer.screen()
        return self.screen
