"""Guardrails on the chat proxy's streamed answers: the proxy's StreamTap carries the answer's `AnswerScreen`,
so each choice's content, reasoning and tool-call argument deltas pass through Rust hold-back scanners in the
tap's own call per upstream read (a value split across chunks never reaches the client), and Python decodes
no JSON per chunk.

Each chunk goes out at once with the safe part of its texts, the rest of it byte for byte; held text is
released in an extra chunk that takes over its choice's `finish_reason`, or in a final chunk before `[DONE]`
(or at the end of a stream cut short).
"""

from __future__ import annotations

from .._core import StreamTap
from .answers import AnswerGuard


class ChatStreamGuard(AnswerGuard):
    """One request's guardrails on its chat proxy stream: `check(tap)` counts what the tap's screen found."""

    def tap(self, strip_usage_chunk: bool = False) -> StreamTap:
        """The stream tap for one attempt's answer, screening what it forwards (a failure to set up its
        scanners is `screen`'s, so fails closed)."""
        return StreamTap(strip_usage_chunk, screen=self.screen())
