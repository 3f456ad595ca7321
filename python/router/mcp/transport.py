"""`/v1/mcp` (and `/mcp`): the gateway as an MCP server over Streamable HTTP (protocol 2025-03-26 and later),
plus the legacy HTTP+SSE transport (2024-11-05) at `/v1/mcp/sse` + `/v1/mcp/messages`.

- POST carries one JSON-RPC message (or, for 2025-03-26 clients, a batch). Notifications and responses get
  202; requests get `application/json`, except a `tools/call` with a progress token, which gets an SSE
  stream carrying the relayed `notifications/progress` and then the result.
- `initialize` negotiates the protocol version (the client's if supported, else the latest) and opens a
  session: `Mcp-Session-Id` is 256 random bits, stored only as a digest, bound to the API key that created
  it; any other key, an ended or unknown session gets 404, a missing one 400.
- GET opens the server-to-client SSE stream: keep-alives, and `notifications/tools/list_changed` when the
  tools the gateway offers change. With `Last-Event-ID` it resumes a stream of the session instead (see
  `replay`). DELETE ends the session.
- Authentication is the gateway's API key; a missing or invalid one gets 401 with `WWW-Authenticate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec

from ..errors import GatewayError
from ..governance.keys import Principal, awaited
from ..store.mcp_tables import McpSession, McpUsageRow
from .gateway import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    CallOutcome,
    RpcError,
)
from .replay import END, Stream
from .upstream import SUPPORTED_VERSIONS

if TYPE_CHECKING:
    from ..server.app import App
    from ..server.exchange import Exchange

PATHS = frozenset({"/v1/mcp", "/mcp"})
LEGACY_SSE = frozenset({"/v1/mcp/sse", "/mcp/sse"})
LEGACY_MESSAGES = frozenset({"/v1/mcp/messages", "/mcp/messages"})
ALL_PATHS = PATHS | LEGACY_SSE | LEGACY_MESSAGES
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
# Without an MCP-Protocol-Version header a server assumes 2025-03-26 (the spec's rule for 2025-06-18+).
_DEFAULT_VERSION = "2025-03-26"
SESSION_HEADER = "mcp-session-id"
_SESSION_IDLE = 24 * 3600.0
_TOUCH_EVERY = 60.0
_KEEPALIVE = 15.0
_STREAM_MAX = 3600.0
_MAX_BATCH = 64
# How often a reader of a stream written by another worker looks for new events.
_POLL = 0.2
SSE = "text/event-stream"
_INSTRUCTIONS = (
    "Tools of the organisation's MCP servers, through the router gateway. Each tool is named "
    "<server>__<tool>; its description starts with [server]."
)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def _result(id_: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class HttpFailure(Exception):
    """A transport-level refusal: an HTTP status with a JSON-RPC error body."""

    def __init__(self, status: int, code: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


class Context:
    """One authenticated request to the endpoint."""

    __slots__ = ("app", "ex", "principal", "session", "sid", "version")

    def __init__(self, app: App, ex: Exchange, principal: Principal) -> None:
        self.app = app
        self.ex = ex
        self.principal = principal
        self.session: McpSession | None = None
        self.version = _DEFAULT_VERSION
        # The session id as the client sent it (header, or the legacy transport's query parameter).
        self.sid = ""


async def handle(app: App, ex: Exchange) -> None:
    """The RSGI entry for every MCP path."""
    try:
        path = ex.scope.path
        method = ex.scope.method
        if path in LEGACY_SSE or path in LEGACY_MESSAGES:
            from . import legacy

            await legacy.handle(app, ex)
            return
        ctx = Context(app, ex, await _authenticate(app, ex))
        if method == "POST":
            await _post(ctx)
        elif method == "GET":
            await _get(ctx)
        elif method == "DELETE":
            _delete(ctx)
        else:
            raise HttpFailure(
                405, INVALID_REQUEST, f"Method {method} is not allowed on {path}; use POST, GET or DELETE.",
                [("allow", "GET, POST, DELETE")],
            )  # fmt: skip
    except HttpFailure as exc:
        if not ex.responded:
            send_failure(ex, exc)


def send_failure(ex: Exchange, exc: HttpFailure) -> None:
    ex.error_type = "mcp_" + ("unauthorized" if exc.status == 401 else str(exc.status))
    ex.send_bytes(exc.status, _encode(_error(None, exc.code, exc.message)), extra=exc.headers)


async def _authenticate(app: App, ex: Exchange) -> Principal:
    try:
        # The app's check: a guesser's failures count against its address like on every other route.
        principal = await awaited(app.authenticate(ex))
    except GatewayError as exc:
        if exc.status != 401:
            raise HttpFailure(exc.status, INVALID_REQUEST, exc.message) from None
        # The authorization spec's shape: 401 with a Bearer challenge (no OAuth: keys are issued by the admin).
        challenge = f'Bearer realm="router", error="invalid_token", error_description="{exc.message}"'
        raise HttpFailure(401, INVALID_REQUEST, exc.message, [("www-authenticate", challenge)]) from None
    ex.key_id = principal.key_id
    return principal


def _session(ctx: Context, required: bool = True, session_id: str | None = None) -> McpSession | None:
    session_id = session_id or ctx.ex.headers.get(SESSION_HEADER)
    if not session_id:
        if required:
            raise HttpFailure(400, INVALID_REQUEST, "Missing Mcp-Session-Id header: send initialize first.")
        return None
    if len(session_id) > 128:
        raise HttpFailure(404, INVALID_REQUEST, "Unknown or expired MCP session; initialize a new one.")
    digest = _digest(session_id)
    store = ctx.app.store
    found = store.mcp_session(digest)
    now = ctx.app.clock()
    if (
        found is None
        or found.ended_at is not None
        or found.last_seen_at < now - _SESSION_IDLE
        or not secrets.compare_digest(found.key_id, ctx.principal.key_id)
    ):
        # Another key's session is indistinguishable from a missing one.
        raise HttpFailure(404, INVALID_REQUEST, "Unknown or expired MCP session; initialize a new one.")
    if found.last_seen_at < now - _TOUCH_EVERY:
        store.touch_mcp_session(digest, now)
    ctx.session = found
    ctx.sid = session_id
    ctx.version = found.protocol_version
    header = ctx.ex.headers.get("mcp-protocol-version")
    if header is not None and header not in SUPPORTED_VERSIONS:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"Unsupported MCP-Protocol-Version '{header}' (supported: {', '.join(SUPPORTED_VERSIONS)}).",
        )
    return found


# -- POST ----------------------------------------------------------------------------------------------


async def _post(ctx: Context) -> None:
    ex = ctx.ex
    accept = ex.headers.get("accept")
    if accept and not ("application/json" in accept or SSE in accept or "*/*" in accept):
        raise HttpFailure(406, INVALID_REQUEST, "Accept must include application/json and text/event-stream.")
    try:
        raw = await ctx.app.read_body(ex)
    except GatewayError as exc:
        raise HttpFailure(exc.status, INVALID_REQUEST, exc.message) from None
    ex.body_bytes = len(raw)
    try:
        body = _decode(raw)
    except msgspec.DecodeError:
        raise HttpFailure(400, PARSE_ERROR, "Parse error: the body is not valid JSON.") from None
    batch = isinstance(body, list)
    messages = body if batch else [body]
    if not messages or len(messages) > _MAX_BATCH:
        raise HttpFailure(400, INVALID_REQUEST, f"A batch holds 1-{_MAX_BATCH} messages.")
    initialize = [m for m in messages if isinstance(m, dict) and m.get("method") == "initialize"]
    if initialize:
        if batch:
            raise HttpFailure(400, INVALID_REQUEST, "initialize must not be part of a batch.")
        _initialize(ctx, messages[0])
        return
    _session(ctx)
    if batch and ctx.version not in ("2025-03-26",):
        raise HttpFailure(400, INVALID_REQUEST, f"Protocol {ctx.version} does not allow JSON-RPC batches.")
    requests = []
    replies: list[dict[str, Any]] = []
    for m in messages:
        kind = _classify(m)
        if kind == "request":
            requests.append(m)
        elif kind == "notification":
            _notification(ctx, m)
        elif kind == "invalid":
            replies.append(_error(m.get("id") if isinstance(m, dict) else None, INVALID_REQUEST, "Invalid Request"))
        # responses to server requests: the gateway sends none, nothing to match
    if not requests and not replies:
        ex.status = 202
        ex.responded = True
        ex.proto.response_empty(202, ex.response_headers("text/plain"))
        return
    streaming = [r for r in requests if r.get("method") == "tools/call" and _progress_token(r) is not None]
    if streaming and not batch:
        await _stream_call(ctx, requests[0])
        return
    replies += await asyncio.gather(*(_dispatch(ctx, r) for r in requests))
    payload = replies if batch else replies[0]
    ex.send_bytes(200, _encode(payload), extra=[("mcp-session-id", ex.headers.get(SESSION_HEADER) or "")])


def _classify(m: Any) -> str:
    if not isinstance(m, dict) or m.get("jsonrpc") != "2.0":
        return "invalid"
    has_id = "id" in m
    if "method" in m:
        if not isinstance(m["method"], str):
            return "invalid"
        if not has_id:
            return "notification"
        ident = m["id"]
        if isinstance(ident, bool) or not isinstance(ident, str | int):
            return "invalid"
        return "request"
    if has_id and ("result" in m or "error" in m):
        return "response"
    return "invalid"


def _initialize(ctx: Context, m: Any) -> None:
    if _classify(m) != "request":
        raise HttpFailure(400, INVALID_REQUEST, "initialize must be a JSON-RPC request with an id.")
    params = m.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("protocolVersion"), str):
        ctx.ex.send_bytes(200, _encode(_error(m["id"], INVALID_PARAMS, "initialize needs params.protocolVersion.")))
        return
    version, client, result = negotiate(params)
    session_id = secrets.token_urlsafe(32)
    now = ctx.app.clock()
    ctx.app.store.insert_mcp_session(
        McpSession(_digest(session_id), ctx.principal.key_id, version, client, now, now, None)
    )
    ctx.ex.send_bytes(200, _encode(_result(m["id"], result)), extra=[("mcp-session-id", session_id)])


def negotiate(params: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """The protocol version (the client's if supported, else the latest), the client's name, and the result."""
    asked = params["protocolVersion"]
    version = asked if asked in SUPPORTED_VERSIONS else LATEST_VERSION
    info = params.get("clientInfo")
    client = None
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        client = f"{info['name']}/{info.get('version', '')}"[:200]
    result = {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}, "logging": {}},
        "serverInfo": {"name": "router-mcp-gateway", "title": "router MCP gateway", "version": "1.0"},
        "instructions": _INSTRUCTIONS,
    }
    return version, client, result


def _notification(ctx: Context, m: dict[str, Any]) -> None:
    if m["method"] == "notifications/cancelled":
        params = m.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        calls = ctx.app.mcp.calls
        task = calls.get((ctx.sid, repr(request_id)))
        if task is not None:
            task.cancel()


def _progress_token(m: dict[str, Any]) -> Any:
    params = m.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None


async def _dispatch(ctx: Context, m: dict[str, Any], progress: Any = None) -> dict[str, Any]:
    method = m["method"]
    id_ = m["id"]
    params = m.get("params")
    if params is not None and not isinstance(params, dict):
        return _error(id_, INVALID_PARAMS, "params must be an object.")
    params = params or {}
    if method == "ping":
        return _result(id_, {})
    if method == "tools/list":
        tools = [t.listing for t in ctx.app.mcp.visible_tools(ctx.principal)]
        return _result(id_, {"tools": tools})
    if method == "tools/call":
        return await _tools_call(ctx, id_, params, progress)
    if method == "logging/setLevel":
        return _result(id_, {})
    if method.startswith(("resources/", "prompts/", "completion/")):
        return _error(
            id_, METHOD_NOT_FOUND,
            f"Method not found: {method}. This gateway relays tools only; resources and prompts of upstream "
            "servers are not offered.",
        )  # fmt: skip
    return _error(id_, METHOD_NOT_FOUND, f"Method not found: {method}")


async def _tools_call(ctx: Context, id_: Any, params: dict[str, Any], progress: Any) -> dict[str, Any]:
    gateway = ctx.app.mcp
    started = time.perf_counter()
    name = params.get("name")
    arguments = params.get("arguments")
    outcome = CallOutcome()
    server = tool_name = None
    response: dict[str, Any]
    try:
        if not isinstance(name, str) or (arguments is not None and not isinstance(arguments, dict)):
            raise RpcError(INVALID_PARAMS, "tools/call needs params.name (a string) and optional params.arguments "
                           "(an object).")  # fmt: skip
        tool = gateway.find_tool(ctx.principal, name)
        server, tool_name = tool.server, tool.upstream
        key = (ctx.sid, repr(id_))
        call = asyncio.ensure_future(gateway.call_tool(ctx.principal, tool, arguments, outcome, progress))
        gateway.calls[key] = call
        try:
            result = await call
        except asyncio.CancelledError:
            if _task_cancelling():  # the client went away: account for it and stop
                _account(ctx, started, outcome, server, tool_name, params, None, "client_closed")
                raise
            raise RpcError(INTERNAL_ERROR, "Request cancelled by the client.", kind="cancelled") from None
        finally:
            gateway.calls.pop(key, None)
        response = _result(id_, result)
        if result.get("isError"):
            outcome.error_type = "tool_error"
    except RpcError as exc:
        outcome.error_type = outcome.error_type or exc.kind
        response = _error(id_, exc.code, exc.message, exc.data)
    except Exception:
        from .gateway import log

        log.exception("MCP tools/call failed in the gateway")
        outcome.error_type = "internal_error"
        response = _error(id_, INTERNAL_ERROR, "The gateway failed to handle this tool call.")
    _account(ctx, started, outcome, server, tool_name, params, response, outcome.error_type)
    return response


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


def _account(
    ctx: Context, started: float, outcome: CallOutcome, server: str | None, tool: str | None,
    params: dict[str, Any], response: dict[str, Any] | None, error: str | None,
) -> None:  # fmt: skip
    elapsed = time.perf_counter() - started
    gateway = ctx.app.mcp
    record = ctx.principal.record
    user = record.owner_id if record is not None and record.owner_type == "user" else None
    ok = error is None
    gateway.record(
        McpUsageRow(
            ts=time.time(),
            request_id=ctx.ex.request_id,
            key_id=ctx.principal.key_id,
            user_id=user,
            server=server,
            tool=tool,
            method="tools/call",
            status="ok" if ok else "error",
            error_type=error,
            latency_ms=elapsed * 1000,
            gateway_ms=max(elapsed - outcome.server_seconds, 0.0) * 1000,
            server_ms=outcome.server_seconds * 1000,
            request_bytes=len(_encode(params)),
            response_bytes=0 if response is None else len(_encode(response)),
        )
    )
    if server is not None and tool is not None:
        ctx.app.metrics.observe_mcp(server, gateway.tool_label(server, tool), "ok" if ok else "error", elapsed)
    else:
        ctx.app.metrics.observe_mcp("unknown", "unknown", "error", elapsed)


def _primes(ctx: Context) -> bool:
    # Priming events (an id and empty data) arrived with 2025-11-25; older clients may not expect them.
    return ctx.version >= "2025-11-25"


async def _stream_call(ctx: Context, m: dict[str, Any]) -> None:
    """A tools/call with a progress token: answer with SSE, relaying the upstream's progress as it comes.

    The call runs on its own: every event goes to the stream's replay buffer, and this request's reader sends
    them. A disconnection stops the reader only (the spec: a disconnection is not a cancellation); the client
    can resume with GET and `Last-Event-ID`, or cancel with notifications/cancelled."""
    ex = ctx.ex
    assert ctx.session is not None
    replay = ctx.app.mcp.replay
    stream = replay.open(ctx.session.id_hash, "call")
    token = _progress_token(m)

    async def progress(value: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": token, "progress": value}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        replay.push(stream, _encode({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}))

    async def call() -> None:
        reply = _error(m["id"], INTERNAL_ERROR, "The gateway failed to handle this tool call.")
        try:
            reply = await _dispatch(ctx, m, progress)
        except asyncio.CancelledError:  # the gateway shutting down
            reply = _error(m["id"], INTERNAL_ERROR, "The gateway stopped before the tool call completed.")
            raise
        finally:
            with contextlib.suppress(Exception):
                replay.push(stream, _encode(reply))
                replay.push(stream, END)

    if _primes(ctx):
        replay.push(stream, b"")
    background = ctx.app.mcp.background
    task = asyncio.get_running_loop().create_task(call(), name="mcp-tools-call")
    background.add(task)
    task.add_done_callback(background.discard)
    transport = ex.start_stream(200, [("mcp-session-id", ex.headers.get(SESSION_HEADER) or ""),
                                      ("cache-control", "no-cache")])  # fmt: skip
    with ex.cancel_on_disconnect():
        await _relay(ctx, transport, stream, 0)


async def _relay(ctx: Context, transport: Any, stream: Stream, after: int) -> None:
    """Send a tools/call stream's events after `after` until its end (or the stream's time limit)."""
    replay = ctx.app.mcp.replay
    deadline = time.monotonic() + _STREAM_MAX
    beat = time.monotonic()
    while time.monotonic() < deadline:
        events = replay.events_after(stream, after)
        for seq, payload in events:
            after = seq
            if payload == END:
                return
            await transport.send_bytes(stream.frame(seq, payload))
        if events:
            continue
        if time.monotonic() - beat >= _KEEPALIVE:
            beat = time.monotonic()
            await transport.send_bytes(b": keep-alive\n\n")
        await replay.wait(stream, _POLL)


# -- GET and DELETE -----------------------------------------------------------------------------------------


async def _get(ctx: Context) -> None:
    ex = ctx.ex
    accept = ex.headers.get("accept") or ""
    if SSE not in accept and "*/*" not in accept:
        raise HttpFailure(406, INVALID_REQUEST, "GET opens an event stream: Accept must include text/event-stream.")
    session = _session(ctx)
    assert session is not None
    gateway = ctx.app.mcp
    replay = gateway.replay
    last_event_id = ex.headers.get("last-event-id")
    resumed = replay.resume(session.id_hash, last_event_id) if last_event_id else None
    transport = ex.start_stream(200, [("cache-control", "no-cache")])
    if resumed is not None and resumed[0].kind == "call":
        with ex.cancel_on_disconnect():
            await _relay(ctx, transport, *resumed)
        return
    seen = gateway.version
    deadline = time.monotonic() + _STREAM_MAX
    last = time.monotonic()
    with ex.cancel_on_disconnect():
        await transport.send_bytes(b": connected\n\n")
        if resumed is not None:
            stream, after = resumed
            while events := replay.events_after(stream, after):
                for seq, payload in events:
                    after = seq
                    if payload:
                        await transport.send_bytes(stream.frame(seq, payload))
        else:
            stream = replay.open(session.id_hash, "listen")
            if _primes(ctx):
                await transport.send_bytes(stream.frame(replay.push(stream, b""), b""))
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            try:  # notices configuration changes (the epoch), and a key revoked or expired meanwhile
                await awaited(ctx.app.keys.authenticate(ex.api_key()))
            except GatewayError:
                break
            if gateway.version != seen:
                seen = gateway.version
                notice = _encode({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
                await transport.send_bytes(stream.frame(replay.push(stream, notice), notice))
            if time.monotonic() - last >= _KEEPALIVE:
                last = time.monotonic()
                current = ctx.app.store.mcp_session(session.id_hash)
                if current is None or current.ended_at is not None:
                    break
                await transport.send_bytes(b": keep-alive\n\n")


def _delete(ctx: Context) -> None:
    session = _session(ctx)
    assert session is not None
    ctx.app.store.end_mcp_session(session.id_hash, ctx.app.clock())
    ctx.ex.status = 204
    ctx.ex.responded = True
    ctx.ex.proto.response_empty(204, ctx.ex.response_headers("text/plain"))


def query(ex: Exchange) -> dict[str, str]:
    return dict(parse_qsl(ex.scope.query_string))
