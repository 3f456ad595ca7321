"""The mock provider's RSGI application: routing, knob resolution, request recording and fault injection.

Wire formats live in their own modules and only build bytes; everything a fault does to the transport (hang,
drop, malformed, error statuses, pacing) happens here so every format gets the same behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from granian.rsgi import ProtocolClosed, ProtocolError

from . import anthropic_messages as messages
from . import azure, bedrock, gemini, vertex
from . import openai_chat as chat
from . import openai_embeddings as embeddings
from . import openai_images as images
from . import openai_responses as responses
from .catalog import find_model, model_body, model_list_body
from .content import canned_tokens, prompt_tokens
from .errors import ANTHROPIC_FAULT_RESPONSES, FAULT_RESPONSES, anthropic_error, openai_error
from .faults import abort_connection
from .knobs import KnobError, Knobs, Resolved, from_env, from_headers, resolve, split_model
from .recorder import Recorder

JSON_HEADERS = [("content-type", "application/json")]
SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
MALFORMED_EVENT = b"data: {not json\n\n"
# Time for granian to write what was sent before the socket is shut down under it.
DROP_FLUSH_SECONDS = 0.05
# Bounds for caches keyed by client-chosen model names, so arbitrary names cannot grow memory forever.
MAX_CACHED = 4096

_PARAM_RE = re.compile(r"`\$\.([A-Za-z_][\w]*)|required field `(\w+)`")

Handler = Callable[[Any, Any], Awaitable[None]]
# Native provider APIs by first path segment, each served by its own module (other /v1/ paths: not found).
_NATIVE: dict[str, Callable[[Any, Any, Any], Awaitable[None]]] = {
    "model": bedrock.handle,
    "v1beta": gemini.handle,
    "v1": vertex.handle,
    "oauth2": vertex.token,
    "openai": azure.handle,
    "entra": azure.token,
    "metadata": azure.managed_identity,
    "msi": azure.managed_identity,
}


def _param_of(exc: Exception) -> str | None:
    match = _PARAM_RE.search(str(exc))
    return (match.group(1) or match.group(2)) if match else None


def _error(proto: Any, status: int, message: str, type: str = "invalid_request_error", **kw: str | None) -> None:
    proto.response_bytes(status, JSON_HEADERS, openai_error(message, type=type, **kw))


class MockApp:
    """One instance per granian worker; all mutable state (request log, caches, fail-rate credit) lives here."""

    def __init__(self, defaults: Knobs | None = None, record_capacity: int = 1000) -> None:
        self.defaults = defaults or Knobs()
        self.recorder = Recorder(record_capacity)
        self._default_knobs = resolve([self.defaults])
        self._fail_credit = 0.0
        # Requests seen per model name, for ``fail_first``.
        self._fail_first_seen: dict[str, int] = {}
        self._ids = itertools.count(1)
        # The pid keeps ids unique across workers without any coordination.
        self._id_prefix = f"mock{os.getpid():x}x"
        self._templates: dict[tuple[str, int, str], chat.CompletionTemplate] = {}
        self._models: dict[str, tuple[str, Knobs | None]] = {}
        self._model_list = model_list_body()
        self._routes: dict[str, tuple[str, Handler]] = {
            "/v1/chat/completions": ("POST", self._chat),
            "/v1/embeddings": ("POST", self._embeddings),
            "/v1/images/generations": ("POST", self._images),
            "/v1/messages": ("POST", self._messages),
            "/v1/responses": ("POST", self._responses),
            "/v1/models": ("GET", self._list_models),
            "/_mock/health": ("GET", self._health),
            "/_mock/requests": ("GET", self._requests),
            "/_mock/reset": ("POST", self._reset),
        }

    # --- RSGI entry point ---

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        path = scope.path
        route = self._routes.get(path)
        if route is None:
            if path.startswith("/v1/models/") and scope.method == "GET":
                return self._get_model(scope, proto)
            native = _NATIVE.get(path.split("/", 2)[1])
            if native is not None:  # Bedrock, Gemini, Vertex, Azure: mock/<name>.py
                with contextlib.suppress(ProtocolClosed, ProtocolError):
                    await native(self, scope, proto)
                return None
            return self._not_found(scope, proto)
        method, handler = route
        if scope.method != method:
            message = f"Method {scope.method} not allowed on {path}; use {method}."
            return _error(proto, 405, message, code="method_not_allowed")
        # A client that goes away mid-response makes sends raise; there is nobody left to tell.
        with contextlib.suppress(ProtocolClosed, ProtocolError):
            await handler(scope, proto)

    # --- shared request plumbing ---

    def _record(self, scope: Any, model: str | None = None, stream: bool = False, body: bytes = b"") -> None:
        self.recorder.record(scope.method, scope.path, scope.headers.items(), model, stream, body)

    def _resolve(self, headers: Any, body_knobs: Knobs | None, model: str) -> tuple[str, Resolved]:
        """The model name without ``@`` knobs, and the merged knobs (header > body > model name > process)."""
        header_knobs = from_headers(headers)
        cached = self._models.get(model)
        if cached is None:
            cached = split_model(model)
            if len(self._models) >= MAX_CACHED:
                self._models.clear()
            self._models[model] = cached
        base, model_knobs = cached
        if header_knobs is None and body_knobs is None and model_knobs is None:
            return base, self._default_knobs
        return base, resolve((header_knobs, body_knobs, model_knobs, self.defaults))

    def _failure(self, knobs: Resolved, model: str) -> str:
        """The fault this request gets ("none" if spared), spreading ``fail_rate`` exactly and reproducibly.

        A credit accumulator rather than random(): rate 0.25 fails precisely every 4th request, which keeps
        tests and load-test error budgets deterministic. ``fail_first`` counts per model name instead, so
        "fail twice, then answer" scenarios do not depend on other traffic.
        """
        if knobs.fail_first is not None:
            seen = self._fail_first_seen.get(model, 0)
            if len(self._fail_first_seen) >= MAX_CACHED:
                self._fail_first_seen.clear()
            self._fail_first_seen[model] = seen + 1
            return knobs.fail if seen < knobs.fail_first else "none"
        if knobs.fail == "none" or knobs.fail_rate >= 1.0:
            return knobs.fail
        self._fail_credit += knobs.fail_rate
        if self._fail_credit >= 1.0 - 1e-9:  # tolerance: ten additions of 0.1 must reach 1
            self._fail_credit -= 1.0
            return knobs.fail
        return "none"

    async def _before_reply(
        self, proto: Any, knobs: Resolved, fail: str, faults: Mapping[str, tuple[int, bytes]] = FAULT_RESPONSES
    ) -> bool:
        """Hang, time-to-first-byte and HTTP error faults (bodies in the endpoint's API shape); True when handled."""
        if fail == "hang":
            await proto.client_disconnect()
            return True
        if knobs.ttft_ms:
            await asyncio.sleep(knobs.ttft_ms / 1000)
        fault = faults.get(fail)
        if fault is not None:
            status, body = fault
            headers = [*JSON_HEADERS, ("retry-after", str(knobs.retry_after))] if status == 429 else JSON_HEADERS
            proto.response_bytes(status, headers, body)
            return True
        return False

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._id_prefix}{next(self._ids)}"

    @staticmethod
    async def _send_json(scope: Any, proto: Any, body: bytes, fail: str) -> None:
        if fail == "drop":
            # Without a socket to cut, returning without a response is the nearest RSGI allows (granian sends 500).
            abort_connection(scope.client)
            return
        if fail == "malformed":
            body = body[: len(body) // 2]
        proto.response_bytes(200, JSON_HEADERS, body)

    @staticmethod
    async def _send_stream(
        scope: Any,
        proto: Any,
        events: chat.StreamEvents,
        knobs: Resolved,
        fail: str,
        headers: list[tuple[str, str]] = SSE_HEADERS,
    ) -> None:
        tokens, tail = events.tokens, events.tail
        if fail == "malformed":
            middle = len(tokens) // 2
            tokens = [*tokens[:middle], MALFORMED_EVENT, *tokens[middle:]]
        head = events.head
        if fail == "drop":
            # ``drop_after`` counts the role chunk too: 0 cuts the stream before its first byte.
            head = head if knobs.drop_after else b""
            tokens, tail = tokens[: max(knobs.drop_after - 1, 0)], b""
        transport = proto.response_stream(200, headers)
        delay = knobs.token_delay_ms / 1000
        if delay:
            await transport.send_bytes(head)
            for event in tokens:
                await asyncio.sleep(delay)
                await transport.send_bytes(event)
            if tail:
                await transport.send_bytes(tail)
        else:
            # Unpaced: one write instead of one per chunk keeps the mock cheap in load tests.
            await transport.send_bytes(head + b"".join(tokens) + tail)
        if fail == "drop":
            await asyncio.sleep(DROP_FLUSH_SECONDS)
            # If the socket cannot be found the stream still ends without a finish chunk or [DONE].
            abort_connection(scope.client)

    async def _counted_stream(
        self,
        scope: Any,
        proto: Any,
        events: chat.StreamEvents,
        knobs: Resolved,
        fail: str,
        headers: list[tuple[str, str]] = SSE_HEADERS,
    ) -> None:
        # Tests prove a gateway cancels upstream streams by watching these two numbers.
        self.recorder.streams_active += 1
        finished = False
        try:
            await self._send_stream(scope, proto, events, knobs, fail, headers)
            finished = True
        finally:
            self.recorder.streams_active -= 1
            if not finished:
                self.recorder.streams_aborted += 1

    def _bad_body(self, scope: Any, proto: Any, exc: Exception, body: bytes, anthropic: bool = False) -> None:
        self._record(scope, body=body)
        if isinstance(exc, msgspec.ValidationError):
            message = f"Invalid request body: {exc}"
        else:
            message = f"We could not parse the JSON body of your request: {exc}"
        if anthropic:
            proto.response_bytes(400, JSON_HEADERS, anthropic_error(message))
        elif isinstance(exc, msgspec.ValidationError):
            _error(proto, 400, message, param=_param_of(exc))
        else:
            _error(proto, 400, message)

    # --- /v1 endpoints ---

    async def _chat(self, scope: Any, proto: Any) -> None:
        body = await proto()
        try:
            request = chat.REQUEST_DECODER.decode(body)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            return self._bad_body(scope, proto, exc, body)
        self._record(scope, request.model, bool(request.stream), body)
        try:
            model, knobs = self._resolve(scope.headers, request.mock, request.model)
        except KnobError as exc:
            return _error(proto, 400, str(exc), param=exc.param)
        fail = self._failure(knobs, request.model)
        if await self._before_reply(proto, knobs, fail):
            return
        prompt = prompt_tokens(chat.prompt_chars(request.messages))
        created = int(time.time())
        response_id = self._new_id("chatcmpl-")
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            plan = chat.plan_reply(request, knobs)
            events = chat.stream_events(plan, response_id, created, model, prompt, include_usage)
            return await self._counted_stream(scope, proto, events, knobs, fail)
        template = self._template(request, model, knobs)
        if knobs.token_delay_ms:
            await asyncio.sleep(knobs.token_delay_ms * template.completion_tokens / 1000)
        await self._send_json(scope, proto, template.render(response_id.encode(), created, prompt), fail)

    def _template(self, request: chat.ChatRequest, model: str, knobs: Resolved) -> chat.CompletionTemplate:
        if (
            knobs.echo
            or request.reasoning_effort is not None
            or (request.tools and chat.selected_tools(request, knobs.tool_calls))
        ):
            return chat.CompletionTemplate(model, chat.plan_reply(request, knobs))
        count, finish = chat.token_limit(request, knobs.tokens)
        key = (model, count, finish)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= MAX_CACHED:
                self._templates.clear()
            plan = chat.ReplyPlan(tokens=canned_tokens(count), tool_calls=(), finish_reason=finish)
            template = self._templates[key] = chat.CompletionTemplate(model, plan)
        return template

    async def _messages(self, scope: Any, proto: Any) -> None:
        body = await proto()
        try:
            request = messages.REQUEST_DECODER.decode(body)
        except msgspec.DecodeError as exc:
            return self._bad_body(scope, proto, exc, body, anthropic=True)
        self._record(scope, request.model, bool(request.stream), body)
        try:
            model, knobs = self._resolve(scope.headers, request.mock, request.model)
        except KnobError as exc:
            return proto.response_bytes(400, JSON_HEADERS, anthropic_error(str(exc)))
        fail = self._failure(knobs, request.model)
        if await self._before_reply(proto, knobs, fail, ANTHROPIC_FAULT_RESPONSES):
            return None
        plan = messages.plan_reply(request, knobs)
        message_id = self._new_id("msg_")
        if request.stream:
            events = messages.stream_events(request, plan, message_id, model)
            return await self._counted_stream(scope, proto, events, knobs, fail)
        if knobs.token_delay_ms:
            await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
        await self._send_json(scope, proto, messages.message_body(request, plan, message_id, model), fail)

    async def _responses(self, scope: Any, proto: Any) -> None:
        body = await proto()
        try:
            request = responses.REQUEST_DECODER.decode(body)
        except msgspec.DecodeError as exc:
            return self._bad_body(scope, proto, exc, body)
        self._record(scope, request.model, bool(request.stream), body)
        try:
            model, knobs = self._resolve(scope.headers, request.mock, request.model)
        except KnobError as exc:
            return _error(proto, 400, str(exc), param=exc.param)
        fail = self._failure(knobs, request.model)
        if await self._before_reply(proto, knobs, fail):
            return None
        plan = responses.plan_reply(request, knobs)
        response_id = self._new_id("resp_")
        created = int(time.time())
        if request.stream:
            events = responses.stream_events(request, plan, response_id, created, model)
            return await self._counted_stream(scope, proto, events, knobs, fail)
        if knobs.token_delay_ms:
            await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
        await self._send_json(scope, proto, responses.response_body(request, plan, response_id, created, model), fail)

    async def _embeddings(self, scope: Any, proto: Any) -> None:
        await self._unary(scope, proto, embeddings.REQUEST_DECODER, embeddings.EmbeddingInputError,
                          embeddings.embeddings_body)  # fmt: skip

    async def _images(self, scope: Any, proto: Any) -> None:
        await self._unary(scope, proto, images.REQUEST_DECODER, images.ImagesInputError,
                          lambda request, model: images.images_body(request, model, int(time.time())))  # fmt: skip

    async def _unary(
        self,
        scope: Any,
        proto: Any,
        decoder: msgspec.json.Decoder[Any],
        input_error: type[Exception],
        build: Callable[[Any, Any], bytes],
    ) -> None:
        """An endpoint answering one JSON body and no stream (embeddings, images): decode, record, resolve the
        knobs, build the reply (a 400 naming the parameter for input the endpoint refuses), then fail or send
        it as the knobs say."""
        body = await proto()
        try:
            request = decoder.decode(body)
        except msgspec.DecodeError as exc:
            return self._bad_body(scope, proto, exc, body)
        self._record(scope, request.model, False, body)
        try:
            model, knobs = self._resolve(scope.headers, request.mock, request.model)
            reply = build(request, model)
        except (KnobError, input_error) as exc:
            return _error(proto, 400, str(exc), param=exc.param)  # type: ignore[attr-defined]
        fail = self._failure(knobs, request.model)
        if await self._before_reply(proto, knobs, fail):
            return
        await self._send_json(scope, proto, reply, fail)

    async def _list_models(self, scope: Any, proto: Any) -> None:
        self._record(scope)
        proto.response_bytes(200, JSON_HEADERS, self._model_list)

    def _get_model(self, scope: Any, proto: Any) -> None:
        self._record(scope)
        model_id = scope.path.removeprefix("/v1/models/")
        model = find_model(model_id)
        if model is None:
            message = f"The model '{model_id}' does not exist"
            return _error(proto, 404, message, param="model", code="model_not_found")
        proto.response_bytes(200, JSON_HEADERS, model_body(model))

    def _not_found(self, scope: Any, proto: Any) -> None:
        if scope.path.startswith("/v1/"):
            self._record(scope)
        _error(proto, 404, f"Unknown request URL: {scope.method} {scope.path}.", code="unknown_url")

    # --- /_mock control endpoints ---

    async def _health(self, scope: Any, proto: Any) -> None:
        proto.response_bytes(200, JSON_HEADERS, b'{"status":"ok"}')

    async def _requests(self, scope: Any, proto: Any) -> None:
        proto.response_bytes(200, JSON_HEADERS, msgspec.json.encode(self.recorder.snapshot()))

    async def _reset(self, scope: Any, proto: Any) -> None:
        # Also restart the fail-rate sequence, so a test after a reset sees the same pattern every time.
        self._fail_credit = 0.0
        self._fail_first_seen.clear()
        cleared = self.recorder.reset()
        proto.response_bytes(200, JSON_HEADERS, b'{"cleared":%d}' % cleared)


def create_app() -> MockApp:
    """granian factory (``router.mock.app:create_app``): per-process defaults come from ``ROUTER_MOCK_*``."""
    return MockApp(defaults=from_env(os.environ))
