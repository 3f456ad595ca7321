"""Guardrails on the request path: every string a model reads, and every string it answers, is scanned.

Requests: chat message content (strings and text parts), tool-call arguments and tool results, tool
descriptions (including those inside parameter schemas); embeddings input strings. Image, audio and file
parts are not scanned (base64 payloads are not text a model reads as such). Responses: message content
and tool-call arguments of unary chat answers (streams: `chat_stream.ChatStreamGuard`).

Values in a `mask` category become placeholders numbered across the whole request; a value in a `block`
category rejects it with 400 `guardrail_violation`, naming the category, never the value. If scanning
fails for any reason the request fails closed with 503 `guardrail_unavailable`: it is never forwarded
unscanned.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar

import msgspec

from .._core import Guardrails, Masker, StreamScanner
from ..errors import GatewayError, GuardrailUnavailable, GuardrailViolation
from ..metrics import Metrics
from .audit import Triggers
from .settings import GuardrailSettings

log = logging.getLogger("router.guardrails")

Direction = Literal["request", "response"]
P = ParamSpec("P")
R = TypeVar("R")


class Policy:
    """Settings compiled for the hot path: the engine, the categories it scans, and what blocks."""

    # Where this request's triggers go (audit events); None outside a request (CLI, benchmarks).
    triggers: Triggers | None = None

    def __init__(self, settings: GuardrailSettings, engine: Guardrails | None = None) -> None:
        self.settings = settings
        # Compiling an engine is slow; policies with the same custom patterns may share one.
        self.engine = engine or Guardrails([(p.name, p.pattern) for p in settings.custom])
        actions = settings.actions()
        self.categories = list(actions)
        self.blocking = frozenset(c for c, a in actions.items() if a == "block" and c != "custom")
        self.blocked_custom = settings.blocked_custom_types()
        self.requests = bool(actions) and settings.scan_requests
        self.responses = bool(actions) and settings.scan_responses
        # Restoring happens while the answer is scanned, so it needs both directions on.
        self.restore = settings.restore_placeholders and self.requests and self.responses

    def for_request(self, triggers: Triggers) -> Policy:
        """This policy, reporting what it finds to one request's audit trail: a shallow copy sharing the
        engine (built by hand: `copy.copy` costs seven times as much)."""
        bound = object.__new__(Policy)
        bound.__dict__.update(self.__dict__)
        bound.triggers = triggers
        return bound

    def action(self, category: str, kind: str) -> str:
        blocked = category in self.blocking or (category == "custom" and kind in self.blocked_custom)
        return "block" if blocked else "mask"

    def masker(self) -> Masker:
        return self.engine.masker(self.categories)

    def stream(self, request: Masker | None = None) -> StreamScanner:
        return self.engine.stream(self.categories, request)

    def verdict(self, found: list[tuple[str, str]], direction: Direction, metrics: Metrics) -> None:
        """Count what was found; raise if any of it is in a blocked category."""
        if not found:
            return
        by_type = Counter((category, kind, self.action(category, kind)) for category, kind in found)
        counts: Counter[tuple[str, str]] = Counter()
        for (category, _, action), n in by_type.items():
            counts[category, action] += n
        for (category, action), n in counts.items():
            metrics.count_guardrail(category, direction, action, n)
        if self.triggers is not None:
            self.triggers.report(direction, by_type)
        blocked = sorted({category for category, action in counts if action == "block"})
        if blocked:
            raise GuardrailViolation(
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


def _apply(fn: Callable[[str], str], holder: dict[str, Any], key: str) -> bool:
    value = holder.get(key)
    if not isinstance(value, str) or not value:
        return False
    new = fn(value)
    if new is value or new == value:
        return False
    holder[key] = new
    return True


def _mask(masker: Masker, holder: dict[str, Any], key: str) -> bool:
    return _apply(masker.mask, holder, key)


def map_message(fn: Callable[[str], str], message: dict[str, Any]) -> bool:
    """Apply `fn` to a chat message's strings in place (content, text parts, tool-call arguments, refusal)."""
    changed = _apply(fn, message, "content")
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            # Text parts of every flavour (text, input_text, output_text); images/audio/files carry no "text".
            if isinstance(part, dict):
                changed |= _apply(fn, part, "text")
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            changed |= _apply(fn, call["function"], "arguments")
    if isinstance(message.get("function_call"), dict):
        changed |= _apply(fn, message["function_call"], "arguments")
    changed |= _apply(fn, message, "refusal")
    return changed


class Restorer:
    """Puts a request's original values back where an answer echoes its placeholders."""

    def __init__(self, request: Masker) -> None:
        self.pairs = request.placeholders()
        self.found = len(request.found)

    def __call__(self, text: str) -> str:
        for placeholder, value in self.pairs:
            if placeholder in text:
                text = text.replace(placeholder, value)
        return text

    def mentioned_in(self, data: bytes) -> bool:
        return any(placeholder.encode() in data for placeholder, _ in self.pairs)


def _mask_descriptions(masker: Masker, node: Any) -> bool:
    """Every `description` string in a tool definition, parameter schemas included."""
    changed = False
    if isinstance(node, dict):
        changed |= _mask(masker, node, "description")
        for value in node.values():
            if isinstance(value, dict | list):
                changed |= _mask_descriptions(masker, value)
    elif isinstance(node, list):
        for value in node:
            changed |= _mask_descriptions(masker, value)
    return changed


_encoder = msgspec.json.Encoder()


# Typed views of the strings a model reads or writes: decoding into these is cheaper than into dicts, so a
# clean request or answer (the common case) is checked without building dicts and forwarded untouched.
class _Function(msgspec.Struct):
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None


class _Part(msgspec.Struct):
    text: str | None = None


class _Message(msgspec.Struct):
    content: str | list[_Part] | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _Message | None = None


class _Answer(msgspec.Struct):
    choices: list[_Choice] | None = None


_messages_decoder = msgspec.json.Decoder(list[_Message])
_answer_decoder = msgspec.json.Decoder(_Answer)


def _answer_messages(data: bytes) -> list[_Message]:
    return [c.message for c in _answer_decoder.decode(data).choices or () if c.message is not None]


def _texts(message: _Message) -> list[str]:
    out = [message.content] if isinstance(message.content, str) else [p.text for p in message.content or () if p.text]
    out += [c.function.arguments for c in message.tool_calls or () if c.function and c.function.arguments]
    if message.function_call and message.function_call.arguments:
        out.append(message.function_call.arguments)
    if message.refusal:
        out.append(message.refusal)
    return out


def _clean(policy: Policy, messages: list[_Message]) -> bool:
    """Nothing to mask or block in these messages (a shape we do not model counts as not clean)."""
    scan, categories = policy.engine.scan, policy.categories
    return not any(scan(text, categories) for m in messages for text in _texts(m) if text)


def _decodes_clean(policy: Policy, decode: Callable[[bytes], list[_Message]], raw: bytes) -> bool:
    try:
        return _clean(policy, decode(raw))
    except msgspec.ValidationError:
        return False


@fail_closed
def screen_chat_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> Masker | None:
    """Mask (or block) the strings of a chat request in place, before it is forwarded.

    Returns the request's masker when the answer should restore its placeholders (else None).
    """
    masker = policy.masker()
    replaced: dict[str, object] = {}
    if "messages" in fields and not _decodes_clean(policy, _messages_decoder.decode, fields["messages"]):
        messages = msgspec.json.decode(fields["messages"])
        changed = False
        for message in messages:
            if isinstance(message, dict):
                changed |= map_message(masker.mask, message)
        if changed:
            replaced["messages"] = messages
    if "tools" in fields:
        tools = msgspec.json.decode(fields["tools"])
        if _mask_descriptions(masker, tools):
            replaced["tools"] = tools
    policy.verdict(masker.found, "request", metrics)
    for name, value in replaced.items():
        fields[name] = msgspec.Raw(_encoder.encode(value))
    return masker if policy.restore and replaced else None


@fail_closed
def screen_embeddings_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> None:
    masker = policy.masker()
    value = msgspec.json.decode(fields["input"])
    holder = {"input": value}
    changed = _mask(masker, holder, "input")
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                masked = masker.mask(item)
                if masked is not item:
                    value[i] = masked
                    changed = True
    policy.verdict(masker.found, "request", metrics)
    if changed:
        fields["input"] = msgspec.Raw(_encoder.encode(holder["input"]))


# Keys whose string values are identifiers, formats or binary payloads, not text a model reads.
_NOT_TEXT = frozenset({
    "type", "role", "model", "id", "name", "tool_use_id", "call_id", "media_type", "signature", "data", "url",
    "image_url", "file_id", "file_data", "file_url", "status", "cache_control", "mock", "requesty", "format",
    "detail", "effort", "summary", "tool_choice", "stop_sequences", "stop", "user", "metadata",
})  # fmt: skip
# The top-level fields of an Anthropic Messages or OpenAI Responses request that carry text.
_TEXT_FIELDS = ("system", "messages", "instructions", "input", "tools")


def _mask_tree(masker: Masker, node: Any) -> Any:
    """Every string of a JSON tree masked, except values under `_NOT_TEXT` keys; returns the (new) node."""
    if isinstance(node, str):
        return masker.mask(node) if node else node
    if isinstance(node, list):
        return [_mask_tree(masker, item) for item in node]
    if isinstance(node, dict):
        return {k: v if k in _NOT_TEXT else _mask_tree(masker, v) for k, v in node.items()}
    return node


@fail_closed
def screen_request_fields(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> bool:
    """Anthropic Messages and OpenAI Responses requests: the system prompt or instructions, every message,
    input item and content block (text, tool inputs and arguments, tool results), and tool descriptions.
    Masks in place; True when anything changed."""
    masker = policy.masker()
    changed = False
    for name in _TEXT_FIELDS:
        raw = fields.get(name)
        if raw is None:
            continue
        value = msgspec.json.decode(raw)
        masked = _mask_tree(masker, value)
        if masked != value:
            fields[name] = msgspec.Raw(_encoder.encode(masked))
            changed = True
    policy.verdict(masker.found, "request", metrics)
    return changed


@fail_closed
def screen_chat_response(policy: Policy, metrics: Metrics, data: bytes, request: Masker | None = None) -> bytes:
    """A unary chat answer with its message content and tool-call arguments masked (or blocked).

    With `request` (placeholder restoring on), masking continues the request's numbering, and placeholders
    the request handed out are replaced by their original values.
    """
    restore = Restorer(request) if request is not None else None
    if (restore is None or not restore.mentioned_in(data)) and _decodes_clean(policy, _answer_messages, data):
        return data
    body = msgspec.json.decode(data)
    masker = request if request is not None else policy.masker()
    before = len(masker.found)
    changed = False
    for choice in body.get("choices") or () if isinstance(body, dict) else ():
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            changed |= map_message(masker.mask, choice["message"])
            if restore is not None:
                changed |= map_message(restore, choice["message"])
    policy.verdict(masker.found[before:], "response", metrics)
    return _encoder.encode(body) if changed else data
