"""The endpoints. Each reads top to bottom: authenticate, read, validate, resolve the model, forward."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

import msgspec

from ..config import Prices
from ..errors import InvalidRequest, NotFound, PermissionDenied
from ..governance.keys import Principal, awaited
from ..governance.rbac import actor_for
from ..guardrails.answers import AnswerGuard
from ..guardrails.chat_stream import ChatStreamGuard
from ..guardrails.policy import (
    screen_chat_request,
    screen_chat_response,
    screen_embeddings_request,
    screen_images_request,
    screen_request_fields,
)
from ..metrics import CONTENT_TYPE
from ..prompts.applied import apply as apply_prompts
from ..protocols import anthropic, coding, limits, reasoning, responses, tools, web_search
from ..protocols.validation import check_json
from ..routing import Model, Need
from ..routing.executor import Call, resolve_model
from ..routing.policies import is_policy
from ..spend.cost import DEFAULT_MAX_OUTPUT, images_worst_case_micro
from ..store.records import AuditEvent
from . import requests as rq
from .exchange import JSON, ClientBody, Exchange
from .proxy import forward_images, forward_stream, forward_unary
from .translating import forward

if TYPE_CHECKING:
    from ..spend.budgets import Charged
    from .app import App


def _admit(app: App, ex: Exchange, principal: Principal, model_id: str, endpoint: str) -> list[Model]:
    """The models that may serve this request: one for a model id, the allowed leaves for `policy/<name>`.

    404 for an unknown model or policy, 400 for the wrong kind, 403 (audited) outside the key's effective set;
    none of them reaches an upstream."""
    if is_policy(model_id):
        policy = app.routing.policies.get(model_id, principal.key_id)
        if policy is None:
            defined = app.routing.policies.defined(principal.key_id)
            raise NotFound(
                f"The policy '{model_id}' does not exist (defined: {defined}).", param="model", code="model_not_found"
            )
        models = [m for m in policy.leaves() if m.id in principal.allowed]
        if not models:
            _deny(app, ex, principal, model_id)
        return models
    model = resolve_model(app.catalog, model_id, endpoint)
    if model_id not in principal.allowed:
        _deny(app, ex, principal, model_id)
    ex.model = model.id
    ex.provider = model.provider.name
    return [model]


def _deny(app: App, ex: Exchange, principal: Principal, model_id: str) -> None:
    """Refuse a model outside the key's effective set: audited with the deciding layer, never forwarded."""
    if app.usage is not None:
        app.usage.audit(
            AuditEvent(
                ts=app.clock(),
                actor=f"key:{principal.key_id}",
                action="request.denied",
                target_type="model",
                target_id=model_id,
                detail={
                    "layer": principal.effective.denied_by(model_id),
                    "request_id": ex.request_id,
                    "endpoint": ex.endpoint,
                },
            )
        )
    # Neutral on purpose: naming the allowed models would map the organisation's policy for anyone holding a key.
    raise PermissionDenied(
        f"The model '{model_id}' is not allowed for this API key. List the models you can use with GET /v1/models.",
        param="model",
        code="model_not_allowed",
    )


async def _authenticated_body(app: App, ex: Exchange) -> tuple[Principal, bytes, dict[str, msgspec.Raw]]:
    """Who is calling, then their JSON body: raw, and cut into top-level fields still raw."""
    principal = app.authenticate(ex)
    if not isinstance(principal, Principal):  # a key not cached, read from a database server
        principal = await principal
    ex.key_id = principal.key_id
    body = await app.read_body(ex)
    ex.body_bytes = len(body)
    fields = rq.decode_fields(body)
    app.sessions.capture(ex, fields)
    return principal, body, fields


def _prompted(app: App, ex: Exchange, principal: Principal, api: str, body: bytes, fields: dict) -> bytes | None:
    """The prompt library's prompts for this key, put into `fields` before guardrails and the reservation (so
    masking and pricing see the final prompt); the re-encoded body, or None when nothing applied."""
    applied = app.prompts.for_principal(principal)
    if applied is None:
        return None
    labels = apply_prompts(api, fields, applied)
    if not labels:
        return None
    ex.prompt = " ".join(labels)
    body = rq.encode_fields(fields)
    ex.body_bytes = len(body)
    return body


def _charge(
    app: App,
    ex: Exchange,
    principal: Principal,
    models: list[Model],
    fields: dict[str, msgspec.Raw],
    end_user: str | None,
    output: tuple[str, int | None] | None,
    choices: int = 1,
    fees: Callable[[Prices], int] | None = None,
) -> Awaitable[None] | None:
    """Record who and what the request is for, and reserve its worst-case cost (over every model that may
    serve it) against every limited budget. With the shared ledger (Redis) and a limited budget, returns what
    the caller must await (the reservation's round trip); else None, with nothing left to wait for.

    `output` is (the parameter that bounds the answer, its value or None), or None for an endpoint without
    output tokens; a value above what every model can produce is refused (`limits.check_output_limit`).
    Each model is counted at the smaller of the value and its own limit, `choices` times (chat's `n`).
    `fees` is the most a model charges besides tokens (generated images), added to its reservation.

    The `requesty` field (gateway settings, never an upstream parameter) leaves `fields` here: everything that
    reads it (usage rows, auto_cache, a policy's load-balancing key) reads the decoded `ex.metadata`."""
    metadata = ex.metadata = rq.request_metadata(
        fields.pop("requesty", None), ex.headers.get("x-router-metadata"), app.config.spend.max_metadata_bytes
    )
    record = principal.record
    ex.auto_cache = app.caching.resolve(metadata.auto_cache if metadata is not None else None, record)
    ex.owner = record.owner_id if record is not None and record.owner_type == "user" else None
    ex.end_user = end_user
    if output is None:
        candidates = [(m.id, m.prices, 0) for m in models]
    else:
        param, requested = output
        if requested is not None:
            limits.check_output_limit(requested, param, (m.config.max_output_tokens for m in models))
        candidates = [(m.id, m.prices, _output_of(m, requested) * choices) for m in models]
    charged = app.spend.reserve(principal, candidates, ex.body_bytes, app.clock(), fees)
    if not isinstance(charged, tuple):  # the shared ledger's round trip: the caller awaits it
        return _charged(app, ex, charged, metadata)
    ex.hold, ex.budgets, ex.period = charged
    app.sessions.place(ex, metadata)
    return None


async def _charged(app: App, ex: Exchange, charged: Awaitable[Charged], metadata: rq.Metadata | None) -> None:
    ex.hold, ex.budgets, ex.period = await charged
    app.sessions.place(ex, metadata)


def _output_of(model: Model, requested: int | None) -> int:
    """The most output tokens `model` can produce for a request asking for `requested` (None: no bound)."""
    limit = model.config.max_output_tokens
    if requested is None:
        return DEFAULT_MAX_OUTPUT if limit is None else limit
    return requested if limit is None else min(requested, limit)


def _need(held: ClientBody, stream: bool) -> Need:
    """What a policy's targets must support, read from the request while routing may still send it."""
    return Need.chat(held.data, held.fields, stream)


def _route(
    app: App,
    ex: Exchange,
    principal: Principal,
    model_id: str,
    models: list[Model],
    need: Callable[[], Need],
    fields: dict,
    call: Call,
) -> Awaitable[None]:
    """Serve with the model, or with `policy/<name>`'s targets in turn; each attempt is priced as what it calls.
    What to await is the routing's own coroutine (no frame of its own between the handler and the routing).

    `models` are what `_admit` let through; `need` makes what a policy's targets must support (only a policy
    reads it)."""
    if not is_policy(model_id):
        # `_admit` resolved this model and checked it against the key's effective set: nothing left to choose.
        model = models[0]
        ex.prices = model.prices
        return app.routing.direct(ex, model, call)

    async def priced(model: Model) -> None:
        ex.prices = model.prices
        await call(model)

    return app.routing.run(ex, model_id, need(), fields, priced, allowed=principal.allowed.__contains__)


async def chat_completions(app: App, ex: Exchange) -> None:
    principal, body, fields = await _authenticated_body(app, ex)
    request = rq.validate_chat(body)
    limits.check_fields(fields, limits.CHAT)
    models = _admit(app, ex, principal, request.model, "chat")
    body = _prompted(app, ex, principal, "chat", body, fields) or body
    # Guardrails before anything is reserved or sent: a block is a 400, a mask rewrites the messages in
    # `fields` for every attempt.
    guard = app.guardrails_for(principal, ex)
    masked = screen_chat_request(guard, app.metrics, fields) if guard.requests else None
    ex.tool_results = tools.chat_results(body, request.messages[-1].role)
    charging = _charge(app, ex, principal, models, fields, request.user, rq.chat_output(request), request.n or 1)
    if charging is not None:
        await charging
    stream = bool(request.stream)
    stream_options = request.stream_options
    client_wants_usage = bool(stream_options and stream_options.include_usage)
    # The caller's value travels unchanged until the provider's mapping (protocols.reasoning): max, min, none and
    # budgets are the gateway's, and only an OpenAI-style chat upstream narrows them to low|medium|high.
    if "reasoning_effort" in fields:
        reasoning.check(msgspec.json.decode(fields["reasoning_effort"]), "reasoning_effort")
    if stream:
        ex.stream = True

    # Routing's attempts read the request from `held` only, which the answer's first byte releases.
    held = ex.client_body = ClientBody(body, fields)
    need = partial(_need, held, stream)
    searching = web_search.requested(fields)

    def chat_upstream(model: Model) -> bytes:
        # A function of its own: no frame that lasts as long as the stream holds the copy of the fields.
        upstream = dict(fields)
        upstream["model"] = model.upstream_name_json
        if "reasoning_effort" in upstream:
            upstream["reasoning_effort"] = reasoning.openai_effort_field(upstream["reasoning_effort"])
        if searching:
            web_search.chat_upstream_fields(upstream)
        if model.coding is not None:
            coding.prepare(model.coding, "chat", upstream)
        if stream and not client_wants_usage:
            # Every token is counted: ask for usage even when the client did not, and hide that chunk from it.
            rq.with_usage_requested(upstream, stream_options)
        return rq.encode_fields(upstream)

    async def call(model: Model) -> None:
        if searching:
            web_search.check_model(model.id, model.config.capabilities)
        if model.provider.api != "chat":
            answer = AnswerGuard(guard, app.metrics, masked) if guard.responses else None
            # Translation re-reads the whole body: give it the screened one (an argument, not a local: this frame
            # lasts as long as the stream).
            await forward(
                ex, model, "chat", rq.encode_fields(fields) if guard.requests else held.data, dict(fields), stream, 0,
                client_wants_usage, None, answer,
            )  # fmt: skip
            return
        if not stream:
            # A partial, not a lambda: one Python frame less per answer.
            screen = partial(screen_chat_response, guard, app.metrics, request=masked) if guard.responses else None
            await forward_unary(ex, model, "chat", chat_upstream(model), screen)
            return
        stream_guard = ChatStreamGuard(guard, app.metrics, masked) if guard.responses else None
        await forward_stream(ex, model, chat_upstream(model), hide_usage=not client_wants_usage, guard=stream_guard)

    model_id = request.model
    # The validated request holds the decoded conversation: a stream outlives it by minutes.
    del request, body
    await _route(app, ex, principal, model_id, models, need, fields, call)


# Client headers an Anthropic upstream needs to see (beta features, API version pinning).
_ANTHROPIC_PASSTHROUGH = ("anthropic-beta", "anthropic-version")


async def messages(app: App, ex: Exchange) -> None:
    ex.api = "anthropic"
    principal, body, fields = await _authenticated_body(app, ex)
    request = anthropic.validate_messages(body)
    limits.check_fields(fields, limits.MESSAGES)
    models = _admit(app, ex, principal, request.model, "messages")
    if (prompted := _prompted(app, ex, principal, "messages", body, fields)) is not None:
        body = prompted
        request = anthropic.validate_messages(body)  # the input estimate counts the applied prompts
    guard = app.guardrails_for(principal, ex)
    masked, restore = screen_request_fields(guard, app.metrics, fields) if guard.requests else (False, None)
    if masked:
        body = rq.encode_fields(fields)
    ex.tool_results = tools.messages_results(request)
    charging = _charge(app, ex, principal, models, fields, None, ("max_tokens", request.max_tokens))
    if charging is not None:
        await charging
    estimate = anthropic.estimate_input_tokens(request)
    stream = bool(request.stream)
    held = ex.client_body = ClientBody(body, fields)  # see chat_completions
    need = partial(_need, held, stream)
    searching = web_search.requested(fields)

    async def call(model: Model) -> None:
        if searching and model.provider.config.kind != "anthropic":
            # Anthropic's own server tool to Anthropic goes through as sent: Anthropic decides.
            web_search.check_model(model.id, model.config.capabilities)
        extra = None
        if model.provider.api == "messages":
            extra = {name: value for name in _ANTHROPIC_PASSTHROUGH if (value := ex.headers.get(name))}
        answer = AnswerGuard(guard, app.metrics, restore) if guard.responses else None
        await forward(ex, model, "messages", held.data, dict(fields), stream, estimate, True, extra, answer)

    model_id = request.model
    del request, body  # the decoded conversation and the body (see chat_completions)
    await _route(app, ex, principal, model_id, models, need, fields, call)


async def count_tokens(app: App, ex: Exchange) -> None:
    """An estimate (see `protocols.anthropic.estimate_input_tokens`); never sent upstream."""
    ex.api = "anthropic"
    principal, body, _ = await _authenticated_body(app, ex)
    request = anthropic.validate_count_tokens(body)
    _admit(app, ex, principal, request.model, "messages/count_tokens")
    ex.send_bytes(200, b'{"input_tokens":%d}' % anthropic.estimate_input_tokens(request), JSON)


async def responses_create(app: App, ex: Exchange) -> None:
    principal, body, fields = await _authenticated_body(app, ex)
    request = responses.validate_responses(body)
    limits.check_fields(fields, limits.RESPONSES)
    models = _admit(app, ex, principal, request.model, "responses")
    body = _prompted(app, ex, principal, "responses", body, fields) or body
    guard = app.guardrails_for(principal, ex)
    masked, restore = screen_request_fields(guard, app.metrics, fields) if guard.requests else (False, None)
    if masked:
        body = rq.encode_fields(fields)
    ex.tool_results = tools.responses_results(request.input)
    charging = _charge(app, ex, principal, models, fields, None, ("max_output_tokens", request.max_output_tokens))
    if charging is not None:
        await charging
    stream = bool(request.stream)
    held = ex.client_body = ClientBody(body, fields)  # see chat_completions
    need = partial(_need, held, stream)
    searching = web_search.requested(fields)

    def responses_upstream(model: Model) -> dict[str, msgspec.Raw]:
        # A function of its own: no frame that lasts as long as the stream holds the copy of the fields.
        upstream = dict(fields)
        if model.provider.api == "responses" and "reasoning" in upstream:
            upstream["reasoning"] = reasoning.openai_reasoning_field(upstream["reasoning"])
        return upstream

    async def call(model: Model) -> None:
        if searching and model.provider.config.kind != "openai-responses":
            # OpenAI's own web search tool to a Responses upstream goes through as sent: OpenAI decides.
            web_search.check_model(model.id, model.config.capabilities)
        answer = AnswerGuard(guard, app.metrics, restore) if guard.responses else None
        await forward(ex, model, "responses", held.data, responses_upstream(model), stream, 0, True, None, answer)

    model_id = request.model
    del request, body  # the decoded conversation and the body (see chat_completions)
    await _route(app, ex, principal, model_id, models, need, fields, call)


async def embeddings(app: App, ex: Exchange) -> None:
    principal, body, fields = await _authenticated_body(app, ex)
    request = rq.validate_embeddings(body)
    limits.check_fields(fields, limits.EMBEDDINGS)
    models = _admit(app, ex, principal, request.model, "embeddings")
    guard = app.guardrails_for(principal, ex)
    if guard.requests:
        screen_embeddings_request(guard, app.metrics, fields)
    # Embeddings produce no output tokens.
    charging = _charge(app, ex, principal, models, fields, request.user, None)
    if charging is not None:
        await charging

    async def call(model: Model) -> None:
        upstream = dict(fields)
        upstream["model"] = model.upstream_name_json
        await forward_unary(ex, model, "embeddings", rq.encode_fields(upstream))

    await _route(app, ex, principal, request.model, models, partial(Need, "embeddings"), fields, call)


async def images_generations(app: App, ex: Exchange) -> None:
    """`POST /v1/images/generations` (OpenAI Images) to an image model of any provider that has them."""
    principal, body, fields = await _authenticated_body(app, ex)
    request = rq.validate_images(body)
    limits.check_fields(fields, limits.IMAGES)
    models = _admit(app, ex, principal, request.model, "images")
    guard = app.guardrails_for(principal, ex)
    if guard.requests:
        screen_images_request(guard, app.metrics, fields)
    count, size, quality = request.n or 1, request.size or "auto", request.quality or "auto"
    charging = _charge(
        app, ex, principal, models, fields, request.user, None,
        fees=lambda prices: images_worst_case_micro(prices, size, quality, count),
    )  # fmt: skip
    if charging is not None:
        await charging

    async def call(model: Model) -> None:
        upstream = dict(fields)
        upstream["model"] = model.upstream_name_json
        await forward_images(ex, model, upstream, size, quality)

    await _route(app, ex, principal, request.model, models, partial(Need, "images"), fields, call)


async def list_models(app: App, ex: Exchange) -> None:
    """Exactly the caller's effective set (and the policies that can reach it), so tool dropdowns only offer
    what works; `?view=all` lists the whole catalog, each model marked usable or not, for managers only (the
    bootstrap admin, admin or analyst owners, management keys): a restricted key must not map the catalog."""
    principal = await awaited(app.authenticate(ex))
    ex.key_id = principal.key_id
    if ex.scope.query_string:
        view = dict(parse_qsl(ex.scope.query_string)).get("view", "allowed")
        if view not in ("allowed", "all"):
            raise InvalidRequest("'view' must be 'allowed' or 'all'.", param="view", code="invalid_value")
        if view == "all":
            if not actor_for(principal, app.store).reads_all:
                raise PermissionDenied(
                    "'view=all' lists the whole catalog and is for admins, analysts and management keys; "
                    "GET /v1/models lists the models this API key can use.",
                    param="view",
                    code="insufficient_permissions",
                )
            ex.send_bytes(200, app.catalog.models_body(None, usable=principal.allowed), JSON)
            return
    if principal.models_body is None:
        principal.models_body = app.routing.models_list(principal.allowed.__contains__, principal.key_id)
    ex.send_bytes(200, principal.models_body, JSON)


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    # Stored in a SQLite INTEGER: 64-bit signed.
    rating: Annotated[int, msgspec.Meta(ge=limits.INT64_MIN, le=limits.INT64_MAX)] | None = None
    data: dict[str, Any] | None = None


# 24 random hex digits; 20 to 28 also match the counter-based ids of earlier versions still in the usage log.
_REQUEST_ID = re.compile(r"^req_[0-9a-f]{20,28}$")
# A request answered a moment ago may not have its usage row yet (the writer flushes every 0.25 s by default).
_FEEDBACK_GRACE_SECONDS = 2.0
_FEEDBACK_POLL_SECONDS = 0.1
# Feedback requests waiting out the grace at once, per worker: each polls the database, so beyond this many a
# request for a row not yet written is answered at once (404) instead of adding to the polling.
_FEEDBACK_MAX_WAITING = 64
_feedback_decoder = msgspec.json.Decoder(Feedback)


async def feedback(app: App, ex: Exchange) -> None:
    """`POST /v1/feedback/{request_id}`: a rating and free-form data about an answer, by the key that asked."""
    principal = await awaited(app.authenticate(ex))
    ex.key_id = principal.key_id
    request_id = ex.scope.path.removeprefix("/v1/feedback/")
    if not _REQUEST_ID.match(request_id):
        raise NotFound(
            f"'{request_id}' is not a request id (they look like req_… from x-request-id).", code="request_not_found"
        )
    raw = await app.read_body(ex, 64 * 1024)
    if raw:
        check_json(raw)
    try:
        given = _feedback_decoder.decode(raw or b"{}")
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRequest(f"Invalid feedback: {exc}.", code="invalid_value") from None
    if given.rating is None and not given.data:
        raise InvalidRequest("Send a 'rating' (integer) and/or 'data' (object).", param="rating", code="invalid_value")
    if not await _may_give_feedback(app, principal, request_id):
        raise NotFound(f"No request '{request_id}' made with this API key.", code="request_not_found")
    data = None if given.data is None else msgspec.json.encode(given.data).decode()
    app.store.add_feedback(request_id, principal.key_id, given.rating, data, app.clock())
    ex.send_bytes(201, msgspec.json.encode({"request_id": request_id, "stored": True}), JSON)


async def _may_give_feedback(app: App, principal: Principal, request_id: str) -> bool:
    """Whether the request exists and was made by the caller's key (by anyone's, for a manager: the bootstrap
    admin, an admin or analyst owner, a management key). A request without a usage row yet gets a short grace
    period for the writer to flush it; after that it does not exist."""
    logged = app.store.request_logged(request_id)
    if logged is None and app.feedback_waiting < _FEEDBACK_MAX_WAITING:
        app.feedback_waiting += 1
        try:
            deadline = time.monotonic() + _FEEDBACK_GRACE_SECONDS
            while logged is None and time.monotonic() < deadline:
                await asyncio.sleep(_FEEDBACK_POLL_SECONDS)
                logged = app.store.request_logged(request_id)
        finally:
            app.feedback_waiting -= 1
    if logged is None:
        return False
    return logged[0] == principal.key_id or actor_for(principal, app.store).reads_all


async def healthz(app: App, ex: Exchange) -> None:
    ex.send_bytes(200, b'{"status":"ok"}', JSON)


async def readyz(app: App, ex: Exchange) -> None:
    try:
        app.store.ping()
    except Exception as exc:
        ex.send_bytes(503, b'{"status":"unavailable","database":"unreachable: %s"}' % type(exc).__name__.encode())
        return
    if app.shared is not None and not await app.shared.ping():
        # Budgets cannot be checked (or, failing open, enforced) and changes from other replicas are not seen.
        ex.send_bytes(503, b'{"status":"unavailable","database":"ok","redis":"unreachable"}', JSON)
        return
    if app.shared is not None:
        ex.send_bytes(200, b'{"status":"ready","database":"ok","redis":"ok"}', JSON)
        return
    ex.send_bytes(200, b'{"status":"ready","database":"ok"}', JSON)


async def metrics(app: App, ex: Exchange) -> None:
    """Prometheus text; with `metrics.require_key`, only for the admin key or a key that reads everything."""
    if app.config.metrics.require_key and not actor_for(await awaited(app.authenticate(ex)), app.store).reads_all:
        raise PermissionDenied(
            "/metrics needs the admin key, a management key, or a key of an admin or analyst.",
            code="insufficient_permissions",
        )
    ex.send_bytes(200, app.metrics.render(), CONTENT_TYPE)
