"""The legacy HTTP+SSE transport (protocol 2024-11-05), for clients that predate Streamable HTTP.

GET `/v1/mcp/sse` opens the event stream and a session bound to the API key; its first event, `endpoint`,
names `/v1/mcp/messages?session_id=…`. The client POSTs each JSON-RPC message there (same API key) and gets
202 at once; replies and progress notifications arrive on the stream. When the stream is held by another
granian worker, replies go through a small outbox table the stream's worker polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import GatewayError
from ..store.mcp_tables import McpSession
from . import transport as t

if TYPE_CHECKING:
    from ..server.app import App
    from ..server.exchange import Exchange

_LEGACY_VERSION = "2024-11-05"
_POLL = 0.2


async def handle(app: App, ex: Exchange) -> None:
    ctx = t.Context(app, ex, await t._authenticate(app, ex))
    path, method = ex.scope.path, ex.scope.method
    if path in t.LEGACY_SSE:
        if method != "GET":
            raise t.HttpFailure(405, t.INVALID_REQUEST, f"Use GET on {path}.", [("allow", "GET")])
        await _stream(ctx, path.removesuffix("/sse") + "/messages")
    else:
        if method != "POST":
            raise t.HttpFailure(405, t.INVALID_REQUEST, f"Use POST on {path}.", [("allow", "POST")])
        await _message(ctx)


async def _stream(ctx: t.Context, messages_path: str) -> None:
    app, ex = ctx.app, ctx.ex
    session_id = secrets.token_urlsafe(32)
    digest = t._digest(session_id)
    now = app.clock()
    app.store.insert_mcp_session(McpSession(digest, ctx.principal.key_id, _LEGACY_VERSION, None, now, now, None))
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
    app.mcp.legacy_streams[digest] = queue
    transport = ex.start_stream(200, [("cache-control", "no-cache")])
    deadline = time.monotonic() + t._STREAM_MAX
    last_beat = time.monotonic()
    try:
        with ex.cancel_on_disconnect():
            await transport.send_bytes(f"event: endpoint\ndata: {messages_path}?session_id={session_id}\n\n".encode())
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    payload = await asyncio.wait_for(queue.get(), _POLL)
                    await transport.send_bytes(b"event: message\ndata: " + payload + b"\n\n")
                    continue
                for payload in app.store.pop_mcp_outbox(digest):
                    await transport.send_bytes(b"event: message\ndata: " + payload + b"\n\n")
                if time.monotonic() - last_beat >= t._KEEPALIVE:
                    last_beat = time.monotonic()
                    current = app.store.mcp_session(digest)
                    if current is None or current.ended_at is not None:
                        break
                    await transport.send_bytes(b": keep-alive\n\n")
    finally:
        app.mcp.legacy_streams.pop(digest, None)
        app.store.end_mcp_session(digest, app.clock())
        app.store.drop_mcp_outbox(digest)


def _deliver(app: App, digest: bytes, message: Any) -> None:
    payload = msgspec.json.encode(message)
    queue = app.mcp.legacy_streams.get(digest)
    if queue is not None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(payload)
        return
    app.store.push_mcp_outbox(digest, payload, app.clock())


async def _message(ctx: t.Context) -> None:
    app, ex = ctx.app, ctx.ex
    session_id = t.query(ex).get("session_id")
    if not session_id:
        raise t.HttpFailure(400, t.INVALID_REQUEST, "Missing session_id: open the event stream first.")
    session = t._session(ctx, session_id=session_id)
    assert session is not None
    try:
        raw = await app.read_body(ex)
    except GatewayError as exc:
        raise t.HttpFailure(exc.status, t.INVALID_REQUEST, exc.message) from None
    try:
        m = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise t.HttpFailure(400, t.PARSE_ERROR, "Parse error: the body is not valid JSON.") from None
    kind = t._classify(m)
    if kind == "invalid":
        raise t.HttpFailure(400, t.INVALID_REQUEST, "Invalid Request")
    if kind == "notification":
        t._notification(ctx, m)
    elif kind == "request":
        task = asyncio.get_running_loop().create_task(_answer(ctx, session.id_hash, m))
        app.mcp.background.add(task)
        task.add_done_callback(app.mcp.background.discard)
    ex.status = 202
    ex.responded = True
    ex.proto.response_bytes(202, ex.response_headers("text/plain"), b"Accepted")


async def _answer(ctx: t.Context, digest: bytes, m: dict[str, Any]) -> None:
    app = ctx.app
    if m["method"] == "initialize":
        params = m.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("protocolVersion"), str):
            _deliver(app, digest, t._error(m["id"], t.INVALID_PARAMS, "initialize needs params.protocolVersion."))
            return
        _, _, result = t.negotiate(params)
        _deliver(app, digest, t._result(m["id"], result))
        return
    token = t._progress_token(m)

    async def progress(value: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": token, "progress": value}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        _deliver(app, digest, {"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    reply = await t._dispatch(ctx, m, progress if token is not None else None)
    _deliver(app, digest, reply)
