"""Running a request through its route: one model, or a policy's targets attempt by attempt.

`Routing.run` is handed a `call(model)` that forwards the request to one model and sends the answer
(the proxy functions). For a direct model it calls it once. For `policy/<name>` it walks the policy's
targets in the policy's order (fallback: as configured; load_balance: weighted rendezvous on the trace
key; latency: fastest first, from the Rust tracker), nested policies expanded in place, and:
- skips, without a call, a target that cannot serve the request (endpoint, streaming, tools, vision,
  context window), one outside the caller's allowed set (`allowed`), and one whose circuit is open;
- retries a target up to its `retries` on retryable failures (429, 5xx, timeouts, broken connections, a
  stream that died before its first byte), after an exponential backoff with jitter, or the upstream's
  retry-after when that is longer; other upstream answers (400, 401, 403, 404, 413, 422) move on at once;
- stops at the first success, or once a stream has started (after the first byte nothing can be undone:
  the proxy ends a broken stream with an error event);
- when everything failed, raises the last upstream error, its message listing the attempts.
Each attempt feeds the circuit breaker and the latency tracker, is counted in /metrics, and every attempt
but the last gets its own usage row (the last is the request's own row), all under one request id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import msgspec

from .._core import LatencyTracker
from ..config import Config, PolicyConfig, RoutingConfig
from ..errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from ..protocols import web_search
from ..store import UsageRow
from .breaker import Breaker
from .catalog import Catalog, Model
from .credentials import Credential, OwnKeys, credentials_for, switches_key
from .policies import Policy, PolicySet, Target, check_policies, check_scopes, is_policy

if TYPE_CHECKING:
    from ..metrics import Metrics
    from ..server.exchange import Exchange
    from ..server.requests import Metadata

log = logging.getLogger("router.routing")

Call = Callable[[Model], Awaitable[None]]
Allowed = Callable[[str], bool]

# Failures without an upstream status that are worth another try: the transport's and the stream's.
_RETRYABLE_CODES = frozenset(
    {
        "upstream_timeout",
        "upstream_unreachable",
        "upstream_connection_error",
        "upstream_stream_incomplete",
        "upstream_invalid_stream",
        "upstream_invalid_response",
    }
)


def is_retryable(exc: GatewayError) -> bool:
    status = exc.upstream_status
    if status is not None:
        return status in (408, 429) or status >= 500
    return exc.code in _RETRYABLE_CODES


def retry_after_seconds(exc: GatewayError) -> float | None:
    """The upstream's retry-after in seconds (the delta form; an HTTP date is ignored)."""
    value = exc.retry_after
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


class Need:
    """What the request asks of the model that serves it; policy targets lacking any of it are skipped."""

    __slots__ = ("endpoint", "search", "stream", "tokens", "tools", "vision")

    def __init__(
        self,
        endpoint: str,
        *,
        stream: bool = False,
        tools: bool = False,
        vision: bool = False,
        tokens: int = 0,
        search: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.stream = stream
        self.tools = tools
        self.vision = vision
        self.tokens = tokens
        self.search = search

    @classmethod
    def chat(cls, body: bytes, fields: dict[str, msgspec.Raw], stream: bool) -> Need:
        tools = fields.get("tools")
        return cls(
            "chat",
            stream=stream,
            tools=tools is not None and bytes(tools).strip() not in (b"null", b"[]"),
            # A byte search instead of decoding every message: the key only appears unescaped in image parts
            # (or as a tool parameter's name, which at worst skips a model without vision).
            vision=b'"image_url"' in body,
            # ~4 bytes of JSON per token: an upper-side estimate, enough to rule out a far too small window.
            tokens=len(body) // 4,
            search=web_search.requested(fields),
        )

    def problem(self, model: Model) -> str | None:
        """Why `model` cannot serve this request, or None."""
        caps = model.config.capabilities
        if endpoint_kind(self.endpoint) not in model.endpoints:
            return f"is not a {self.endpoint} model"
        if self.stream and "streaming" not in caps:
            return "does not support streaming"
        if self.tools and "tools" not in caps:
            return "does not support tools"
        if self.vision and "vision" not in caps:
            return "does not support images"
        if self.search and "web_search" not in caps:
            return "cannot search the web"
        window = model.config.context_window
        if window is not None and self.tokens > window:
            return f"has a context window of {window} tokens, the request is ~{self.tokens}"
        return None


_user_decoder = msgspec.json.Decoder(str | None)


def trace_key(metadata: Metadata | None, fields: dict[str, msgspec.Raw], request_id: str) -> str:
    """The load-balancing key: the request metadata's trace_id (`requesty` in the body, or the
    x-router-metadata header, already decoded and checked), else its user_id, else `user`, else the request id."""
    if metadata is not None:
        if metadata.trace_id:
            return metadata.trace_id
        if metadata.user_id:
            return metadata.user_id
    user = fields.get("user")
    if user is not None:
        try:
            value = _user_decoder.decode(user)
        except msgspec.DecodeError:
            raise InvalidRequest("Invalid 'user': expected a string.", param="user", code="invalid_type") from None
        if value:
            return value
    return request_id


def resolve_model(catalog: Catalog, model_id: str, endpoint: str) -> Model:
    model = catalog.get(model_id)
    if model is None:
        raise NotFound(
            f"The model '{model_id}' does not exist or you do not have access to it. "
            "List the models you can use with GET /v1/models.",
            param="model",
            code="model_not_found",
        )
    _check_kind(model_id, model.endpoints, endpoint)
    return model


def endpoint_kind(endpoint: str) -> str:
    """The kind of model an endpoint needs: `embeddings`, `images`, or `chat` (chat, Messages, Responses)."""
    return endpoint if endpoint in ("embeddings", "images") else "chat"


_KIND_NAMES = {"embeddings": "an embeddings", "images": "an image generation", "chat": "a chat"}
_ENDPOINT_PATHS = {"images": "images/generations", "messages/count_tokens": "messages/count_tokens"}


def _check_kind(model_id: str, endpoints: frozenset[str], endpoint: str) -> None:
    if endpoint_kind(endpoint) not in endpoints:
        kind = _KIND_NAMES["embeddings" if "embeddings" in endpoints else "images" if "images" in endpoints else "chat"]
        path = _ENDPOINT_PATHS.get(endpoint, endpoint)
        raise InvalidRequest(
            f"The model '{model_id}' is {kind} model and cannot be used with /v1/{path}.",
            param="model",
            code="model_not_supported",
        )


class Routing:
    """The routing state of one worker: the policy set, circuit breaker and latency windows."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        metrics: Metrics,
        created: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        uniform: Callable[[], float] = random.random,
        latency: LatencyTracker | None = None,
    ) -> None:
        self.settings: RoutingConfig = config.routing
        self.catalog = catalog
        self.metrics = metrics
        self.created = created
        self.clock = clock
        self.sleep = sleep
        self.uniform = uniform
        self._models = list(config.models)
        self.breaker = Breaker(self.settings.breaker_failures, self.settings.breaker_cooldown, clock)
        metrics.registry.register(self.breaker)
        self.latency = latency or LatencyTracker(explore=self.settings.explore, refresh=self.settings.refresh)
        # The organisation's BYOK keys by provider (set by the app once it has a master key); None: none at all.
        self.own_keys: OwnKeys | None = None
        self._install(PolicySet(config.policies, catalog, created))

    # -- the policy set -----------------------------------------------------------------------------

    def replace_policies(
        self, policies: list[PolicyConfig], source: str = "policy update", scopes: Mapping[str, str] | None = None
    ) -> None:
        """Check a whole new policy set (`scopes`: policy name → the one key that may use it) and swap it in;
        the next request uses it. Raises ConfigError."""
        check_policies(policies, self._models, source)
        check_scopes(policies, scopes or {}, source)
        self._install(PolicySet(policies, self.catalog, self.created, scopes))

    def _install(self, policies: PolicySet) -> None:
        # Swapped whole: a request that already holds a Policy finishes with the set it started with.
        self._model_infos = [m.info(self.created) for m in self.catalog.models.values()]
        self._models_list_body = self._list_body(None, policies, None)
        self.policies = policies

    def models_list(self, allowed: Allowed | None = None, key_id: str | None = None) -> bytes:
        """The `GET /v1/models` body: the models `allowed` admits (None: all, precomputed), and the policies
        (org-wide, or the key's own) that can reach at least one of them."""
        if allowed is None and key_id not in self.policies.scoped:
            return self._models_list_body
        return self._list_body(allowed, self.policies, key_id)

    def _list_body(self, allowed: Allowed | None, policies: PolicySet, key_id: str | None) -> bytes:
        models = [m for m in self._model_infos if allowed is None or allowed(m.id)]
        usable = []
        for info in policies.infos:
            policy = policies.get(info.id, key_id)
            if policy is not None and (allowed is None or any(allowed(m.id) for m in policy.leaves())):
                usable.append(info)
        return msgspec.json.encode({"object": "list", "data": [*models, *usable]})

    # -- running a request --------------------------------------------------------------------------

    async def run(
        self,
        ex: Exchange,
        model_id: str,
        need: Need,
        fields: dict[str, msgspec.Raw],
        call: Call,
        allowed: Allowed | None = None,
    ) -> None:
        """Serve the request with `model_id` (a model or `policy/<name>`); `allowed` is the governance hook:
        the models the caller's key may use (None: all)."""
        if not is_policy(model_id):
            model = resolve_model(self.catalog, model_id, need.endpoint)
            if allowed is not None and not allowed(model.id):
                raise PermissionDenied(
                    f"The model '{model_id}' is not allowed for this API key.", param="model", code="model_not_allowed"
                )
            await self.direct(ex, model, call)
            return
        policy = self.policies.get(model_id, ex.key_id)
        if policy is None:
            defined = self.policies.defined(ex.key_id)
            raise NotFound(
                f"The policy '{model_id}' does not exist (defined: {defined}).", param="model", code="model_not_found"
            )
        _check_kind(model_id, policy.endpoints, need.endpoint)
        await self._policy(ex, policy, need, fields, call, allowed)

    async def direct(self, ex: Exchange, model: Model, call: Call) -> None:
        """Serve with one model the caller may use (resolved and checked already)."""
        ex.attempts = 1
        ex.model = model.id
        ex.provider = model.provider.name
        ex.last_attempt = True  # no fallback: the client's body goes once the upstream's is built
        started = ex.started
        try:
            await call(model)
        except GatewayError as exc:
            if is_retryable(exc):
                self.breaker.failed(model.id, retry_after_seconds(exc))
                self.latency.record_failure(model.id, time.perf_counter() - started, self.clock())
            raise
        self._finished(ex, model, started, ())

    async def _policy(
        self,
        ex: Exchange,
        policy: Policy,
        need: Need,
        fields: dict[str, msgspec.Raw],
        call: Call,
        allowed: Allowed | None,
    ) -> None:
        key: list[str] = []  # the trace key, computed once and only for load balancing

        def trace() -> str:
            if not key:
                key.append(trace_key(ex.metadata, fields, ex.request_id))
            return key[0]

        tried: set[str] = set()
        skipped: list[tuple[str, str]] = []
        failures: list[tuple[str, GatewayError]] = []
        previous: float | None = None
        for target, path in self._targets(policy, trace, ()):
            model = target.model
            assert model is not None
            if model.id in tried:
                continue
            problem = need.problem(model)
            if problem is None and allowed is not None and not allowed(model.id):
                problem = "is not allowed for this API key"
            keys = credentials_for(target.key_strategy, model.provider.name, self.own_keys)
            if problem is None and not keys:
                problem = f"needs the organisation's own key for '{model.provider.name}' (none stored)"
            if problem is not None:
                self._skip(policy, model, problem, skipped)
                continue
            tried.add(model.id)
            for retry in range(target.retries + 1):
                if retry:
                    delay = self._delay(retry - 1, failures[-1][1])
                    if delay is None:
                        break
                    await self.sleep(delay)
                if not self.breaker.available(model.id):
                    self._skip(policy, model, "is cooling down after repeated failures", skipped)
                    break
                for credential in keys:
                    if previous is not None:
                        # Earlier attempts and backoff are neither upstream time of the answer nor gateway overhead.
                        ex.routing_seconds += time.perf_counter() - previous
                        self._log_attempt(ex, failures[-1][1], len(failures))
                    previous = time.perf_counter()
                    failure = await self._attempt(ex, policy, model, call, path, credential)
                    if failure is None:
                        return
                    failures.append((model.id, failure))
                    # The other key (BYOK or the gateway's) may well work where this one was refused or limited.
                    if not switches_key(failure):
                        break
                if not is_retryable(failures[-1][1]):
                    break
        raise self._exhausted(policy, failures, skipped)

    def _targets(
        self, policy: Policy, trace: Callable[[], str], path: tuple[str, ...]
    ) -> Iterator[tuple[Target, tuple[str, ...]]]:
        """The model targets of `policy` in the order to try them, nested policies expanded in place."""
        if policy.kind == "fallback":
            order: Iterator[int] | list[int] = iter(range(len(policy.targets)))
        elif policy.kind == "load_balance":
            assert policy.balancer is not None
            # Best first: the weighted pick, then the failover order that keeps other traces where they are.
            order = policy.balancer.rank(trace())
        else:
            order = self.latency.order(policy.names, self.clock())
        for i in order:
            target = policy.targets[i]
            if target.policy is None:
                yield target, path
            else:
                yield from self._targets(target.policy, trace, (*path, target.name))

    async def _attempt(
        self, ex: Exchange, policy: Policy, model: Model, call: Call, path: tuple[str, ...], credential: Credential
    ) -> GatewayError | None:
        """One call to one model with one provider key; the error when it failed before anything reached the
        client, else None."""
        ex.attempts += 1
        ex.model = model.id
        ex.provider = model.provider.name
        ex.upstream_auth = credential.headers
        ex.byok = credential.byok
        started = time.perf_counter()
        try:
            await call(model)
        except GatewayError as exc:
            if ex.responded:
                raise
            retryable = is_retryable(exc)
            self.metrics.count_attempt(policy.id, model.id, "error" if retryable else "rejected")
            if retryable:
                self.breaker.failed(model.id, retry_after_seconds(exc))
                self.latency.record_failure(model.id, time.perf_counter() - started, self.clock())
            else:
                # The target answered; the request was the problem. Not a health signal.
                self.breaker.released(model.id)
            return exc
        except BaseException:
            self.breaker.released(model.id)
            raise
        self.metrics.count_attempt(policy.id, model.id, "ok" if ex.error_type is None else "broken_stream")
        self._finished(ex, model, started, path)
        return None

    def _finished(self, ex: Exchange, model: Model, started: float, path: tuple[str, ...]) -> None:
        """Feed the breaker and the latency windows with a call that returned (a stream may have broken)."""
        now = self.clock()
        if ex.error_type is not None:
            # The stream broke after its first byte: the client got an error event.
            self.breaker.failed(model.id)
            self.latency.record_failure(model.id, time.perf_counter() - started, now)
            return
        self.breaker.succeeded(model.id)
        if ex.stream:
            # Time to first token of this attempt (ex.ttft counts from the request's arrival).
            seconds = ex.ttft - (started - ex.started) if ex.ttft is not None else time.perf_counter() - started
        else:
            seconds = ex.upstream_seconds
        self.latency.record(model.id, seconds, now)
        for name in path:
            self.latency.record(name, seconds, now)

    def _delay(self, retry: int, failure: GatewayError) -> float | None:
        """Seconds to wait before retry number `retry` (0-based); None: the upstream asks for too long."""
        s = self.settings
        delay = min(s.backoff_initial * s.backoff_factor**retry, s.backoff_max)
        delay *= 1.0 + s.jitter * (2.0 * self.uniform() - 1.0)
        after = retry_after_seconds(failure)
        if after is not None and after > delay:
            if after > s.max_retry_after:
                return None
            delay = after
        return delay

    def _skip(self, policy: Policy, model: Model, problem: str, skipped: list[tuple[str, str]]) -> None:
        log.info("%s: skipped %s: it %s", policy.id, model.id, problem)
        self.metrics.count_attempt(policy.id, model.id, "skipped")
        skipped.append((model.id, problem))

    def _log_attempt(self, ex: Exchange, failure: GatewayError, number: int) -> None:
        """The usage row of a failed attempt, written when another attempt follows it."""
        ex.attempt_rows.append(
            UsageRow(
                request_id=ex.request_id,
                ts=time.time(),
                key_id=ex.key_id,
                endpoint=ex.endpoint,
                model=ex.model,
                provider=ex.provider,
                # What the upstream answered (401 from a refused key), not what a caller would have been sent.
                status=failure.upstream_status or failure.status,
                latency_ms=ex.upstream_seconds * 1000.0,
                stream=ex.stream,
                error_type=failure.code or failure.type,
                attempt=number,
                byok=ex.byok,
            )
        )

    def _exhausted(
        self, policy: Policy, failures: list[tuple[str, GatewayError]], skipped: list[tuple[str, str]]
    ) -> GatewayError:
        if failures:
            last = failures[-1][1]
            tried = ", ".join(f"{model} ({exc.upstream_status or exc.code})" for model, exc in failures)
            skips = f"; skipped {', '.join(m for m, _ in skipped)}" if skipped else ""
            last.message = f"{last.message} [{policy.id}: every target failed; attempts: {tried}{skips}]"
            return last
        reasons = "; ".join(f"{model} {problem}" for model, problem in skipped)
        if all(problem == "is not allowed for this API key" for _, problem in skipped):
            return PermissionDenied(
                f"None of the models of '{policy.id}' is allowed for this API key.",
                param="model",
                code="model_not_allowed",
            )
        cooling = [m for m, problem in skipped if problem.startswith("is cooling down")]
        if cooling:
            wait = max(1, round(min(self.breaker.retry_in(m) for m in cooling)))
            return GatewayError(
                f"Every target of '{policy.id}' that could serve this request is unavailable: {reasons}.",
                status=503,
                type="service_unavailable",
                code="policy_targets_unavailable",
                headers=[("retry-after", str(wait))],
            )
        return InvalidRequest(
            f"No target of '{policy.id}' can serve this request: {reasons}.", param="model", code="no_capable_target"
        )
