"""Guardrails on the request path: every string a model reads, and every string it answers, is scanned.

Requests: every string of the fields that carry text (`CHAT_FIELDS`, `MESSAGES_RESPONSES_FIELDS`,
`EMBEDDINGS_FIELDS`) except the values of keys that hold identifiers, formats, schema structure or binary
payloads (`REQUEST_NOT_TEXT`): message content and text parts, tool-call arguments, tool results, tool and
parameter descriptions, predicted outputs, structured-output schemas, prompt variables. Image, audio and
file payloads are not scanned (base64 is not text a model reads as such); a plain-text document's `data`
is. Unary chat answers likewise, minus
`ANSWER_NOT_TEXT` (other APIs' answers: `answers.AnswerGuard`; streams: `chat_stream.ChatStreamGuard` and
the transcoder's `AnswerScreen`). The strings are found and masked where they lie by one Rust walk over the
JSON (`Masker.mask_json`); nothing is decoded in Python unless the walk gives up.

Values in a `mask` category become placeholders numbered across the whole request; a value in a `block`
category rejects it with 400 `guardrail_violation`, naming the category, never the value. If scanning
fails for any reason the request fails closed with 503 `guardrail_unavailable`: it is never forwarded
unscanned.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import msgspec

from .._core import Actions, AnswerScreen, DocumentScreen, Guardrails, Masker, SkipKeys, StreamScanner
from ..errors import GatewayError, GuardrailUnavailable, GuardrailViolation
from ..metrics import Metrics
from ..protocols.validation import invalid_json
from .audit import Triggers
from .settings import GuardrailSettings

log = logging.getLogger("router.guardrails")

Direction = Literal["request", "response"]
P = ParamSpec("P")
R = TypeVar("R")


class Policy:
    """Settings compiled for the hot path: the engine, the categories it scans, and what blocks."""

    # Where this request's triggers are counted (its usage row's audit events); None outside a request (CLI,
    # benchmarks).
    triggers: Triggers | None = None

    def __init__(self, settings: GuardrailSettings, engine: Guardrails | None = None) -> None:
        self.settings = settings
        # Compiling an engine is slow; policies with the same custom patterns may share one.
        self.engine = engine or Guardrails([(p.name, p.pattern) for p in settings.custom])
        actions = settings.actions()
        self.categories = list(actions)
        self.blocking = frozenset(c for c, a in actions.items() if a == "block" and c != "custom")
        self.blocked_custom = settings.blocked_custom_types()
        self._actions = Actions(sorted(self.blocking), sorted(self.blocked_custom))
        self.requests = bool(actions) and settings.scan_requests
        self.responses = bool(actions) and settings.scan_responses
        # Restoring happens while the answer is scanned, so it needs both directions on.
        self.restore = settings.restore_placeholders and self.requests and self.responses
        # Each request's masker is a fresh copy of this one (no category list to convert per request).
        self._blank = self.engine.masker(self.categories)
        # Unary requests and answers: masked, counted and judged in one call each.
        self.documents = DocumentScreen(self._blank, self._actions, _REQUEST_SKIP, _ANSWER_SKIP, msgspec.Raw)

    def for_request(self, triggers: Triggers) -> Policy:
        """This policy, reporting what it finds to one request's audit trail: a shallow copy sharing the
        engine (built by hand, assigning a copy of the attribute dict: `copy.copy` costs seven times as much,
        updating the new dict twice as much)."""
        bound = object.__new__(Policy)
        bound.__dict__ = self.__dict__.copy()
        bound.triggers = triggers
        return bound

    def action(self, category: str, kind: str) -> str:
        return self._actions.action(category, kind)

    def masker(self) -> Masker:
        return self._blank.fresh()

    def answer_screen(self, request: Masker | None = None) -> AnswerScreen:
        """The stream scanners of one answer; `request`: the request's masker, to continue its numbering and
        restore its values where the answer echoes their placeholders."""
        return AnswerScreen.like(self._blank, request, request is not None)

    def stream(self, request: Masker | None = None) -> StreamScanner:
        return self.engine.stream(self.categories, request)

    def verdict(self, tally: list[tuple[str, str, int]], direction: Direction, metrics: Metrics) -> None:
        """Count what was found, (category, type, count) per type, in the metrics and the request's triggers;
        raise if any of it is in a blocked category."""
        blocked = self._actions.record(tally, direction, metrics.guardrail_findings, self.triggers)
        if blocked:
            raise violation(blocked, direction)


def violation(blocked: list[str], direction: Direction) -> GuardrailViolation:
    """The 400 for a request or answer holding data of the `blocked` categories (named, never the values)."""
    return GuardrailViolation(
        f"The {direction} contains {', '.join(blocked)} data, which this organisation's guardrails block.",
        code="guardrail_violation",
    )


def fail_closed(fn: Callable[P, R]) -> Callable[P, R]:
    """Any failure while scanning becomes 503 guardrail_unavailable (logged by type only: no values)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (GatewayError, KeyboardInterrupt, SystemExit):
            raise
        # BaseException: a panic in the Rust scanner arrives as pyo3's PanicException, which is not an Exception.
        except BaseException as exc:
            log.error("guardrail scan failed in %s: %s", fn.__name__, type(exc).__name__)
            raise GuardrailUnavailable(
                "The guardrail scanner failed, so the request was not processed. Retry later.",
                code="guardrail_unavailable",
            ) from None

    return wrapper


def map_tree(
    fn: Callable[[str], str], node: Any, skip: frozenset[str], whole: frozenset[str] = frozenset(), mode: str = "text"
) -> tuple[Any, bool]:
    """Every text string of a JSON tree through `fn` (in place), read as `Masker.mask_json` reads it: not the
    strings under `skip` keys (directly or in an array), but objects under them key by key, and everything
    under `whole` keys."""
    if isinstance(node, str):
        new = fn(node) if node and mode != "skip" else node
        return new, new != node
    changed = False
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i], c = map_tree(fn, item, skip, whole, mode)
            changed |= c
    elif isinstance(node, dict):
        # A plain-text document source keeps text in `data` (every other source keeps base64 there).
        plain = str(node.get("media_type", "")).startswith("text/")
        for key, value in node.items():
            inner = "whole" if mode == "whole" or key in whole else "skip" if key in skip else "text"
            if inner == "skip" and plain and key == "data":
                inner = "text"
            node[key], c = map_tree(fn, value, skip, whole, inner)
            changed |= c
    return node, changed


class Restorer:
    """Puts a request's original values back where an answer echoes its placeholders."""

    def __init__(self, request: Masker) -> None:
        self.pairs = request.placeholders()
        self.found = request.found_count

    def __call__(self, text: str) -> str:
        for placeholder, value in self.pairs:
            if placeholder in text:
                text = text.replace(placeholder, value)
        return text

    def mentioned_in(self, data: bytes) -> bool:
        return any(placeholder.encode() in data for placeholder, _ in self.pairs)


# Keys whose string values are identifiers, formats, schema structure or binary payloads, not text a model
# reads: every other string of a request's text fields is scanned (message content and parts, tool calls'
# arguments, tool results, tool and parameter descriptions, system prompts, instructions).
REQUEST_NOT_TEXT = frozenset({
    "type", "role", "model", "id", "name", "tool_use_id", "tool_call_id", "call_id", "media_type", "signature",
    "encrypted_content", "data", "url", "image_url", "file_id", "file_data", "file_url", "status", "cache_control",
    "mock", "requesty", "format", "detail", "effort", "summary", "tool_choice", "stop_sequences", "stop", "user",
    "metadata", "required", "pattern", "$ref", "$schema",
})  # fmt: skip
# The same in an answer: identifiers, finish reasons, citations, token logprobs and usage are not prose.
ANSWER_NOT_TEXT = frozenset({
    "type", "id", "role", "status", "name", "model", "object", "call_id", "signature", "encrypted_content",
    "data", "annotations", "logprobs", "stop_reason", "stop_sequence", "finish_reason", "usage", "created",
    "system_fingerprint", "service_tier",
})  # fmt: skip
# Under these every string is text, whatever its key: a tool call's input carries the caller's own field names.
WHOLE_TEXT = frozenset({"input"})
_REQUEST_SKIP = SkipKeys(sorted(REQUEST_NOT_TEXT), sorted(WHOLE_TEXT))
_ANSWER_SKIP = SkipKeys(sorted(ANSWER_NOT_TEXT), sorted(WHOLE_TEXT))

# The top-level request fields that carry text a model reads, per API (docs/guardrails-coverage.md lists
# them, and the fields left out with the reason). Chat: the messages, tool and legacy function definitions,
# the predicted output, the structured-output schema and the web search location.
CHAT_FIELDS = ("messages", "tools", "functions", "prediction", "response_format", "web_search_options")
# Anthropic Messages: the system prompt, messages, tools and the structured-output schema (`output_format`,
# and its newer home `output_config`); OpenAI Responses: instructions, input, tools, the text format's
# schema and a reusable prompt's variables. One tuple serves both: each API's fields are absent in the other.
MESSAGES_RESPONSES_FIELDS = (
    "system", "messages", "tools", "output_format", "output_config", "instructions", "input", "text", "prompt",
)  # fmt: skip
# Embeddings: the strings of `input` (token-id arrays are numbers: nothing to read).
EMBEDDINGS_FIELDS = ("input",)
# Image generation: the prompt.
IMAGES_FIELDS = ("prompt",)

_encoder = msgspec.json.Encoder()


def _mask_decoded(masker: Masker, raw: bytes | msgspec.Raw, not_text: frozenset[str]) -> bytes | None:
    """`raw` with its text masked, or None if there was nothing to mask: decoded and walked here, for a
    document the Rust walk does not handle (a key written with escapes, very deep nesting), with the same
    keys (`not_text`: the set the walk's `SkipKeys` were built from), more slowly but never less
    thoroughly."""
    try:
        tree = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        # The body passed `check_json` (UTF-8, nesting): what is left is an escape no text can hold, such as a
        # lone surrogate. The client's error, not the scanner's.
        raise invalid_json(exc, "A text field of the request") from None
    tree, changed = map_tree(masker.mask, tree, not_text, WHOLE_TEXT)
    return _encoder.encode(tree) if changed else None


def _screen(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw], names: tuple[str, ...]) -> Masker | None:
    """Mask (or block) the text of `fields[names]` in place: the masker, recording what it found, if it
    found anything (else None)."""
    try:
        masker, blocked = policy.documents.request(fields, names, metrics.guardrail_findings, policy.triggers)
    except ValueError:
        return _screen_decoded(policy, metrics, fields, names)
    if blocked:
        raise violation(blocked, "request")
    return masker


def _screen_decoded(
    policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw], names: tuple[str, ...]
) -> Masker | None:
    """`_screen` for a request with a field the Rust walk does not handle: that field is decoded."""
    masker = policy.masker()
    changed = False
    for name in names:
        raw = fields.get(name)
        if raw is not None:
            try:
                masked = masker.mask_json(raw, _REQUEST_SKIP)
            except ValueError:
                masked = _mask_decoded(masker, raw, REQUEST_NOT_TEXT)
            if masked is not None:
                fields[name] = msgspec.Raw(masked)
                changed = True
    # Every value found is replaced by a placeholder: nothing changed, nothing was found.
    if not changed:
        return None
    policy.verdict(masker.tally(), "request", metrics)
    return masker


@fail_closed
def screen_chat_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> Masker | None:
    """Mask (or block) the strings of a chat request in place, before it is forwarded.

    Returns the request's masker when the answer should restore its placeholders (else None)."""
    masker = _screen(policy, metrics, fields, CHAT_FIELDS)
    return masker if policy.restore else None


@fail_closed
def screen_request_fields(
    policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]
) -> tuple[bool, Masker | None]:
    """Anthropic Messages and OpenAI Responses requests: the system prompt or instructions, every message,
    input item and content block (text, tool inputs and arguments, tool results), and tool descriptions.

    Masks in place; returns whether anything changed, and the masker when the answer should restore its
    placeholders (else None)."""
    masker = _screen(policy, metrics, fields, MESSAGES_RESPONSES_FIELDS)
    return masker is not None, masker if policy.restore else None


@fail_closed
def screen_embeddings_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> None:
    _screen(policy, metrics, fields, EMBEDDINGS_FIELDS)


@fail_closed
def screen_images_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> None:
    """`POST /v1/images/generations`: the prompt is masked (or blocked) before any model sees it."""
    _screen(policy, metrics, fields, IMAGES_FIELDS)


@fail_closed
def screen_chat_response(policy: Policy, metrics: Metrics, data: bytes, request: Masker | None = None) -> bytes:
    """A unary chat answer with the text its model wrote masked (or blocked).

    With `request` (placeholder restoring on), masking continues the request's numbering, and placeholders
    the request handed out are replaced by their original values.
    """
    if request is not None:
        restore = Restorer(request)
        if restore.mentioned_in(data):
            return _restored(policy, metrics, data, request, restore)
    # Nothing to put back: the Rust walk masks the answer (continuing the request's numbering, if any).
    try:
        masked, blocked = policy.documents.answer(data, metrics.guardrail_findings, policy.triggers, request)
    except ValueError:
        masker = request if request is not None else policy.masker()
        before = masker.found_count
        masked = _mask_decoded(masker, data, ANSWER_NOT_TEXT)
        if masked is not None:
            policy.verdict(masker.tally(before), "response", metrics)
        return data if masked is None else masked
    if blocked:
        raise violation(blocked, "response")
    return data if masked is None else masked


def _restored(policy: Policy, metrics: Metrics, data: bytes, request: Masker, restore: Restorer) -> bytes:
    """An answer that echoes the request's placeholders: decoded, masked, and given the values back."""
    before = request.found_count

    def mask(text: str) -> str:
        return restore(request.mask(text))

    body, changed = map_tree(mask, msgspec.json.decode(data), ANSWER_NOT_TEXT, WHOLE_TEXT)
    policy.verdict(request.tally(before), "response", metrics)
    return _encoder.encode(body) if changed else data
