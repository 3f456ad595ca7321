"""The RSGI application: routing, the per-request envelope (ids, errors, metrics, usage), and lifecycle.

One App object per granian worker holds all state: config, catalog, store, key cache, usage writer and
metrics. Nothing lives in module globals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

from granian.rsgi import HTTPProtocol, ProtocolClosed, Scope

from ..config import Config, load_config
from ..errors import GatewayError, NotFound
from ..governance.keys import KeyCache
from ..guardrails.policy import Policy
from ..guardrails.settings import GuardrailSettings
from ..metrics import Metrics
from ..routing import Catalog
from ..store import UsageRow, database_url, open_store
from ..store.usage_writer import UsageWriter
from . import handlers
from .exchange import Exchange, RequestIds

log = logging.getLogger("router.server")

Handler = Callable[["App", Exchange], Awaitable[None]]

# Status logged when the client went away before the answer was complete (nginx's convention).
CLIENT_CLOSED = 499

ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/v1/chat/completions"): ("chat", handlers.chat_completions),
    ("POST", "/v1/embeddings"): ("embeddings", handlers.embeddings),
    ("GET", "/v1/models"): ("models", handlers.list_models),
    ("GET", "/healthz"): ("healthz", handlers.healthz),
    ("GET", "/readyz"): ("readyz", handlers.readyz),
    ("GET", "/metrics"): ("metrics", handlers.metrics),
}
_PATHS = {path for _, path in ROUTES}
# Only the proxied endpoints are logged to the usage table and counted per model.
_USAGE_ENDPOINTS = frozenset({"chat", "embeddings"})


class App:
    def __init__(self, config: Config, db_url: str, admin_key: str | None) -> None:
        self.config = config
        self.store = open_store(db_url)
        self.catalog = Catalog(config, created=int(time.time()))
        self.keys = KeyCache(self.store, admin_key)
        self.metrics = Metrics()
        self.request_ids = RequestIds()
        self.guardrails = Policy(config.guardrails)
        self.usage: UsageWriter | None = None
        self._background: list[asyncio.Task[None]] = []

    def set_guardrails(self, settings: GuardrailSettings) -> None:
        """Replace the organisation's guardrail settings; the next request uses them."""
        self.guardrails = Policy(settings)

    # -- lifecycle (granian calls these in each worker, outside the running loop) ------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.shutdown())

    async def startup(self) -> None:
        for provider in self.catalog.providers.values():
            provider.start()
        cfg = self.config.usage_log
        self.usage = UsageWriter(self.store, flush_interval=cfg.flush_interval, batch_size=cfg.batch_size)
        self.usage.start()
        if self.metrics.shared:
            self._background.append(asyncio.get_running_loop().create_task(self.metrics.publish()))

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        if self.usage is not None:
            await self.usage.close()
            self.usage = None
        for provider in self.catalog.providers.values():
            await provider.close()
        self.store.close()
        self.metrics.close()

    # -- requests -----------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":
            return
        route = ROUTES.get((scope.method, scope.path))
        if route is None:
            await self._unrouted(scope, proto)
            return
        endpoint, handler = route
        ex = Exchange(scope, proto, endpoint, self.request_ids.new())
        if endpoint not in _USAGE_ENDPOINTS:
            await self._run(handler, ex)
            return
        metrics = self.metrics
        metrics.in_flight += 1
        try:
            await self._run(handler, ex)
        finally:
            metrics.in_flight -= 1
            self._account(ex)

    async def _run(self, handler: Handler, ex: Exchange) -> None:
        try:
            await handler(self, ex)
        except GatewayError as exc:
            if ex.responded:
                raise
            ex.send_error(exc)
        except (ProtocolClosed, asyncio.CancelledError):
            ex.status = CLIENT_CLOSED
            ex.error_type = "client_closed"
        except Exception:
            log.exception("unhandled error in %s (request %s)", ex.endpoint, ex.request_id)
            if not ex.responded:
                ex.send_error(GatewayError("The gateway failed to handle this request.", code="internal_error"))

    async def _unrouted(self, scope: Scope, proto: HTTPProtocol) -> None:
        ex = Exchange(scope, proto, "unrouted", self.request_ids.new())
        if scope.path in _PATHS:
            allowed = sorted(m for m, p in ROUTES if p == scope.path)
            error = GatewayError(
                f"Method {scope.method} is not allowed on {scope.path}; use {', '.join(allowed)}.",
                status=405,
                type="invalid_request_error",
                code="method_not_allowed",
                headers=[("allow", ", ".join(allowed))],
            )
        else:
            error = NotFound(f"Unknown route: {scope.method} {scope.path}.", code="unknown_route")
        ex.send_error(error)

    def _account(self, ex: Exchange) -> None:
        elapsed = time.perf_counter() - ex.started
        model = ex.model or "unknown"
        provider = ex.provider or "none"
        metrics = self.metrics
        metrics.observe_request(ex.endpoint, model, provider, ex.status, elapsed, ex.overhead_seconds())
        if ex.provider is not None and ex.upstream_seconds:
            metrics.observe_upstream(provider, model, ex.upstream_seconds)
        if ex.ttft is not None:
            metrics.observe_ttft(provider, model, ex.ttft)
        metrics.count_tokens(model, ex.prompt_tokens, ex.completion_tokens, ex.cached_tokens)
        if self.usage is not None:
            self.usage.add(
                UsageRow(
                    request_id=ex.request_id,
                    ts=time.time(),
                    key_id=ex.key_id,
                    endpoint=ex.endpoint,
                    model=ex.model,
                    provider=ex.provider,
                    status=ex.status,
                    prompt_tokens=ex.prompt_tokens,
                    completion_tokens=ex.completion_tokens,
                    cached_tokens=ex.cached_tokens,
                    latency_ms=elapsed * 1000.0,
                    ttft_ms=ex.ttft * 1000.0 if ex.ttft is not None else None,
                    stream=ex.stream,
                    error_type=ex.error_type,
                )
            )


def create_app() -> App:
    """The granian factory: each worker builds its own App from the environment `router serve` set."""
    config = load_config()
    return App(config, database_url(config.database), os.environ.get("ROUTER_ADMIN_KEY") or None)
