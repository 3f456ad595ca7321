"""The endpoints. Each reads top to bottom: authenticate, read, validate, resolve the model, forward."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..errors import InvalidRequest, NotFound
from ..guardrails.chat_stream import ChatStreamGuard
from ..guardrails.policy import screen_chat_request, screen_chat_response, screen_embeddings_request
from ..metrics import CONTENT_TYPE
from ..routing import Model
from . import requests as rq
from .exchange import JSON, Exchange
from .proxy import forward_stream, forward_unary

if TYPE_CHECKING:
    from .app import App


def _resolve(app: App, ex: Exchange, model_id: str, endpoint: str) -> Model:
    model = app.catalog.get(model_id)
    if model is None:
        raise NotFound(
            f"The model '{model_id}' does not exist or you do not have access to it. "
            "List the models you can use with GET /v1/models.",
            param="model",
            code="model_not_found",
        )
    if model.is_embedding != (endpoint == "embeddings"):
        kind = "an embeddings" if model.is_embedding else "a chat"
        raise InvalidRequest(
            f"The model '{model_id}' is {kind} model and cannot be used with /v1/{endpoint}.",
            param="model",
            code="model_not_supported",
        )
    ex.model = model.id
    ex.provider = model.provider.name
    return model


async def _authenticated_body(app: App, ex: Exchange) -> tuple[bytes, dict[str, msgspec.Raw]]:
    """Who is calling, then their JSON body: raw, and cut into top-level fields still raw."""
    ex.key_id = app.keys.authenticate(ex.api_key()).key_id
    body = await ex.read_json_body(app.config.server.max_body_bytes)
    return body, rq.decode_fields(body)


async def chat_completions(app: App, ex: Exchange) -> None:
    body, fields = await _authenticated_body(app, ex)
    request = rq.validate_chat(body)
    model = _resolve(app, ex, request.model, "chat")

    fields["model"] = model.upstream_name_json
    guard = app.guardrails
    masked = screen_chat_request(guard, app.metrics, fields) if guard.requests else None
    if not request.stream:
        screen = (lambda data: screen_chat_response(guard, app.metrics, data, masked)) if guard.responses else None
        await forward_unary(ex, model, "chat", rq.encode_fields(fields), screen)
        return
    ex.stream = True
    client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
    # Every token is counted: ask for usage even when the client did not, and hide that chunk from it.
    if not client_wants_usage:
        rq.with_usage_requested(fields, request.stream_options)
    stream_guard = ChatStreamGuard(guard, app.metrics, masked) if guard.responses else None
    await forward_stream(ex, model, rq.encode_fields(fields), hide_usage=not client_wants_usage, guard=stream_guard)


async def embeddings(app: App, ex: Exchange) -> None:
    body, fields = await _authenticated_body(app, ex)
    request = rq.validate_embeddings(body)
    model = _resolve(app, ex, request.model, "embeddings")
    fields["model"] = model.upstream_name_json
    if app.guardrails.requests:
        screen_embeddings_request(app.guardrails, app.metrics, fields)
    await forward_unary(ex, model, "embeddings", rq.encode_fields(fields))


async def list_models(app: App, ex: Exchange) -> None:
    ex.key_id = app.keys.authenticate(ex.api_key()).key_id
    ex.send_bytes(200, app.catalog.models_list_body, JSON)


async def healthz(app: App, ex: Exchange) -> None:
    ex.send_bytes(200, b'{"status":"ok"}', JSON)


async def readyz(app: App, ex: Exchange) -> None:
    try:
        app.store.ping()
    except Exception as exc:
        ex.send_bytes(503, b'{"status":"unavailable","database":"unreachable: %s"}' % type(exc).__name__.encode())
        return
    ex.send_bytes(200, b'{"status":"ready","database":"ok"}', JSON)


async def metrics(app: App, ex: Exchange) -> None:
    ex.send_bytes(200, app.metrics.render(), CONTENT_TYPE)
