"""The endpoints. Each reads top to bottom: authenticate, read, validate, resolve the model, forward."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..metrics import CONTENT_TYPE
from ..routing import Model, Need
from . import requests as rq
from .exchange import JSON, Exchange
from .proxy import forward_stream, forward_unary

if TYPE_CHECKING:
    from .app import App


async def _authenticated_body(app: App, ex: Exchange) -> tuple[bytes, dict[str, msgspec.Raw]]:
    """Who is calling, then their JSON body: raw, and cut into top-level fields still raw."""
    ex.key_id = app.keys.authenticate(ex.api_key()).key_id
    body = await ex.read_json_body(app.config.server.max_body_bytes)
    return body, rq.decode_fields(body)


async def chat_completions(app: App, ex: Exchange) -> None:
    body, fields = await _authenticated_body(app, ex)
    request = rq.validate_chat(body)
    need = Need.chat(body, fields, stream=bool(request.stream))
    # A model or policy/<name>: routing calls one of these per attempt with the model to try.
    if not request.stream:

        async def unary(model: Model) -> None:
            fields["model"] = model.upstream_name_json
            await forward_unary(ex, model, "chat", rq.encode_fields(fields))

        await app.routing.run(ex, request.model, need, fields, unary)
        return
    ex.stream = True
    client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
    # Every token is counted: ask for usage even when the client did not, and hide that chunk from it.
    if not client_wants_usage:
        rq.with_usage_requested(fields, request.stream_options)

    async def stream(model: Model) -> None:
        fields["model"] = model.upstream_name_json
        await forward_stream(ex, model, rq.encode_fields(fields), hide_usage=not client_wants_usage)

    await app.routing.run(ex, request.model, need, fields, stream)


async def embeddings(app: App, ex: Exchange) -> None:
    body, fields = await _authenticated_body(app, ex)
    request = rq.validate_embeddings(body)

    async def embed(model: Model) -> None:
        fields["model"] = model.upstream_name_json
        await forward_unary(ex, model, "embeddings", rq.encode_fields(fields))

    await app.routing.run(ex, request.model, Need("embeddings"), fields, embed)


async def list_models(app: App, ex: Exchange) -> None:
    ex.key_id = app.keys.authenticate(ex.api_key()).key_id
    ex.send_bytes(200, app.routing.models_list(), JSON)


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
