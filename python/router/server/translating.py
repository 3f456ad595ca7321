"""Forwarding a request in any caller API (chat, Anthropic Messages, Responses) to an upstream of any API.

When caller and upstream speak the same API the body goes through with only the model swapped and the answer
comes back as sent (streams still pass through the Rust Transcoder, which observes usage and errors).
Otherwise the request is translated in Python (`protocols.to_upstream`), a whole answer back in Python
(`protocols.to_caller`), and a stream in Rust (`router._core.Transcoder`): Python only hands it bytes and
writes out what it returns.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from pyreqwest import exceptions as rq

from .._core import Transcoder
from ..errors import GuardrailUnavailable, GuardrailViolation, InvalidRequest, UpstreamError
from ..guardrails.answers import AnswerGuard
from ..protocols import caching, coding, web_search
from ..protocols.to_caller import translate_reply, usage_of
from ..protocols.to_upstream import Plan, translate_request
from ..protocols.tools import called
from ..providers.transport import upstream_failure
from ..routing import Model
from ..spend.cost import MICRO, cost_micro
from . import requests as rq_shapes
from .backpressure import STEP, ClientStalled, ClientWindow, IdleTimer
from .exchange import JSON, Exchange
from .proxy import STREAM_HEADERS


def _prices(model: Model) -> tuple[float, float, float] | None:
    """USD per million (input, output, cached input) tokens: what the Responses `usage.cost` extension uses."""
    prices = model.prices
    if prices is None:
        return None
    return prices.input, prices.output, prices.cached_input if prices.cached_input is not None else prices.input


async def forward(
    ex: Exchange,
    model: Model,
    caller: str,
    body: bytes,
    fields: dict[str, msgspec.Raw],
    stream: bool,
    input_estimate: int,
    include_usage: bool,
    extra: dict[str, str] | None,
    guard: AnswerGuard | None = None,
) -> None:
    """Send a validated ``caller``-API request to the model's upstream and answer in the caller's API;
    `guard` screens the answer (unary or streamed) with the organisation's guardrails."""
    upstream = model.provider.api
    if ex.upstream_auth is not None:  # this attempt pays with the organisation's own key (BYOK)
        extra = {**(extra or {}), **ex.upstream_auth}
    plan = Plan()
    # `coding/` models cache unless the request itself declines.
    declined = ex.metadata is not None and ex.metadata.auto_cache is False
    auto_cache = (ex.auto_cache or (model.coding is not None and not declined)) and upstream == "messages"
    if caller == upstream and not auto_cache:
        fields["model"] = model.upstream_name_json
        if model.coding is not None:
            coding.prepare(model.coding, upstream, fields)
        upstream_body = rq_shapes.encode_fields(fields)
    else:
        request = msgspec.json.decode(body)
        request.pop("requesty", None)
        config = model.config
        reasoning_model = "reasoning" in config.capabilities
        try:
            translated, plan = translate_request(request, caller, upstream, config.max_output_tokens, reasoning_model)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Validation checks what each API promises; a shape it lets through that cannot be expressed for
            # this upstream is still the client's to fix, not a gateway failure.
            raise InvalidRequest(
                f"The request cannot be translated for model '{model.id}' ({upstream} API): malformed "
                f"content ({type(exc).__name__}: {exc}).",
                code="untranslatable_request",
            ) from None
        if auto_cache:
            caching.add_breakpoints(translated)
        if model.coding is not None:
            coding.prepare(model.coding, upstream, translated)
        translated["model"] = model.upstream_name
        if stream:
            translated["stream"] = True
            if upstream == "chat":
                translated["stream_options"] = {"include_usage": True}
        upstream_body = msgspec.json.encode(translated)
        # The conversation, decoded and translated: a stream outlives them by minutes.
        del request, translated
    searching = web_search.requested(fields)
    # Nothing below reads the client's body: `Exchange.client_body` holds it while a fallback may re-send it.
    del body, fields
    ex.upstream_body_built()
    if stream:
        ex.stream = True
        prices = _prices(model) if caller == "responses" else None
        screen = guard.screen() if guard is not None else None
        transcoder = Transcoder(
            upstream, caller, model.id, int(time.time()), input_estimate, include_usage, plan.json_tool, prices, screen
        )
        searched = None
        if upstream in ("messages", "responses") and searching:
            searched = web_search.SearchStream(upstream, strip=caller != upstream)
        # A task of its own, so each upstream chunk resumes the relay directly (see proxy.forward_stream).
        relay = asyncio.create_task(_stream(ex, model, upstream_body, transcoder, extra, guard, searched, caller))
        del upstream_body  # freed once sent: the stream outlives it by minutes
        await relay
    else:
        await _unary(ex, model, caller, upstream_body, plan, extra, guard)


async def _unary(
    ex: Exchange,
    model: Model,
    caller: str,
    body: bytes,
    plan: Plan,
    extra: dict[str, str] | None,
    guard: AnswerGuard | None,
) -> None:
    provider = model.provider
    sent = time.perf_counter()
    try:
        response, data = await provider.post(model.urls["chat"], body, ex.request_id, extra)
    except (rq.PyreqwestError, TimeoutError) as exc:
        raise upstream_failure(exc, provider.name) from None
    finally:
        ex.upstream_seconds = time.perf_counter() - sent
    if response.status != 200:
        raise provider.error_from_status(response.status, data, response.get_header("retry-after"))
    try:
        reply = msgspec.json.decode(data)
        if not isinstance(reply, dict):
            raise msgspec.DecodeError("not an object")
        if caller != provider.api:
            reply = translate_reply(reply, provider.api, caller, model.id, plan)
        usage = usage_of(reply, caller)
        ex.tool_calls = called(reply, caller)
        searches = web_search.searches_of(reply, caller)
        if searches and model.prices is not None:
            ex.fees_micro = searches * round(model.prices.per_search * MICRO)
        if caller == "responses" and isinstance(reply.get("usage"), dict) and model.prices is not None:
            prompt, output, cached, _ = usage
            cost = cost_micro(model.prices, prompt or 0, output or 0, cached or 0) + ex.fees_micro
            reply["usage"]["cost"] = cost / MICRO
        screened = guard is not None and guard.reply(reply, caller)
        if caller != provider.api or caller == "responses" or screened:
            data = msgspec.json.encode(reply)
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        raise UpstreamError(
            f"Upstream provider '{provider.name}' returned an invalid JSON response.", code="upstream_invalid_response"
        ) from None
    ex.prompt_tokens, ex.completion_tokens, ex.cached_tokens, ex.reasoning_tokens = usage
    ex.answer = data
    ex.send_bytes(200, data, JSON)


async def _stream(
    ex: Exchange,
    model: Model,
    body: bytes,
    transcoder: Transcoder,
    extra: dict[str, str] | None,
    guard: AnswerGuard | None,
    searched: web_search.SearchStream | None = None,
    caller: str = "chat",
) -> None:
    """`searched`: the upstream searched the web; its events go to the transcoder through it, and the
    citations it collects reach chat callers as `delta.annotations` chunks, Responses callers as annotations
    of the message (with the searches as `web_search_call` items)."""
    provider = model.provider
    idle = provider.timeouts.idle_read
    with ex.cancel_on_disconnect():
        sent = time.perf_counter()
        try:
            async with provider.stream(model.urls["chat"], body, ex.request_id, extra) as response:
                del body  # sent
                if response.status != 200:
                    data = bytes(await response.bytes())
                    raise provider.error_from_status(response.status, data, response.get_header("retry-after"))
                ex.upstream_seconds = time.perf_counter() - sent
                transport = ex.start_stream(200, STREAM_HEADERS)
                reader = response.body_reader
                window = ClientWindow(ex.sockets, ex.scope.client)
                try:
                    async with IdleTimer(idle) as timer:
                        while (chunk := await reader.read_chunk()) is not None:
                            if searched is None:
                                out = transcoder.feed(bytes(chunk))
                            else:
                                out = b""
                                for event, found, query in searched.feed(bytes(chunk)):
                                    if caller == "responses":
                                        if query is not None:
                                            # The query echoes the prompt: unscreened, so left out under guardrails.
                                            out += transcoder.search_call(query if guard is None else "")
                                        if found:  # before the event: a block's end may end the message
                                            out += transcoder.annotate(web_search.citation_tuples(found))
                                    out += transcoder.feed(event) if event else b""
                                    if found and caller == "chat":
                                        out += web_search.annotations_chunk(ex.answer or out, found)
                            if guard is not None and transcoder.has_findings:
                                # A blocked category ends the stream here, with an error event instead.
                                guard.check(transcoder)
                            if out:
                                if ex.answer is None:
                                    ex.answer = out  # a Responses stream names its response first
                                if ex.ttft is None and transcoder.deltas:
                                    ex.ttft = time.perf_counter() - ex.started
                                await transport.send_bytes(out)
                                # granian's send never waits for the client: a slow one holds the upstream read.
                                window.unchecked += len(out)
                                if window.unchecked >= STEP:
                                    await window.drain(idle, timer)
                            if transcoder.malformed:
                                raise UpstreamError(
                                    f"Upstream provider '{provider.name}' sent a malformed stream event.",
                                    code="upstream_invalid_stream",
                                )
                            # Read on after the last event: a body read to its end keeps the connection reusable.
                            timer.chunks += 1
                    if transcoder.error is not None:
                        ex.error_type = transcoder.error[0]
                    elif not transcoder.done:
                        raise UpstreamError(
                            f"Upstream provider '{provider.name}' ended the stream before it was complete.",
                            code="upstream_stream_incomplete",
                        )
                except (
                    rq.PyreqwestError,
                    TimeoutError,
                    UpstreamError,
                    GuardrailViolation,
                    GuardrailUnavailable,
                    ClientStalled,
                ) as exc:
                    failure = (
                        exc
                        if not isinstance(exc, rq.PyreqwestError | TimeoutError)
                        else upstream_failure(exc, provider.name)
                    )
                    ex.error_type = failure.code
                    await transport.send_bytes(transcoder.fail(failure.code or failure.type, failure.message))
                    # A raised error's traceback holds this frame and so the client's stream, which would stay
                    # open until the garbage collector broke the cycle.
                    del failure
                finally:
                    if searched is not None and searched.searches and model.prices is not None:
                        ex.fees_micro = searched.searches * round(model.prices.per_search * MICRO)
                    ex.prompt_tokens = transcoder.prompt_tokens
                    ex.completion_tokens = transcoder.completion_tokens
                    ex.cached_tokens = transcoder.cached_tokens
                    ex.reasoning_tokens = transcoder.reasoning_tokens
                    ex.tool_calls = transcoder.tool_names or None
        except (rq.PyreqwestError, TimeoutError) as exc:
            raise upstream_failure(exc, provider.name) from None
        finally:
            ex.upstream_seconds = time.perf_counter() - sent
