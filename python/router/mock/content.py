"""Deterministic reply text and token arithmetic shared by every wire format.

Token rules (documented for the usage numbers the mock reports):
- one canned word = one output token; streamed, each content chunk carries exactly one word;
- echo replies count one token per whitespace-separated word;
- prompt tokens = total characters of the request's message text // 4, at least 1;
- tool calls count one token per streamed argument fragment (see :func:`fragments`).
"""

from __future__ import annotations

import hashlib
import re

WORDS: tuple[str, ...] = (
    "The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "a", "mock",
    "provider", "streams", "deterministic", "tokens", "so", "that", "every", "gateway", "test", "sees",
    "exactly", "the", "same", "reply", "on", "each", "run", "and", "load", "tests",
)  # fmt: skip

_WORD_RE = re.compile(r"\s*\S+\s*")


def canned_tokens(n: int) -> tuple[str, ...]:
    """The first ``n`` tokens of the canned text; joined they read as one space-separated sentence."""
    count = len(WORDS)
    return tuple(WORDS[i % count] if i == 0 else " " + WORDS[i % count] for i in range(n))


def text_tokens(text: str) -> tuple[str, ...]:
    """Split text into word tokens whose concatenation is exactly ``text`` (whitespace kept)."""
    return tuple(_WORD_RE.findall(text)) if text.strip() else ()


def prompt_tokens(chars: int) -> int:
    return max(1, chars // 4)


def fragments(arguments: str) -> list[str]:
    """Split tool-call arguments into streamed fragments: about 8 characters each, at least 3 when possible.

    At least three so clients are exercised on real accumulation, not a single-piece "stream".
    """
    size = len(arguments)
    count = min(size, max(3, -(-size // 8)))
    if count <= 1:
        return [arguments]
    bounds = [size * i // count for i in range(count + 1)]
    return [arguments[bounds[i] : bounds[i + 1]] for i in range(count)]


# What a thinking/reasoning reply "thinks": fixed, so streamed and whole answers match token for token.
THINKING_TEXT = "The user wants a short answer, so I will reply with the canned sentence."


def thinking_signature(text: str) -> str:
    """A stable opaque signature for a thinking block (real providers sign theirs; clients must echo it back)."""
    return "mocksig_" + hashlib.sha256(text.encode()).hexdigest()[:32]
