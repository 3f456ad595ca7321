"""The configuration file: one YAML document decoded into msgspec Structs.

Errors name the file, the key path and what was expected, because a gateway that refuses to start
must say exactly which line to fix. Secrets are referenced as ``env:VAR`` (or ``env:VAR:-default``)
and resolved at load time, so the file itself can be committed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from .errors import ConfigError
from .guardrails.settings import GuardrailSettings, problems

DEFAULT_CONFIG = Path(__file__).with_name("demo.yaml")

Capability = Literal[
    "streaming", "tools", "vision", "reasoning", "caching", "embeddings", "json_mode", "images", "web_search"
]  # fmt: skip
# Provider kinds that serve `POST /v1/images/generations` (a model with the `images` capability must use one).
IMAGE_KINDS = ("openai", "azure", "gemini", "vertex")


class Timeouts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Upstream timeouts in seconds."""

    connect: float = 5.0
    # Reasoning models can think for minutes before the first byte.
    first_byte: float = 120.0
    idle_read: float = 60.0
    total: float = 600.0


class Prices(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """USD per million tokens (and per request, where a model charges one)."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None
    per_request: float = 0.0
    # USD per generated image, by `<size>/<quality>` (`1024x1024/high`); `<size>/*`, `*/<quality>` and `*` match
    # any size or quality (spend/cost.py `image_price`).
    images: dict[str, float] = {}
    # USD per server-side web search the provider bills (Anthropic's web search tool, Gemini grounding).
    per_search: float = 0.0


class ModelConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    upstream_model: str | None = None
    region: str = "global"
    zdr: bool = False
    # None: take the price from the shipped catalog (spend/prices.yaml) by upstream model name, if it is there.
    prices: Prices | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: list[Capability] = msgspec.field(default_factory=lambda: ["streaming"])
    description: str | None = None
    # Also serve it as `coding/<name>`: auto caching and reasoning-model fixes (docs/coding-models.md).
    coding: bool = False
    # The provider serving it, when the id does not start with the provider's name (`coding/` models).
    provider: str | None = None

    @property
    def provider_name(self) -> str:
        return self.provider or self.id.partition("/")[0]


class ProviderConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Required, except for kinds with a default endpoint (bedrock: https://bedrock-runtime.{region}.amazonaws.com,
    # gemini: https://generativelanguage.googleapis.com/v1beta, vertex: https://{location}-aiplatform.googleapis.com/v1).
    base_url: str = ""
    # The upstream wire format: OpenAI chat completions, Anthropic Messages, OpenAI Responses, or a native one
    # (docs/providers.md).
    kind: Literal["openai", "anthropic", "openai-responses", "bedrock", "gemini", "vertex", "azure"] = "openai"
    api_key: str | None = None
    # Azure OpenAI authenticates with `api-key: <key>` instead of a bearer token.
    auth_header: str = "authorization"
    headers: dict[str, str] = {}
    # Set for Azure OpenAI: requests go to /openai/deployments/<model>/... ?api-version=<this>.
    azure_api_version: str | None = None
    # Azure: the generation API of this provider's models, chat completions on each deployment or the Responses
    # API (`/openai/responses`, the deployment as `model`).
    azure_api: Literal["chat", "responses"] = "chat"
    # Azure Entra ID (client-credentials grant) instead of an api-key: the app registration's tenant, client id
    # and secret; the token URL defaults to https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token.
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: str | None = None
    azure_token_url: str | None = None
    azure_scope: str = "https://cognitiveservices.azure.com/.default"
    # Azure Entra ID through the Azure resource's managed identity (no secret): system-assigned, or the
    # user-assigned identity `azure_client_id` names. Tokens come from the Instance Metadata Service, or from
    # IDENTITY_ENDPOINT on App Service and Container Apps.
    azure_managed_identity: bool = False
    timeouts: Timeouts | None = None
    # Requests in flight to this provider per worker. None (the default): no cap, the pool grows with the load
    # (an LLM call holds its connection for seconds, so any fixed pool size becomes a hidden throughput
    # ceiling). With a cap, a request beyond it waits up to `pool_wait` seconds for a free slot, then gets 503
    # `upstream_overloaded` with retry-after (a routing policy moves on to its next target).
    max_connections: int | None = None
    pool_wait: float = 5.0
    # Bedrock: the region of models without an `@<region>` suffix, and AWS credentials (else AWS_* variables).
    # Vertex: the location (default global), the project, and a service-account key (a file path or the JSON).
    region: str | None = None
    project: str | None = None
    service_account: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    # Bedrock: Converse for every model family, or InvokeModel with Anthropic's own Messages body.
    bedrock_api: Literal["converse", "invoke"] = "converse"
    # Gemini, Vertex AI and Bedrock take images and PDFs as bytes: the gateway fetches URL ones, at most
    # `fetch_max_bytes` each within `fetch_timeout` seconds (redirects included), and never from loopback,
    # private or link-local addresses unless `fetch_private_urls` (tests, or an intranet image store).
    fetch_private_urls: bool = False
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_timeout: float = 10.0


class AuthFailuresConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A per-client-address budget of failed authentications (server/limits.py), per worker."""

    enabled: bool = True
    # This many failures, each within `window` seconds of the last, block the address for `backoff_initial`
    # seconds; every further failure doubles the block, up to `backoff_max`.
    max_failures: int = 10
    window: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    # Loopback clients are not limited: behind a reverse proxy on the same host every client shares its
    # address, and one of them would lock all the others out (limit at the proxy then).
    exempt_loopback: bool = True
    # Addresses remembered at once; the least recently failing are forgotten first.
    max_tracked: int = 10_000


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_body_bytes: int = 10 * 1024 * 1024
    # Seconds a request body may take to arrive whole (408 after), and bodies unfinished at once per worker
    # (503 with retry-after beyond): a client that never finishes its body holds nothing for long.
    body_read_timeout: float = 30.0
    max_pending_bodies: int = 256
    auth_failures: AuthFailuresConfig = AuthFailuresConfig()


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Off by default: Prometheus scrapes without credentials, and the gateway listens on loopback unless told
    # otherwise. Turn it on when /metrics is reachable by others (it names models, providers, groups, budgets).
    require_key: bool = False


class UsageLogConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Short batches: each flush is a burst of CPU, and smaller bursts keep tail latency down.
    flush_interval: float = 0.25
    batch_size: int = 512
    # Each row also goes to a per-worker file beside the database before its answer leaves, so a worker
    # killed before the next flush loses none (store/spool.py).
    spool: bool = True


class GovernanceConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Deny by default from the first request: nothing is callable until an admin approves it.
    require_approval: bool = False
    # While the database (PostgreSQL) cannot be reached: "serve_cached" keeps serving the keys a worker has
    # already checked, from the governance it loaded last (keys it has not seen yet get 503); "refuse" answers
    # every request 503 database_unavailable until the database is back.
    on_database_failure: Literal["serve_cached", "refuse"] = "serve_cached"


class SpendConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Budgets reset at 00:00 UTC on this day of each month.
    reset_day: int = 1
    # The organisation's monthly budget in USD (the management API can change it).
    org_monthly_limit: float | None = None
    # Request metadata (`requesty` body field or `x-router-metadata` header), encoded, at most this size.
    max_metadata_bytes: int = 4096
    # A YAML file of prices by upstream model name, replacing the shipped one.
    prices_file: str | None = None
    # Budgets exported as Prometheus gauges: "org", "group:<name>", "user:<email>", "key:<name>". Only
    # these, so the metric's cardinality is this list's length.
    export_budgets: list[str] = []


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # redis://[user:password@]host:port/db, rediss:// (TLS) or unix:///path; use env:VAR for a password.
    # ROUTER_REDIS wins over it. Set, it replaces the memory-mapped ledger and change signal beside the
    # database, so replicas on several hosts share budgets and see each other's changes.
    url: str
    # When Redis cannot be reached: "closed" refuses requests of keys with a spend limit (503
    # budget_store_unavailable); "open" serves them without checking the limit (their spend is still logged).
    on_failure: Literal["closed", "open"] = "closed"
    # Each worker reads the shared epoch this often (seconds), catching notifications it missed.
    check_interval: float = 1.0
    # Seconds to wait for Redis on a request before treating it as unavailable.
    timeout: float = 0.5


class Webhook(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: str
    # HMAC-SHA256 key for the `x-router-signature` header (use env:VAR).
    secret: str
    # Which alert kinds to send here (budget, error_rate, latency); empty: all.
    kinds: list[str] = []


class RateAlert(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    threshold: float
    window_minutes: int = 5
    # Too few requests say nothing about a rate.
    min_requests: int = 20


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Percentages of a budget's monthly limit; each fires once per budget and period.
    budget_thresholds: list[float] = msgspec.field(default_factory=lambda: [50.0, 80.0, 100.0])
    error_rate: RateAlert | None = None  # fraction of requests answered >= 400 in the window
    latency_p95_ms: RateAlert | None = None  # p95 latency in the window, milliseconds
    webhooks: list[Webhook] = []
    check_interval: float = 15.0
    retries: int = 5
    # Delay before the first retry; each further retry waits twice as long.
    retry_base_seconds: float = 1.0


class PolicyTarget(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One target of a routing policy: a model id, or another policy (`policy: name` or `model: policy/name`)."""

    model: str | None = None
    policy: str | None = None
    weight: float = 1.0
    retries: int = 0
    # Whose provider key pays: the gateway's configured one, the organisation's BYOK key, or one then the other
    # (the second is tried when the first gets 401, 403 or 429). See routing/credentials.py.
    key_strategy: Literal["router", "own", "router_then_own", "own_then_router"] = "router"


class PolicyConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A routing policy, addressed as the model `policy/<name>` (checked in routing/policies.py)."""

    name: str
    type: Literal["fallback", "load_balance", "latency"]
    targets: list[PolicyTarget]


class RoutingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How policies retry, back off, cool down failing targets and explore for latency routing."""

    # Retry delays: backoff_initial * backoff_factor**n, capped at backoff_max, ±jitter (500 ms → 1 s → 2 s → 4 s).
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 4.0
    jitter: float = 0.1
    # An upstream retry-after longer than the backoff is waited for, up to this; longer moves to the next target.
    max_retry_after: float = 10.0
    # Circuit breaker: after this many retryable failures in a row a target is skipped for the cooldown.
    breaker_failures: int = 3
    breaker_cooldown: float = 5.0
    # Latency routing: share of requests that try a target with too few samples first.
    explore: float = 0.07
    # Latency routing: a target with no sample for this many seconds is explored again, and its first new
    # sample replaces its old window, so a target that was slow and recovered wins its traffic back.
    refresh: float = 120.0


class CachingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # The organisation's `requesty.auto_cache` default until an admin sets one with the management API.
    auto_cache: bool = False


class SessionsConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Automatic session reconstruction (docs/sessions.md): the per-worker index of conversation states."""

    enabled: bool = True
    # Conversation states remembered (two per answered request); the least recently used go first.
    max_entries: int = 200_000
    # A conversation idle for longer starts a new session when it resumes.
    ttl_seconds: float = 6 * 3600.0


class DashboardConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The admin dashboard served at `/ui` (docs/dashboard.md) and its login sessions."""

    # false: `/ui` answers 404 and no session can be made (the management API still takes API keys).
    enabled: bool = True
    # A session unused for this long ends (seconds, 60 to 86,400).
    session_idle_timeout: float = 30 * 60.0
    # A session ends this long after its login however active it is (seconds, 300 to 604,800).
    session_max_age: float = 12 * 3600.0

    def __post_init__(self) -> None:
        if not 60 <= self.session_idle_timeout <= 86_400:
            raise ValueError("dashboard.session_idle_timeout must be 60 to 86400 seconds")
        if not 300 <= self.session_max_age <= 604_800:
            raise ValueError("dashboard.session_max_age must be 300 to 604800 seconds")


class Config(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    providers: dict[str, ProviderConfig]
    models: list[ModelConfig]
    server: ServerConfig = ServerConfig()
    metrics: MetricsConfig = MetricsConfig()
    governance: GovernanceConfig = GovernanceConfig()
    spend: SpendConfig = SpendConfig()
    alerts: AlertsConfig = AlertsConfig()
    timeouts: Timeouts = Timeouts()
    usage_log: UsageLogConfig = UsageLogConfig()
    # SQLite file; relative to this config file's folder. ROUTER_DB wins; unset: the user's data folder
    # (`$XDG_DATA_HOME/router/router.db`, by default under ~/.local/share; see store.database_url).
    database: str | None = None
    # Shared budgets and change notification for several replicas (docs/operations-redis.md).
    redis: RedisConfig | None = None
    policies: list[PolicyConfig] = []
    routing: RoutingConfig = RoutingConfig()
    guardrails: GuardrailSettings = GuardrailSettings()
    caching: CachingConfig = CachingConfig()
    sessions: SessionsConfig = SessionsConfig()
    dashboard: DashboardConfig = DashboardConfig()

    def timeouts_for(self, provider: str) -> Timeouts:
        return self.providers[provider].timeouts or self.timeouts


_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


def _resolve_env(node: Any, path: str, source: str) -> Any:
    if isinstance(node, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else str(k), source) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]", source) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("env:"):
        match = _ENV_REF.match(node)
        if match is None:
            expected = "expected env:VAR or env:VAR:-default"
            raise ConfigError(f"{source}: at {path}: malformed reference {node!r}, {expected}")
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name) or default
        if value is None:
            raise ConfigError(f"{source}: at {path}: environment variable {name} is not set")
        return value
    return node


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_redis(redis: RedisConfig, source: str) -> None:
    if not redis.url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"{source}: at redis.url: expected a redis://, rediss:// or unix:// URL")
    if not 0.05 <= redis.check_interval <= 10:
        raise ConfigError(f"{source}: at redis.check_interval: must be between 0.05 and 10 seconds")
    if not 0.01 <= redis.timeout <= 10:
        raise ConfigError(f"{source}: at redis.timeout: must be between 0.01 and 10 seconds")


# Provider kinds whose endpoint follows from the region when base_url is left out.
_DEFAULT_ENDPOINT_KINDS = ("bedrock", "gemini", "vertex")


def _check(config: Config, source: str) -> None:
    seen: set[str] = set()
    if config.redis is not None:
        _check_redis(config.redis, source)
    for i, model in enumerate(config.models):
        where = f"{source}: at models[{i}].id"
        _, sep, name = model.id.partition("/")
        if not sep or not name:
            raise ConfigError(f"{where}: model id {model.id!r} must look like 'provider/model'")
        provider = model.provider_name
        if provider not in config.providers:
            known = ", ".join(sorted(config.providers)) or "none"
            raise ConfigError(f"{where}: provider {provider!r} is not defined in providers (defined: {known})")
        if model.id in seen:
            raise ConfigError(f"{where}: duplicate model id {model.id!r}")
        kind = config.providers[provider].kind
        if "images" in model.capabilities and kind not in IMAGE_KINDS:
            raise ConfigError(
                f"{source}: at models[{i}].capabilities: 'images' (POST /v1/images/generations) needs a provider of "
                f"kind {', '.join(IMAGE_KINDS)}; {provider!r} is {kind!r}"
            )
        seen.add(model.id)
    for name, provider in config.providers.items():
        if not 1 <= provider.fetch_max_bytes <= 100 * 1024 * 1024:
            raise ConfigError(f"{source}: at providers.{name}.fetch_max_bytes: expected 1 to 104857600 bytes")
        if not 0 < provider.fetch_timeout <= 120:
            raise ConfigError(f"{source}: at providers.{name}.fetch_timeout: expected 0 < seconds <= 120")
        if provider.kind in _DEFAULT_ENDPOINT_KINDS and not provider.base_url:
            continue
        if not provider.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: at providers.{name}.base_url: expected an http:// or https:// URL")
        if provider.max_connections is not None and provider.max_connections < 1:
            raise ConfigError(f"{source}: at providers.{name}.max_connections: expected at least 1, or null for no cap")
        if not 0 < provider.pool_wait <= 600:
            raise ConfigError(f"{source}: at providers.{name}.pool_wait: expected 0 < seconds <= 600")
    for label, t in [("timeouts", config.timeouts)] + [
        (f"providers.{n}.timeouts", p.timeouts) for n, p in config.providers.items() if p.timeouts
    ]:
        for field in t.__struct_fields__:
            if getattr(t, field) <= 0:
                raise ConfigError(f"{source}: at {label}.{field}: expected a positive number of seconds")
    server = config.server
    if server.max_body_bytes <= 0:
        raise ConfigError(f"{source}: at server.max_body_bytes: expected a positive number of bytes")
    if not 0 < server.body_read_timeout <= 3600:
        raise ConfigError(f"{source}: at server.body_read_timeout: expected seconds above 0, at most 3600")
    if not 1 <= server.max_pending_bodies <= 1_000_000:
        raise ConfigError(f"{source}: at server.max_pending_bodies: expected a number from 1 to 1000000")
    auth = server.auth_failures
    for field, low, high in [("max_failures", 1, 1_000_000), ("window", 0, 86_400), ("backoff_initial", 0, 86_400),
                             ("backoff_max", 0, 86_400), ("max_tracked", 1, 10_000_000)]:  # fmt: skip
        value = getattr(auth, field)
        if not (low < value if low == 0 else low <= value) or value > high:
            bound = f"above {low}" if low == 0 else f"from {low}"
            raise ConfigError(f"{source}: at server.auth_failures.{field}: expected a number {bound}, at most {high}")
    if auth.backoff_max < auth.backoff_initial:
        raise ConfigError(f"{source}: at server.auth_failures.backoff_max: expected at least backoff_initial")
    for i, hook in enumerate(config.alerts.webhooks):
        if not hook.url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: at alerts.webhooks[{i}].url: expected an http:// or https:// URL")
        unknown = set(hook.kinds) - {"budget", "error_rate", "latency"}
        if unknown:
            raise ConfigError(f"{source}: at alerts.webhooks[{i}].kinds: unknown kind {sorted(unknown)[0]!r}")
    for t in config.alerts.budget_thresholds:
        if not 0 < t <= 1000:
            raise ConfigError(f"{source}: at alerts.budget_thresholds: {t} is not a percentage above 0")
    if not 1 <= config.sessions.max_entries <= 50_000_000:
        raise ConfigError(f"{source}: at sessions.max_entries: expected a number of entries from 1 to 50000000")
    if not 1 <= config.sessions.ttl_seconds <= 30 * 86400:
        raise ConfigError(f"{source}: at sessions.ttl_seconds: expected seconds from 1 to 2592000 (30 days)")
    if not 1 <= config.spend.reset_day <= 28:
        raise ConfigError(f"{source}: at spend.reset_day: expected a day of the month from 1 to 28")
    limit = config.spend.org_monthly_limit
    if limit is not None and limit < 0:
        raise ConfigError(f"{source}: at spend.org_monthly_limit: expected a non-negative number of USD")
    # Imported here: the routing package imports this module.
    from .routing.policies import check_policies, check_routing

    check_routing(config.routing, f"{source}: at routing")
    check_policies(config.policies, config.models, source)
    for path, message in problems(config.guardrails):
        raise ConfigError(f"{source}: at guardrails.{path}: {message}")


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    resolved = _resolve_env(raw, "", source)
    providers = resolved.get("providers")
    if isinstance(providers, dict):
        # msgspec reports a failing dict entry as `providers[...]`; check each one to name it.
        for name, value in providers.items():
            _convert(value, ProviderConfig, source, f"providers.{name}")
    config = _convert(resolved, Config, source, "")
    config = _with_coding_models(config)
    _check(config, source)
    return config


def _with_coding_models(config: Config) -> Config:
    """The catalog with a `coding/<name>` model after each model marked `coding: true`: the same upstream
    model, provider, prices, region and capabilities (a duplicate id is reported by `_check`)."""
    derived = []
    for model in config.models:
        if not model.coding:
            continue
        name = model.id.partition("/")[2]
        derived.append(
            msgspec.structs.replace(
                model,
                id="coding/" + name,
                provider=model.provider_name,
                upstream_model=model.upstream_model or name,
                coding=False,
                description=model.description or f"{model.id} for coding agents (prompt caching, reasoning fixes)",
            )
        )
    return msgspec.structs.replace(config, models=[*config.models, *derived]) if derived else config


def _convert(value: Any, kind: type, source: str, prefix: str) -> Any:
    try:
        return msgspec.convert(value, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        # msgspec says "Expected `int`, got `str` - at `$.models[0].prices.input`"; lead with the path.
        message, sep, where = str(exc).rpartition(" - at `$")
        if not sep:
            message, where = str(exc), ""
        path = prefix + where.rstrip("`") if prefix else where.rstrip("`").lstrip(".")
        at = f"at {path}: " if path else ""
        raise ConfigError(f"{source}: {at}{message.replace('`', '')}") from None


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the flag, then ROUTER_CONFIG, then the bundled demo config."""
    chosen = explicit or os.environ.get("ROUTER_CONFIG")
    return Path(chosen) if chosen else DEFAULT_CONFIG


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    return parse_config(text, str(file))
