"""The RSGI application: routing, the per-request envelope (ids, errors, metrics, usage), and lifecycle.

One App object per granian worker holds all state: config, catalog, store, key cache, usage writer and
metrics. Nothing lives in module globals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
from granian.rsgi import HTTPProtocol, ProtocolClosed, Scope

from ..admin import openapi
from ..admin import routing as manage_api
from ..alerts import Alerts
from ..config import Config, load_config
from ..errors import DatabaseUnavailable, GatewayError, NotFound, Unauthorized
from ..governance.byok import ByokAdmin
from ..governance.keys import KeyCache, Principal, admin_key_from_env, log_expiry
from ..governance.policies import PolicyAdmin
from ..governance.service import Governance
from ..guardrails.admin import GuardrailAdmin
from ..guardrails.audit import Triggers
from ..guardrails.policy import Policy as GuardrailPolicy
from ..guardrails.stored import GuardrailPolicies
from ..mcp import transport as mcp_transport
from ..mcp.gateway import McpGateway
from ..metrics import Metrics
from ..prompts.applied import PromptSet
from ..prompts.library import PromptAdmin
from ..protocols.caching import Defaults as CachingDefaults
from ..protocols.tools import results_json
from ..providers.byok import MasterKey, OwnKeyring
from ..routing import Catalog, Routing
from ..routing.stored import StoredPolicies
from ..sessions import Sessions
from ..shared import redis_settings
from ..shared.ledger import RedisLedger
from ..shared.state import SharedState
from ..spend.budgets import Spend, budget_gauges
from ..spend.cost import MICRO, cost_micro
from ..spend.ledger import Ledger, ledger_path
from ..store import UsageRow, database_url, open_store
from ..store.spool import Spool, replay, spool_dir
from ..store.usage_writer import UsageWriter
from ..ui import serve as ui
from ..ui.sessions import UiSessions
from . import handlers
from .backpressure import ClientSockets
from .exchange import Exchange, RequestIds
from .limits import AuthFailures, BodyReads

log = logging.getLogger("router.server")

Handler = Callable[["App", Exchange], Awaitable[None]]

# Status logged when the client went away before the answer was complete (nginx's convention).
CLIENT_CLOSED = 499

ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/v1/chat/completions"): ("chat", handlers.chat_completions),
    ("POST", "/v1/embeddings"): ("embeddings", handlers.embeddings),
    ("POST", "/v1/images/generations"): ("images", handlers.images_generations),
    ("POST", "/v1/messages"): ("messages", handlers.messages),
    ("POST", "/v1/messages/count_tokens"): ("count_tokens", handlers.count_tokens),
    ("POST", "/v1/responses"): ("responses", handlers.responses_create),
    ("GET", "/v1/models"): ("models", handlers.list_models),
    ("GET", "/healthz"): ("healthz", handlers.healthz),
    ("GET", "/readyz"): ("readyz", handlers.readyz),
    ("GET", "/metrics"): ("metrics", handlers.metrics),
}
_PATHS = {path for _, path in ROUTES}
# Only the proxied endpoints are logged to the usage table and counted per model.
_USAGE_ENDPOINTS = frozenset({"chat", "embeddings", "images", "messages", "responses"})
# How often each worker looks for keys that expired unused, so `key.expired` is logged even for idle keys.
_EXPIRY_SWEEP_SECONDS = 5.0
# Tests only: a file holding a number of seconds added to the wall clock, to expire keys without waiting.
CLOCK_OFFSET_ENV = "ROUTER_TEST_CLOCK_OFFSET_FILE"


def make_clock(offset_file: str | None) -> Callable[[], float]:
    if not offset_file:
        return time.time

    def clock() -> float:
        try:
            with open(offset_file) as f:
                return time.time() + float(f.read().strip() or 0)
        except FileNotFoundError:
            return time.time()

    return clock


class App:
    def __init__(
        self, config: Config, db_url: str, admin_key: str | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.clock = clock
        # Replicas on several hosts share the change epoch and the budget ledger through Redis.
        settings = redis_settings(config)
        self.shared = SharedState(settings) if settings is not None else None
        self.store = open_store(db_url, signal=self.shared.signal if self.shared is not None else None)
        created = int(time.time())
        self.catalog = Catalog(config, created=created)
        self.keys = KeyCache(
            self.store,
            admin_key,
            self.catalog.provider_of,
            clock,
            refuse_without_database=config.governance.on_database_failure == "refuse",
        )
        self.caching = CachingDefaults(self.store, config.caching.auto_cache)
        self.governance = Governance(
            self.store, self.catalog.provider_of, self.catalog.metadata, clock, self.catalog.details
        )
        self.alerts = Alerts(config.alerts, self.store, clock)
        ledger: Ledger | RedisLedger
        if self.shared is not None:
            ledger = self.shared.make_ledger(self.store.spend_for_period, lambda: self.spend.period(clock()))
        else:
            ledger = Ledger(ledger_path(self.store.path))
        self.spend = Spend(
            self.store,
            ledger,
            config.spend.reset_day,
            notify=self.alerts.budget,
            notify_from_percent=min(config.alerts.budget_thresholds, default=float("inf")),
            fail_open=settings is not None and settings.on_failure == "open",
        )
        self.openapi_body = openapi.document()
        self.metrics = Metrics()
        providers = self.catalog.providers
        self.metrics.upstream_load = lambda: {name: p.load() for name, p in providers.items()}
        if config.spend.export_budgets:
            self.metrics.gauges = lambda: budget_gauges(self.store, self.spend, config.spend.export_budgets, clock())
        self.routing = Routing(config, self.catalog, self.metrics, created)
        # Policies and BYOK keys written through the API: every worker reloads them when the change epoch moves.
        master = MasterKey.from_env()
        keyring = OwnKeyring(self.store, master, self.catalog.providers)
        self.routing.own_keys = keyring.get
        self.keys.on_change += [StoredPolicies(self.store, self.routing, config.policies).load, keyring.load]
        # Guardrail settings too: the organisation's (config file unless stored) and per-key/group overrides.
        self.guardrails = GuardrailPolicies(self.store, config.guardrails)
        self.keys.on_change.append(self.guardrails.load)
        # The prompt library's attachments to keys and groups.
        self.prompts = PromptSet(self.store)
        self.keys.on_change.append(self.prompts.load)
        # The MCP gateway's servers, tools and grants, rebuilt on the same epoch.
        self.mcp = McpGateway(self.store, master, self.metrics, clock, self.guardrails)
        self.keys.on_change.append(self.mcp.load)
        for load in self.keys.on_change:
            load()()
        self.policy_admin = PolicyAdmin(self.store, config, clock)
        self.byok = ByokAdmin(self.store, master, self.catalog.providers, clock)
        self.request_ids = RequestIds()
        self.client_sockets = ClientSockets()
        self.body_reads = BodyReads(config.server.body_read_timeout, config.server.max_pending_bodies)
        self.auth_failures = AuthFailures(config.server.auth_failures)
        # Feedback requests waiting for their request's usage row (handlers.feedback bounds them).
        self.feedback_waiting = 0
        self.guardrail_admin = GuardrailAdmin(self.store, config.guardrails, clock, self.guardrails.compiled)
        self.prompt_admin = PromptAdmin(self.store, clock)
        self.sessions = Sessions(config.sessions)
        # The dashboard (`/ui`): its files, read once, and its login sessions (None: disabled in the config).
        self.ui_sessions = (
            UiSessions(config.dashboard, self.store, self.keys, clock) if config.dashboard.enabled else None
        )
        self.ui_assets = ui.load_assets() if config.dashboard.enabled else {}
        self.usage: UsageWriter | None = None
        self._background: list[asyncio.Task[None]] = []

    def authenticate(self, ex: Exchange) -> Principal | Awaitable[Principal]:
        """The caller's key, unless its address spent its budget of failed authentications (429 then, before
        the key is even looked at, so a blocked guesser learns nothing). Only failures pay for the budget.
        An awaitable when the key is being read from a database server (`KeyCache`); `awaited` settles both."""
        return self.authenticate_key(ex, ex.api_key())

    def authenticate_key(self, ex: Exchange, key: str | None) -> Principal | Awaitable[Principal]:
        """`authenticate` for a key given another way (the dashboard's login form)."""
        failures = self.auth_failures
        if failures.blocked:
            failures.check(ex.scope.client)
        try:
            principal = self.keys.authenticate(key)
        except Unauthorized:
            failures.failed(ex.scope.client)
            raise
        if isinstance(principal, Principal):
            return principal
        return self._counting_failures(ex, principal)

    async def _counting_failures(self, ex: Exchange, reading: Awaitable[Principal]) -> Principal:
        try:
            return await reading
        except Unauthorized:
            self.auth_failures.failed(ex.scope.client)
            raise

    def read_body(self, ex: Exchange, limit: int | None = None) -> Awaitable[bytes]:
        """The request's JSON body, under the size limit, the body read timeout and the cap on unfinished bodies
        (to await: the read itself, no coroutine of its own)."""
        return self.body_reads.read(ex, self.config.server.max_body_bytes if limit is None else limit)

    def guardrails_for(self, principal: Principal, ex: Exchange) -> GuardrailPolicy:
        """The caller's guardrails (the organisation's, tightened by its key's and groups' overrides), counting
        what they find for the request's usage row (read back as audit events)."""
        policy = self.guardrails.for_principal(principal)
        ex.triggers = Triggers()
        return policy.for_request(ex.triggers)

    # -- lifecycle (granian calls these in each worker, outside the running loop) ------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.startup())
        # What startup built lives as long as the worker: take it out of the cyclic collector's sight, and
        # collect rarely. At CPython's default (a collection every 700 net allocations) one ran every few
        # requests, walking every in-flight request's objects: ~40 µs of CPU per request in benches/load.py.
        # Request objects are freed by reference counting; cycles still get collected, just less often.
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.shutdown())

    async def startup(self) -> None:
        if self.shared is not None:
            self.shared.start()
        else:
            self.spend.ledger.attach()
        self.alerts.start()
        for provider in self.catalog.providers.values():
            provider.start()
        cfg = self.config.usage_log
        directory = spool_dir(self.store.path)
        try:
            # Rows a worker that died (and is being replaced by this one) had answered but not committed.
            replay(directory, self.store)
        except Exception:
            log.exception("usage spool replay failed; the files stay for the next start")
        spool = Spool(directory) if cfg.spool and directory is not None else None
        self.usage = UsageWriter(self.store, flush_interval=cfg.flush_interval, batch_size=cfg.batch_size, spool=spool)
        self.usage.start()
        loop = asyncio.get_running_loop()
        if self.metrics.shared:
            self._background.append(loop.create_task(self.metrics.publish()))
        self._background.append(loop.create_task(self._sweep_expired()))
        self.mcp.start()
        self._background.append(loop.create_task(self.body_reads.sweep()))

    async def _sweep_expired(self) -> None:
        while True:
            now = self.clock()
            try:
                for key_id in self.store.expired_unlogged_keys(now):
                    record = self.store.get_key(key_id)
                    if record is not None and record.expires_at is not None:
                        log_expiry(self.store, key_id, record.expires_at, now)
            except DatabaseUnavailable:
                pass  # an outage, which the store logs once; the next sweep catches up
            except Exception:
                log.exception("expired-key sweep failed; retrying in %.0f s", _EXPIRY_SWEEP_SECONDS)
            self.auth_failures.prune()
            await asyncio.sleep(_EXPIRY_SWEEP_SECONDS)

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        await self.alerts.close()
        await self.mcp.close()
        if self.usage is not None:
            await self.usage.close()
            self.usage = None
        for provider in self.catalog.providers.values():
            await provider.close()
        self.keys.close()
        self.store.close()
        if self.shared is not None:
            await self.shared.close()
        else:
            self.spend.ledger.close()
        self.metrics.close()

    # -- requests -----------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":
            return
        route = ROUTES.get((scope.method, scope.path))
        if route is None:
            if scope.path.startswith(manage_api.PREFIX + "/"):
                await self._run(manage_api.dispatch, Exchange(scope, proto, "manage", self.request_ids.new()))
                return
            if scope.path == ui.PREFIX or scope.path.startswith(ui.PREFIX + "/"):
                await self._run(ui.dispatch, Exchange(scope, proto, "ui", self.request_ids.new()))
                return
            if scope.path in mcp_transport.ALL_PATHS:
                await self._run(mcp_transport.handle, Exchange(scope, proto, "mcp", self.request_ids.new()))
                return
            if scope.method == "POST" and scope.path.startswith("/v1/feedback/"):
                await self._run(handlers.feedback, Exchange(scope, proto, "feedback", self.request_ids.new()))
                return
            await self._unrouted(scope, proto)
            return
        endpoint, handler = route
        ex = Exchange(scope, proto, endpoint, self.request_ids.new())
        ex.sockets = self.client_sockets
        if endpoint not in _USAGE_ENDPOINTS:
            await self._run(handler, ex)
            return
        metrics = self.metrics
        metrics.in_flight += 1
        # Accounted (usage row spooled) just before a unary answer is handed to granian; a stream's chunked
        # terminator is written only after this returns, so streams and unanswered requests are accounted here.
        ex.on_answer = self._account
        try:
            await handler(self, ex)  # `_run` inlined: one coroutine less on every proxied request
        except BaseException:
            self._failed(ex)
        finally:
            metrics.in_flight -= 1
            if ex.on_answer is not None:
                ex.on_answer = None
                self._account(ex)

    async def _run(self, handler: Handler, ex: Exchange) -> None:
        try:
            await handler(self, ex)
        except BaseException:
            self._failed(ex)

    def _failed(self, ex: Exchange) -> None:
        """A handler raised (called in the `except` block, so the exception is the one being handled): an
        error answer, or the client gone; what is not the request's own failure goes on up."""
        exc = sys.exception()
        if isinstance(exc, GatewayError):
            if ex.responded:
                raise
            ex.send_error(exc)
        elif isinstance(exc, ProtocolClosed | asyncio.CancelledError):
            ex.status = CLIENT_CLOSED
            ex.error_type = "client_closed"
        elif isinstance(exc, Exception):
            log.exception("unhandled error in %s (request %s)", ex.endpoint, ex.request_id)
            if not ex.responded:
                ex.send_error(GatewayError("The gateway failed to handle this request.", code="internal_error"))
        else:
            raise

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
        # `Exchange.overhead_seconds` at the same instant as `elapsed`: one clock read, no call.
        overhead = elapsed - ex.upstream_seconds - ex.routing_seconds
        if overhead < 0.0:
            overhead = 0.0
        cost, estimated = request_cost(ex)
        # Most requests have no cached tokens and no tool results: no call for them.
        savings = cache_savings(ex) if ex.cached_tokens else None
        if ex.hold is not None:
            self.spend.settle(ex.hold, cost or 0)
        # fmt: off
        self.metrics.observe_request(
            ex.endpoint, model, provider, ex.status, elapsed, overhead,
            ex.upstream_seconds if ex.provider is not None else 0.0, ex.ttft,
            ex.prompt_tokens, ex.completion_tokens, ex.cached_tokens,
            cost / MICRO if cost else 0.0, first_group(ex.budgets) if cost else "",
        )
        # fmt: on
        meta = ex.metadata
        turn = ex.turn
        if turn is not None:
            self.sessions.finish(ex)
        if self.usage is not None:
            # Positional, in column order (checked against `USAGE_COLUMNS` by tests/unit/test_usage_row.py):
            # msgspec matches 37 keyword arguments name by name, ~3 µs per request; positions cost ~0.3 µs.
            self.usage.add(
                UsageRow(
                    ex.request_id,  # request_id
                    time.time(),  # ts
                    ex.key_id,  # key_id
                    ex.endpoint,  # endpoint
                    ex.model,  # model
                    ex.provider,  # provider
                    ex.status,  # status
                    ex.prompt_tokens,  # prompt_tokens
                    ex.completion_tokens,  # completion_tokens
                    ex.cached_tokens,  # cached_tokens
                    elapsed * 1000.0,  # latency_ms
                    ex.ttft * 1000.0 if ex.ttft is not None else None,  # ttft_ms
                    ex.stream,  # stream
                    ex.error_type,  # error_type
                    None if cost is None else cost / MICRO,  # cost
                    estimated,  # cost_estimated
                    savings,  # cache_savings
                    ex.period,  # period
                    " ".join(ex.budgets) or None,  # budgets
                    ex.owner,  # user_id
                    meta.user_id if meta is not None and meta.user_id else ex.end_user,  # end_user
                    meta.trace_id if meta is not None else None,  # trace_id
                    json_text(meta.tags) if meta is not None and meta.tags else None,  # tags
                    json_text(meta.extra) if meta is not None and meta.extra else None,  # extra
                    max(ex.attempts, 1),  # attempt
                    ex.byok,  # byok
                    json_text(ex.tool_calls) if ex.tool_calls else None,  # tool_calls
                    results_json(ex.tool_results) if ex.tool_results else None,  # tool_results
                    ex.reasoning_tokens,  # reasoning_tokens
                    ex.triggers.encoded() if ex.triggers is not None else None,  # guardrails
                    ex.prompt,  # prompt
                    overhead * 1000.0,  # overhead_ms
                    turn.session_id if turn is not None else None,  # session_id
                    turn.branch if turn is not None else None,  # session_branch
                    turn.parent if turn is not None else None,  # session_parent
                )
            )
            for row in ex.attempt_rows:
                self.usage.add(row)


def first_group(budgets: tuple[str, ...]) -> str:
    """The cost metric's group label: the first group the request was charged to ("" for none)."""
    for budget in budgets:
        if budget.startswith("group:"):
            return budget[6:]
    return ""


def json_text(value: object) -> str:
    return msgspec.json.encode(value).decode()


def request_cost(ex: Exchange) -> tuple[int | None, bool]:
    """Micro-dollars the request cost, and whether that is an estimate (a stream cut off before its usage:
    the prompt at ~4 bytes per token, one token per content event seen)."""
    if ex.prices is None:
        return None, False
    prompt, completion = ex.prompt_tokens, ex.completion_tokens
    if prompt is None and completion is None:
        if not (ex.stream and ex.events_seen):
            return ex.fees_micro, False
        return cost_micro(ex.prices, ex.body_bytes // 4, ex.events_seen) + ex.fees_micro, True
    return cost_micro(ex.prices, prompt or 0, completion or 0, ex.cached_tokens or 0) + ex.fees_micro, False


def cache_savings(ex: Exchange) -> float | None:
    """USD saved by cached prompt tokens billed at the cached rate instead of the input rate."""
    prices = ex.prices
    if prices is None or not ex.cached_tokens or prices.cached_input is None:
        return None
    return ex.cached_tokens * (prices.input - prices.cached_input) / MICRO


def create_app() -> App:
    """The granian factory: each worker builds its own App from the environment `router serve` set."""
    config = load_config()
    clock = make_clock(os.environ.get(CLOCK_OFFSET_ENV))
    return App(config, database_url(config.database), admin_key_from_env(), clock)
