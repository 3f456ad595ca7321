"""Forwarding a validated request to its upstream: whole answers and streams.

The upstream's bytes reach the client as they were sent: a unary answer is decoded only for its usage,
a stream is cut into events by the Rust StreamTap, which observes usage and first-token time without
re-serialising anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
from pyreqwest import exceptions as rq

from .._core import StreamTap
from ..errors import GatewayError, UpstreamError
from ..guardrails.chat_stream import ChatStreamGuard
from ..protocols.tools import ChatChoice, chat_calls
from ..providers.transport import upstream_failure
from ..routing import Model
from ..spend.cost import images_fee_micro
from .backpressure import STEP, ClientWindow, IdleTimer
from .exchange import JSON, Exchange, openai_error_body


class PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None


class _UsageOnly(msgspec.Struct):
    usage: Usage | None = None


class _Answer(msgspec.Struct):
    usage: Usage | None = None
    choices: list[ChatChoice] | None = None  # read for tool-call analytics only


_usage_decoder = msgspec.json.Decoder(_UsageOnly)
_answer_decoder = msgspec.json.Decoder(_Answer)


def decode_answer(data: bytes) -> _Answer:
    """Usage and tool names in one pass; choices the analytics cannot read never cost the client its answer."""
    try:
        return _answer_decoder.decode(data)
    except msgspec.ValidationError:
        return _Answer(usage=_usage_decoder.decode(data).usage)


_usage_value_decoder = msgspec.json.Decoder(Usage)


def record_usage(ex: Exchange, usage: Usage | None) -> None:
    if usage is None:
        return
    ex.prompt_tokens = usage.prompt_tokens
    ex.completion_tokens = usage.completion_tokens
    details = usage.prompt_tokens_details
    ex.cached_tokens = details.cached_tokens if details is not None else None
    completion = usage.completion_tokens_details
    ex.reasoning_tokens = completion.reasoning_tokens if completion is not None else None


async def forward_unary(
    ex: Exchange, model: Model, endpoint: str, body: bytes, screen: Callable[[bytes], bytes] | None = None
) -> None:
    provider = model.provider
    ex.upstream_body_built()
    sent = time.perf_counter()
    try:
        response, data = await provider.post(model.urls[endpoint], body, ex.request_id, ex.upstream_auth)
    except (rq.PyreqwestError, TimeoutError) as exc:
        raise upstream_failure(exc, provider.name) from None
    finally:
        ex.upstream_seconds = time.perf_counter() - sent
    status = response.status
    if status != 200:
        raise provider.error_from_status(status, data, response.get_header("retry-after"))
    try:
        answer = decode_answer(data)
        record_usage(ex, answer.usage)
    except msgspec.DecodeError:
        raise UpstreamError(
            f"Upstream provider '{provider.name}' returned an invalid JSON response.", code="upstream_invalid_response"
        ) from None
    ex.tool_calls = chat_calls(answer.choices)
    if screen is not None:
        data = screen(data)
    ex.answer = data
    ex.send_bytes(200, data, JSON)


class _ImagesUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _ImagesAnswer(msgspec.Struct):
    data: list[msgspec.Raw] = []
    usage: _ImagesUsage | None = None


_images_decoder = msgspec.json.Decoder(_ImagesAnswer)


async def forward_images(ex: Exchange, model: Model, fields: dict[str, msgspec.Raw], size: str, quality: str) -> None:
    """`POST /v1/images/generations` to one model: the provider answers in OpenAI's Images shape (translating
    if its API differs); the images it returned are priced here (`spend.cost.images_fee_micro`)."""
    provider = model.provider
    sent = time.perf_counter()
    try:
        data = await provider.generate_images(model.urls["images"], fields, ex.request_id, ex.upstream_auth)
    except (rq.PyreqwestError, TimeoutError) as exc:
        raise upstream_failure(exc, provider.name) from None
    finally:
        ex.upstream_seconds = time.perf_counter() - sent
    try:
        answer = _images_decoder.decode(data)
    except msgspec.DecodeError:
        raise UpstreamError(
            f"Upstream provider '{provider.name}' returned an invalid JSON response.", code="upstream_invalid_response"
        ) from None
    if answer.usage is not None:
        ex.prompt_tokens = answer.usage.input_tokens
        ex.completion_tokens = answer.usage.output_tokens
    if model.prices is not None:
        ex.fees_micro = images_fee_micro(model.prices, size, quality, len(answer.data))
    ex.send_bytes(200, data, JSON)


STREAM_HEADERS = [("cache-control", "no-cache"), ("x-accel-buffering", "no")]


def _error_event(exc: GatewayError) -> bytes:
    # The openai SDK raises APIError for a chunk with an "error" key, so a broken stream is never silent.
    return b"data: " + openai_error_body(exc) + b"\n\n"


async def forward_stream(
    ex: Exchange, model: Model, body: bytes, hide_usage: bool, guard: ChatStreamGuard | None = None
) -> None:
    # The relay runs as a task of its own: each upstream chunk then resumes its frame directly, not through every
    # coroutine awaiting this one (the RSGI entry, the handler, routing: one frame resumed per level and per chunk,
    # ~0.1 µs each; benches/test_relay_bench.py). Errors and cancellation cross the task boundary unchanged.
    ex.upstream_body_built()
    relay = asyncio.create_task(_forward_stream(ex, model, body, hide_usage, guard))
    del body  # the upstream's copy of the prompt: freed once sent, not held for the stream's length
    await relay


async def _forward_stream(
    ex: Exchange, model: Model, body: bytes, hide_usage: bool, guard: ChatStreamGuard | None
) -> None:
    provider = model.provider
    idle = provider.timeouts.idle_read
    with ex.cancel_on_disconnect():
        sent = time.perf_counter()
        try:
            async with provider.stream(model.urls["chat"], body, ex.request_id, ex.upstream_auth) as response:
                del body
                if response.status != 200:
                    data = bytes(await response.bytes())
                    # Nothing was sent yet, so the client gets a JSON error with the real status, not a 200 stream.
                    raise provider.error_from_status(response.status, data, response.get_header("retry-after"))
                tap = guard.tap(hide_usage) if guard is not None else StreamTap(strip_usage_chunk=hide_usage)
                reader = response.body_reader
                window = ClientWindow(ex.sockets, ex.scope.client)
                # The client's stream starts with the first bytes for it: until then a failure is raised, so a
                # routing policy can still try another target.
                transport = None
                try:
                    async with IdleTimer(idle) as timer:
                        while (chunk := await reader.read_chunk()) is not None:
                            out = tap.feed(bytes(chunk))
                            if guard is not None and tap.has_findings:
                                guard.check(tap)
                            if out:
                                if transport is None:
                                    # Measured before the response head goes out: it carries the overhead header.
                                    ex.upstream_seconds = time.perf_counter() - sent
                                    transport = ex.start_stream(200, STREAM_HEADERS)
                                if ex.ttft is None and tap.data_events:
                                    ex.ttft = time.perf_counter() - ex.started
                                await transport.send_bytes(out)
                                # granian's send never waits for the client: a slow one holds the upstream read.
                                window.unchecked += len(out)
                                if window.unchecked >= STEP:
                                    await window.drain(idle, timer)
                            if tap.malformed:
                                # The SDK json-parses every event; a broken one would crash the client's stream.
                                raise UpstreamError(
                                    f"Upstream provider '{provider.name}' sent a malformed stream event.",
                                    code="upstream_invalid_stream",
                                )
                            timer.chunks += 1
                    # Screened, an unterminated tail is dropped: only what is held back goes out (masked).
                    tail = tap.finish()
                    if guard is not None and tap.has_findings:
                        guard.check(tap)
                    if not tap.done and tap.error is None:
                        raise UpstreamError(
                            f"Upstream provider '{provider.name}' ended the stream before it was complete.",
                            code="upstream_stream_incomplete",
                        )
                    if tail:
                        if transport is None:
                            ex.upstream_seconds = time.perf_counter() - sent
                            transport = ex.start_stream(200, STREAM_HEADERS)
                        await transport.send_bytes(tail)
                except (rq.PyreqwestError, TimeoutError, GatewayError) as exc:
                    failure = exc if isinstance(exc, GatewayError) else upstream_failure(exc, provider.name)
                    if transport is None:
                        raise failure from None
                    ex.error_type = failure.code
                    await transport.send_bytes(_error_event(failure))
                    # A raised error's traceback holds this frame and so the client's stream, which would stay
                    # open until the garbage collector broke the cycle.
                    del failure
                finally:
                    ex.events_seen = tap.data_events
                    ex.tool_calls = tap.tool_names or None
                    if tap.usage is not None:
                        record_usage(ex, _usage_value_decoder.decode(tap.usage))
        except (rq.PyreqwestError, TimeoutError) as exc:
            raise upstream_failure(exc, provider.name) from None
        finally:
            ex.upstream_seconds = time.perf_counter() - sent
