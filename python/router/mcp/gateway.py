"""The gateway's MCP endpoint state: which tools exist, who may call them, and forwarding calls upstream.

`McpGateway` is built once per worker (it hangs off the App). `refresh()` runs when the store's change epoch
moves and rebuilds the tool table from the servers and approvals in the store; nothing is read from the
database on the hot path except the session row. Grants per key are computed on first use and dropped with
the epoch, like the key cache's model sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._core import SkipKeys
from ..errors import GatewayError
from ..governance.keys import Principal, key_access, key_groups
from ..guardrails.policy import Direction
from ..guardrails.policy import Policy as GuardrailPolicy
from ..guardrails.stored import GuardrailPolicies
from ..metrics import Metrics
from ..providers.byok import MasterKey
from ..store import Store
from ..store.mcp_tables import McpHealthRecord, McpServerRecord, McpToolRecord, McpUsageRow
from ..store.records import Rules
from . import access
from .admin import McpAdmin, list_all_tools
from .names import exposed_name
from .replay import Replay
from .upstream import Pool, UpstreamError, classify, load_sdk, one_shot, pool_key

log = logging.getLogger("router.mcp")

# JSON-RPC error codes: the spec's, and the implementation-defined server range (-32000 to -32099).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UPSTREAM_TIMEOUT = -32001
UPSTREAM_UNAVAILABLE = -32002
CREDENTIALS_REQUIRED = -32003
UPSTREAM_FAILED = -32004
_UPSTREAM_CODES = {"timeout": UPSTREAM_TIMEOUT, "unreachable": UPSTREAM_UNAVAILABLE}
_MAX_TOOL_LABELS = 200
_HEALTH_INTERVAL = 60.0
NEEDS_USER_CREDENTIALS = "needs_user_credentials"
_PRUNE_INTERVAL = 3600.0
# Session rows (and undelivered legacy-transport replies) are dropped a day after their last use; a session
# idle that long is refused anyway.
_SESSION_RETENTION = 24 * 3600.0


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.kind = kind or "invalid_params"


class Tool(msgspec.Struct, frozen=True):
    """One offered tool: its exposed name and what `tools/list` says about it (the approved version)."""

    name: str
    server: str
    upstream: str
    listing: dict[str, Any]


class CallOutcome(msgspec.Struct):
    server_seconds: float = 0.0
    error_type: str | None = None


class McpGateway:
    def __init__(
        self,
        store: Store,
        master: MasterKey | None,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        guardrails: GuardrailPolicies | None = None,
    ) -> None:
        self.store = store
        self.guardrails = guardrails
        self.admin = McpAdmin(store, master, clock)
        self.metrics = metrics
        self.clock = clock
        self.pool = Pool()
        self.replay = Replay(store, clock)
        self.servers: dict[str, McpServerRecord] = {}
        self.tools: dict[str, Tool] = {}
        self.version = 0
        self._restricted = False
        self._grants: dict[str, access.McpGrant] = {}
        self._org_headers: dict[str, dict[str, str]] = {}
        self._user_headers: dict[tuple[str, str], dict[str, str] | None] = {}
        self._tool_labels: dict[str, set[str]] = {}
        # (server, user) whose credentials the upstream refused, so a later success marks them configured again.
        self._invalid: set[tuple[str, str]] = set()
        self.usage: UsageWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        metrics.registry.register(HealthCollector(self))
        # In-flight tools/call tasks by (session id, request id), for notifications/cancelled.
        self.calls: dict[tuple[str, str], asyncio.Future[Any]] = {}
        # The legacy HTTP+SSE transport: this worker's open event streams, and answers being computed.
        self.legacy_streams: dict[bytes, asyncio.Queue[bytes]] = {}
        self.background: set[asyncio.Task[Any]] = set()

    # -- configuration --------------------------------------------------------------------------------

    def refresh(self) -> None:
        self.load()()

    def load(self) -> Callable[[], None]:
        """Read servers, tools and access lists (any thread); the returned function swaps them in (the event
        loop's thread, so no grant computed from the old state is cached after the swap)."""
        servers = {s.name: s for s in self.store.mcp_servers()}
        tools: dict[str, Tool] = {}
        for t in self.store.mcp_tools():
            server = servers.get(t.server)
            if server is None or not server.enabled or t.state != "enabled":
                continue
            listing = _listing(t)
            name = exposed_name(t.server, t.name)
            if name in tools:  # a rewritten name colliding with an unchanged one: keep the first, say so
                log.warning("MCP tool %s/%s hides behind the name %s; rename it upstream", t.server, t.name, name)
                continue
            listing["name"] = name
            tools[name] = Tool(name, t.server, t.name, listing)
        lists = self.store.list_access_lists()
        restricted = access.restricted(a.rules for a in lists)

        def apply() -> None:
            changed = tools.keys() != self.tools.keys() or any(tools[n] != self.tools[n] for n in tools)
            self.servers, self.tools, self._restricted = servers, tools, restricted
            self._grants.clear()
            self._org_headers.clear()
            self._user_headers.clear()
            if changed:
                self.version += 1

        return apply

    def grant(self, principal: Principal) -> access.McpGrant:
        found = self._grants.get(principal.key_id)
        if found is None:
            found = self._grants[principal.key_id] = access.grant_for(self._layer(principal), self._restricted)
        return found

    def _layer(self, principal: Principal) -> list[Rules] | None:
        record = principal.record
        if record is None:
            return None
        if principal.rules is not None:  # read with the key (governance.keys.key_access): no store access here
            return principal.rules
        return key_access(self.store, record, {}, key_groups(self.store, record))[1]

    def visible_tools(self, principal: Principal) -> list[Tool]:
        grant = self.grant(principal)
        return [t for t in self.tools.values() if grant.permits(t.server, t.upstream)]

    def find_tool(self, principal: Principal, name: str) -> Tool:
        tool = self.tools.get(name)
        if tool is None or not self.grant(principal).permits(tool.server, tool.upstream):
            # Not whitelisted, held back, on a disabled or denied server: all look the same to the caller.
            raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}", kind="unknown_tool")
        return tool

    # -- credentials ----------------------------------------------------------------------------------

    def headers_for(self, server: McpServerRecord, principal: Principal) -> tuple[dict[str, str], str | None]:
        """The headers a call to `server` carries for this caller, and the user whose credentials they include."""
        org = self._org_headers.get(server.name)
        if org is None:
            try:
                org = self._org_headers[server.name] = self.admin.open_headers(server)
            except Exception:
                raise RpcError(
                    INTERNAL_ERROR, f"The credentials of MCP server '{server.name}' cannot be opened with this "
                    "gateway's master key; an admin must set them again.", {"server": server.name}, "config",
                ) from None  # fmt: skip
        if server.user_keys == "off":
            return org, None
        record = principal.record
        user = record.owner_id if record is not None and record.owner_type == "user" else None
        own = None
        if user is not None:
            key = (server.name, user)
            if key not in self._user_headers:
                try:
                    self._user_headers[key] = self.admin.user_headers(server, user)
                except Exception:
                    self._user_headers[key] = None
            own = self._user_headers[key]
        if own is None and server.user_keys == "required":
            names = ", ".join(server.user_headers)
            where = (
                f"set them with PUT /v1/manage/mcp/servers/{server.name}/credentials"
                if user is not None
                else "use an API key owned by a user, and store them for that user"
            )
            raise RpcError(
                CREDENTIALS_REQUIRED,
                f"MCP server '{server.name}' needs your own credentials ({names}); {where}.",
                {"server": server.name, "headers": server.user_headers},
                "credentials_missing",
            )
        return ({**org, **own} if own else org), (user if own else None)

    # -- calls ----------------------------------------------------------------------------------------

    async def call_tool(
        self,
        principal: Principal,
        tool: Tool,
        arguments: dict[str, Any] | None,
        outcome: CallOutcome,
        progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        server = self.servers[tool.server]
        headers, user = self.headers_for(server, principal)
        key = pool_key(server.name, server.updated_at, server.url, server.transport, headers)
        conn = self.pool.get(key, server.url, server.transport, headers, server.timeout)
        timeout = server.timeout
        policy = self.guardrails.for_principal(principal) if self.guardrails and server.guardrails else None
        if policy is not None and policy.requests and arguments:
            arguments = screen_tool_json(policy, self.metrics, arguments, "request")
        started = time.perf_counter()
        try:
            try:
                answer = await conn.call_tool(tool.upstream, arguments, timeout, progress)
            except Exception as exc:
                if classify(exc).kind != "session_lost":
                    raise
                # The upstream restarted: the call never ran, so one retry on a fresh session is safe.
                self.pool.drop(key, conn)
                conn = self.pool.get(key, server.url, server.transport, headers, server.timeout)
                answer = await conn.call_tool(tool.upstream, arguments, timeout, progress)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failure = classify(exc)
            outcome.error_type = failure.kind
            if failure.kind in ("unreachable", "auth_failed", "malformed", "session_lost") or not conn.alive:
                self.pool.drop(key, conn)
            if failure.kind == "auth_failed" and user is not None:
                self._invalid.add((server.name, user))
                self.store.mark_mcp_credential(server.name, user, "invalid")
            raise _rpc_from(failure, server.name) from None
        finally:
            outcome.server_seconds = time.perf_counter() - started
        if user is not None and (server.name, user) in self._invalid:
            self._invalid.discard((server.name, user))
            self.store.mark_mcp_credential(server.name, user, "configured")
        if policy is not None and policy.responses:
            answer = screen_tool_json(policy, self.metrics, answer, "response")
        return answer

    def tool_label(self, server: str, tool: str) -> str:
        seen = self._tool_labels.setdefault(server, set())
        if tool in seen:
            return tool
        if len(seen) >= _MAX_TOOL_LABELS:
            return "other"
        seen.add(tool)
        return tool

    # -- usage, health, lifecycle -----------------------------------------------------------------------

    def record(self, row: McpUsageRow) -> None:
        if self.usage is not None:
            self.usage.add(row)

    def start(self) -> None:
        self.usage = UsageWriter(self.store)
        self.usage.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._maintain(), name="mcp-maintenance"))
        if self.servers:
            loop.run_in_executor(None, load_sdk)

    async def _maintain(self) -> None:
        """Close idle upstream connections; health-check every enabled server (initialize + tools/list)."""
        last_check = last_prune = 0.0
        while True:
            await asyncio.sleep(5.0)
            self.pool.sweep()
            with contextlib.suppress(Exception):  # a locked database: next time
                self.replay.sweep()
            if time.monotonic() - last_prune >= _PRUNE_INTERVAL:
                last_prune = time.monotonic()
                with contextlib.suppress(Exception):  # a locked database: next time
                    self.store.prune_mcp_state(self.clock() - _SESSION_RETENTION)
            if time.monotonic() - last_check >= _HEALTH_INTERVAL:
                last_check = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.check_health()

    async def check_health(self, force: bool = False) -> dict[str, McpHealthRecord]:
        """One bounded check (initialize + tools/list) of every enabled server, with the organisation's
        credentials only: the gateway never spends a user's credentials on a check of its own. A server whose
        users bring their own credentials is checked with the organisation's headers (or none); if it refuses
        them (401/403) it is `needs_user_credentials`: reachable and answering, its tools unverified, which is
        its normal state rather than a fault. A refusal of credentials the organisation relies on is `error`."""
        out = {}
        recent = self.store.mcp_health()
        for server in list(self.servers.values()):
            if not server.enabled:
                continue
            last = recent.get(server.name)
            if not force and last is not None and last.checked_at > self.clock() - _HEALTH_INTERVAL * 0.9:
                continue  # another worker checked it moments ago
            started = time.perf_counter()
            status, error, count = "healthy", None, None
            try:
                headers = self.admin.open_headers(server)
                tools = await one_shot(server.url, server.transport, headers, min(server.timeout, 15.0), list_all_tools)
                count = len(tools)
                held = self._held_by(server, tools)
                if held:
                    status, error = "degraded", f"schema changed upstream, held back: {', '.join(held)}"
            except UpstreamError as exc:
                status, error = "error", exc.message
                if exc.kind == "auth_failed" and _users_bring_credentials(server):
                    status = NEEDS_USER_CREDENTIALS
                    error = (
                        f"Reachable; it answers HTTP {exc.status} without a user's own credentials, which the "
                        "gateway does not use for checks: its tools are verified on users' calls."
                    )
            except Exception as exc:
                status, error = "error", classify(exc).message
            record = McpHealthRecord(
                server.name, status, self.clock(), (time.perf_counter() - started) * 1000, error, count
            )
            self.store.put_mcp_health(record)
            out[server.name] = record
        return out

    def _held_by(self, server: McpServerRecord, listed: list[Any]) -> list[str]:
        """Whitelisted tools whose description or schema differs upstream from what was approved. A change not
        seen before is recorded (held back and audited) as an exploration would; otherwise nothing is written."""
        from ..governance.rbac import Actor
        from .admin import canonical, schema_hash

        stored = {t.name: t for t in self.store.mcp_tools(server.name) if t.approved_hash is not None}
        if not stored:
            return []
        now = {t.name: schema_hash(t.description, canonical(t.inputSchema)) for t in listed}
        if any(name in now and now[name] != t.schema_hash for name, t in stored.items()):
            return self.admin.record_tools(Actor(id="health-check", role="admin"), server, listed)["held"]
        return sorted(n for n, t in stored.items() if n in now and now[n] != t.approved_hash)

    async def close(self) -> None:
        for task in [*self._tasks, *self.background]:
            task.cancel()
        await self.pool.close()
        if self.usage is not None:
            await self.usage.close()
            self.usage = None


def _users_bring_credentials(server: McpServerRecord) -> bool:
    """Whether a 401/403 to the organisation's headers is expected: users must add their own, or users may and
    the organisation set none to fall back on."""
    return server.user_keys == "required" or (server.user_keys == "optional" and server.headers_sealed is None)


class HealthCollector:
    """`router_mcp_server_status{server, status}`: 1 for each registered server's current health status (healthy,
    degraded, error, needs_user_credentials, disabled, unknown), read from the store at scrape time so every
    worker reports the same."""

    STATUSES = ("healthy", "degraded", "error", NEEDS_USER_CREDENTIALS, "disabled", "unknown")

    def __init__(self, gateway: McpGateway) -> None:
        self.gateway = gateway

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from .admin import health_view

        family = GaugeMetricFamily(
            "router_mcp_server_status", "Health of each registered MCP server: 1 for its current status.",
            labels=["server", "status"],
        )  # fmt: skip
        store = self.gateway.store
        health = store.mcp_health()
        for server in store.mcp_servers():
            current = health_view(server, health.get(server.name))["status"]
            for status in self.STATUSES:
                family.add_metric([server.name, status], 1.0 if status == current else 0.0)
        yield family


# Tool results: the strings of content blocks and structured content, minus what is not text a model reads.
_RESULT_SKIP = SkipKeys(["type", "mimeType", "data", "uri", "blob"], [])
_ARGUMENT_SKIP = SkipKeys([], [])


def screen_tool_json(policy: GuardrailPolicy, metrics: Metrics, value: Any, direction: Direction) -> Any:
    """Tool arguments or a tool result through the caller's guardrails: values in masked categories become
    placeholders, a value in a blocked category refuses the call (named by category, never by value); a
    scanner failure refuses it too (fail closed)."""
    try:
        masker = policy.masker()
        raw = msgspec.json.encode(value)
        masked = masker.mask_json(raw, _ARGUMENT_SKIP if direction == "request" else _RESULT_SKIP)
        if masked is None:
            return value
        policy.verdict(masker.tally(), direction, metrics)
        return msgspec.json.decode(masked)
    except GatewayError as exc:
        kind = "guardrail_blocked" if exc.code == "guardrail_violation" else "guardrail_unavailable"
        where = "arguments" if direction == "request" else "result"
        raise RpcError(
            INVALID_PARAMS if direction == "request" else INTERNAL_ERROR,
            exc.message.replace(f"The {direction}", f"The tool {where}"),
            {"type": kind},
            kind,
        ) from None
    except (ValueError, msgspec.DecodeError):
        raise RpcError(INTERNAL_ERROR, "The guardrail scanner could not read the tool's data; the call was "
                       "refused.", {"type": "guardrail_unavailable"}, "guardrail_unavailable") from None  # fmt: skip


def _listing(t: McpToolRecord) -> dict[str, Any]:
    listing: dict[str, Any] = {"inputSchema": msgspec.json.decode(t.approved_schema or t.input_schema)}
    description = t.approved_description if t.approved_schema is not None else t.description
    prefix = f"[{t.server}] "
    listing["description"] = prefix + (description or t.name)
    return listing


def _rpc_from(failure: UpstreamError, server: str) -> RpcError:
    code = _UPSTREAM_CODES.get(failure.kind, UPSTREAM_FAILED)
    data: dict[str, Any] = {"server": server, "type": failure.kind}
    if failure.status is not None:
        data["status"] = failure.status
    return RpcError(code, failure.message, data, failure.kind)


class UsageWriter:
    """MCP usage rows, batched and written from a thread like the main usage log (never on the hot path)."""

    def __init__(self, store: Store, flush_interval: float = 0.5, batch_size: int = 512) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._store = store.clone()
        self._owns = self._store is not store
        self._interval = flush_interval
        self._batch = batch_size
        self._pending: list[McpUsageRow] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-usage")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mcp-usage-writer")

    def add(self, row: McpUsageRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._batch:
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._executor, self._store.write_mcp_usage, batch)
            except Exception:
                log.exception("MCP usage flush failed; %d rows kept for retry", len(batch))
                self._pending[:0] = batch

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            batch, self._pending = self._pending, []
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.write_mcp_usage, batch)
        self._executor.shutdown(wait=True)
        if self._owns:
            self._store.close()
