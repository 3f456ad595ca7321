"""Connections to upstream MCP servers.

Tool calls to a Streamable HTTP server go through `HttpConnection`: the gateway speaks JSON-RPC to it
directly with its own pooled keep-alive HTTP client (pyreqwest, as the providers use), over one upstream
session initialized once and shared by every concurrent call. The official MCP Python SDK's client session
costs about 2 ms per call (anyio memory streams, pydantic models, httpx), so it is kept only where it earns
that cost: legacy HTTP+SSE servers (`Connection`), and exploration and health checks (`one_shot`), which are
rare and profit from its validation and pagination.

Both kinds of connection are shared by every concurrent call with the same server configuration and the same
credentials, multiplexed by JSON-RPC id. Connections are keyed by a digest of (server, its config version,
credential headers), so one user's credentials never serve another user's call, and a changed server config
opens a fresh connection. Idle connections close after a while and the pool is bounded.

Every wait is bounded by the server's timeout; a connection whose task died (server gone, 5xx, malformed
answer) fails its in-flight calls at once and is replaced on the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import msgspec
from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import Url

from .._core import SseParser

log = logging.getLogger("router.mcp.upstream")

_IDLE_SECONDS = 300.0
_MAX_CONNECTIONS = 256
_CLIENT_INFO = ("router-mcp-gateway", "1.0")
# Protocol versions the gateway speaks, as a server to its clients and as a client to upstreams (newest last).
SUPPORTED_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
_ACCEPT = "application/json, text/event-stream"
# A JSON answer or one SSE event larger than this is refused as malformed rather than buffered.
_MAX_MESSAGE = 32 * 1024 * 1024
_MAX_ERROR_TEXT = 500
_DRAIN_SECONDS = 1.0
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


def load_sdk() -> None:
    """Import the MCP SDK's client (about a second of imports): once per worker, before any timeout starts,
    so a worker that never talks MCP never pays for it and a first call is not charged for it."""
    import httpx  # noqa: F401
    from mcp import ClientSession  # noqa: F401
    from mcp.client.sse import sse_client  # noqa: F401
    from mcp.client.streamable_http import streamable_http_client  # noqa: F401

    # The SDK logs every failed POST or broken stream with a traceback; the gateway already turns those into a
    # classified JSON-RPC error and a usage row, so they are logged as one line each instead.
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not (name == "mcp" or name.startswith("mcp.")):
            continue
        if not any(isinstance(f, _OneLine) for f in logger.filters):
            logger.addFilter(_OneLine())


class _OneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class UpstreamError(Exception):
    """An upstream failure, classified for the JSON-RPC error and the usage row's error type."""

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # timeout | unreachable | upstream_error | malformed | auth_failed
        self.message = message
        self.status = status


def classify(exc: BaseException) -> UpstreamError:
    """Map whatever the SDK or HTTP stack raised to an UpstreamError whose message names no secret."""
    if isinstance(exc, UpstreamError):
        return exc
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    import anyio
    import httpx

    if isinstance(exc, rq.RequestTimeoutError):
        return UpstreamError("timeout", "The MCP server did not answer in time.")
    if isinstance(exc, rq.PyreqwestError):
        return UpstreamError("unreachable", "The MCP server could not be reached or the connection broke.")
    if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError):
        # The SDK's streams of a connection that already ended: the request was never sent.
        return UpstreamError("session_lost", "The connection to the MCP server was closed.")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return UpstreamError("timeout", "The MCP server did not answer in time.")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status in (401, 403):
            return UpstreamError(
                "auth_failed", f"The MCP server refused the credentials (HTTP {status}).", status=status
            )
        return UpstreamError("upstream_error", f"The MCP server answered HTTP {status}.", status=status)
    if isinstance(exc, httpx.TransportError | ConnectionError | OSError):
        return UpstreamError("unreachable", "The MCP server could not be reached.")
    from mcp.shared.exceptions import McpError

    if isinstance(exc, McpError) and exc.error.code == 32600 and exc.error.message == "Session terminated":
        # The SDK's report of a 404 on its session: the server restarted or dropped it; nothing ran.
        return UpstreamError("session_lost", "The MCP server no longer knows the gateway's session.")
    if isinstance(exc, McpError):
        return UpstreamError("upstream_error", f"The MCP server returned an error: {exc.error.message}")
    from pydantic import ValidationError

    if isinstance(exc, ValidationError | ValueError):
        return UpstreamError("malformed", "The MCP server sent a malformed answer.")
    return UpstreamError("upstream_error", f"The MCP server connection failed ({type(exc).__name__}).")


class Connection:
    """A session held by the official SDK's client (legacy SSE upstreams, exploration, health checks)."""

    def __init__(
        self, url: str, transport: str, headers: Mapping[str, str], timeout: float,
        background: set[asyncio.Task[Any]] | None = None,
    ) -> None:  # fmt: skip
        self.background = background if background is not None else set()
        self.url = url
        self.transport = transport
        self.headers = dict(headers)
        self.timeout = timeout
        self.session: Any = None
        load_sdk()
        self.last_used = time.monotonic()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._hold(), name=f"mcp-upstream {url}")
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not self._ready.done():
            exc = None if task.cancelled() else task.exception()
            self._ready.set_exception(exc or UpstreamError("unreachable", "The MCP server closed the connection."))
            self._ready.exception()  # marks it retrieved: the waiter reports it

    @property
    def alive(self) -> bool:
        return not self.task.done()

    async def _hold(self) -> None:
        from mcp import ClientSession
        from mcp.types import Implementation

        async with contextlib.AsyncExitStack() as stack:
            if self.transport == "sse":
                from mcp.client.sse import sse_client

                streams = await stack.enter_async_context(
                    sse_client(self.url, headers=self.headers, timeout=self.timeout, sse_read_timeout=3600)
                )
            else:
                import httpx
                from mcp.client.streamable_http import streamable_http_client
                from mcp.shared._httpx_utils import create_mcp_http_client

                client = await stack.enter_async_context(
                    create_mcp_http_client(
                        headers=self.headers, timeout=httpx.Timeout(self.timeout, read=max(self.timeout, 300.0))
                    )
                )
                streams = await stack.enter_async_context(streamable_http_client(self.url, http_client=client))
            session = await stack.enter_async_context(
                ClientSession(
                    streams[0],
                    streams[1],
                    read_timeout_seconds=timedelta(seconds=self.timeout),
                    client_info=Implementation(name=_CLIENT_INFO[0], version=_CLIENT_INFO[1]),
                )
            )
            await session.initialize()
            self.session = session
            self._ready.set_result(None)
            await self._stop.wait()

    async def ready(self) -> Any:
        await asyncio.wait_for(asyncio.shield(self._ready), self.timeout)
        return self.session

    async def run(self, call: Callable[[Any], Awaitable[Any]], limit: float) -> Any:
        """Run one request on the session; fails as soon as the connection dies, or after `limit` seconds."""
        try:
            session = await self.ready()
        except TimeoutError:
            raise UpstreamError(
                "timeout", f"The MCP server did not complete the handshake within {self.timeout:g} s."
            ) from None
        except Exception as exc:
            raise classify(exc) from None
        self.last_used = time.monotonic()
        request = asyncio.ensure_future(call(session))
        try:
            done, _ = await asyncio.wait({request, self.task}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            request.cancel()
            raise
        if request in done:
            return request.result()
        request.cancel()
        if self.task in done:
            ended = None if self.task.cancelled() else self.task.exception()
            raise classify(ended) if ended else UpstreamError("unreachable", "The MCP server closed the connection.")
        raise UpstreamError("timeout", f"The MCP server did not answer within {limit:g} s.")

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None, limit: float, progress: Progress | None
    ) -> dict[str, Any]:
        sent: list[int] = []

        async def call(session: Any) -> Any:
            # The id the SDK's send_request is about to take: nothing awaits between this read and that
            # assignment, so it is this call's id even with other calls in flight on the session. It is what a
            # `notifications/cancelled` upstream must name (the SDK does not send one when a request is dropped).
            request_id = getattr(session, "_request_id", None)
            if isinstance(request_id, int):
                sent.append(request_id)
            return await session.call_tool(
                name, arguments, read_timeout_seconds=timedelta(seconds=limit), progress_callback=progress
            )

        try:
            result = await self.run(call, limit)
        except asyncio.CancelledError:
            self._cancel_upstream(sent, "The client cancelled the request.")
            raise
        except BaseException as exc:
            if classify(exc).kind == "timeout":
                self._cancel_upstream(sent, "The gateway's timeout for this server expired.")
            raise
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    def _cancel_upstream(self, sent: list[int], reason: str) -> None:
        """Tell the upstream to stop a request the gateway stopped waiting for (best effort, bounded)."""
        session = self.session
        if not sent or session is None or not self.alive:
            return
        from mcp.types import CancelledNotification, CancelledNotificationParams, ClientNotification

        note = ClientNotification(
            CancelledNotification(params=CancelledNotificationParams(requestId=sent[-1], reason=reason))
        )
        _spawn(self.background, asyncio.wait_for(session.send_notification(note), 5.0))

    async def close(self) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 2.0)
        except BaseException:  # closing: whatever the transport raised on the way out does not matter
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def _spawn(tasks: set[asyncio.Task[Any]], coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(_forget(tasks))


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a background message to an MCP server failed: %s", type(task.exception()).__name__)

    return done


def http_client() -> Client:
    """The worker's keep-alive client toward Streamable HTTP MCP servers (timeouts are set per request)."""
    return (
        ClientBuilder()
        .connect_timeout(timedelta(seconds=10))
        .pool_idle_timeout(timedelta(seconds=90))
        .tcp_nodelay(True)
        .follow_redirects(False)
        .build()
    )


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class HttpConnection:
    """One upstream Streamable HTTP session, spoken directly: each request is one POST on the pooled client.

    The session is initialized on first use (initialize, then notifications/initialized) and reused by every
    call until the upstream forgets it (404: `session_lost`, and the gateway opens a fresh one) or the pool
    closes it (DELETE, best effort). A POST is answered with JSON or with an SSE stream carrying progress
    notifications and finally the response; requests the upstream makes of the gateway on that stream (ping,
    sampling, roots) are answered at once, ping with an empty result, the rest with method-not-found."""

    def __init__(
        self, client: Client, url: str, headers: Mapping[str, str], timeout: float, background: set[asyncio.Task[Any]]
    ) -> None:
        self.client = client
        self.url = Url(url)
        self.timeout = timeout
        self.background = background
        self.base = {**headers, "accept": _ACCEPT, "content-type": "application/json"}
        self.headers: dict[str, str] | None = None  # base plus session id and protocol version, once initialized
        self.session_id: str | None = None
        self.last_used = time.monotonic()
        self.alive = True
        self._ids = 0
        self._init_lock = asyncio.Lock()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def _session(self) -> dict[str, str]:
        headers = self.headers
        if headers is not None:
            return headers
        async with self._init_lock:
            if self.headers is None:
                await self._initialize()
            assert self.headers is not None
            return self.headers

    async def _initialize(self) -> None:
        params = {
            "protocolVersion": SUPPORTED_VERSIONS[-1],
            "capabilities": {},
            "clientInfo": {"name": _CLIENT_INFO[0], "version": _CLIENT_INFO[1]},
        }
        request_id = self._next_id()
        message = {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}
        session_id, answer = await self._post(self.base, message, request_id, None, self.timeout)
        result = _result_of(answer)
        version = result.get("protocolVersion")
        if version not in SUPPORTED_VERSIONS:
            raise UpstreamError("malformed", f"The MCP server chose an unsupported protocol version ({version!r:.40}).")
        headers = dict(self.base)
        if session_id is not None:
            headers["mcp-session-id"] = session_id
        headers["mcp-protocol-version"] = version
        await self._post(headers, {"jsonrpc": "2.0", "method": "notifications/initialized"}, None, None, self.timeout)
        self.session_id = session_id
        self.headers = headers

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None, limit: float, progress: Progress | None
    ) -> dict[str, Any]:
        self.last_used = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                headers = await self._session()
        except TimeoutError:
            raise UpstreamError(
                "timeout", f"The MCP server did not complete the handshake within {self.timeout:g} s."
            ) from None
        request_id = self._next_id()
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = arguments
        if progress is not None:
            # The upstream's progress names this token; the caller's own token is put back by `progress`.
            params["_meta"] = {"progressToken": request_id}
        message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        try:
            _, answer = await self._post(headers, message, request_id, progress, limit)
        except asyncio.CancelledError:
            self._cancel(headers, request_id, "The client cancelled the request.")
            raise
        except UpstreamError as exc:
            if exc.kind == "timeout":
                self._cancel(headers, request_id, "The gateway's timeout for this server expired.")
            if exc.kind == "session_lost":
                self.headers = None
            raise
        result = _result_of(answer)
        if not isinstance(result.get("content"), list):
            raise UpstreamError("malformed", "The MCP server sent a malformed answer.")
        return result

    async def _post(
        self, headers: dict[str, str], message: dict[str, Any], request_id: int | None,
        progress: Progress | None, limit: float,
    ) -> tuple[str | None, dict[str, Any] | None]:  # fmt: skip
        """POST one message; the upstream's session id header and, for a request, its response."""
        request = (
            self.client.post(self.url)
            .headers(headers)
            .body_bytes(_encode(message))
            .timeout(timedelta(seconds=limit))
            .streamed_read_buffer_limit(0)  # progress events are relayed as they come, not read ahead
            .build_streamed()
        )
        try:
            async with asyncio.timeout(limit):
                response = await request.__aenter__()
                finished = False
                try:
                    status = response.status
                    if status == 404 and "mcp-session-id" in headers:
                        raise UpstreamError("session_lost", "The MCP server no longer knows the gateway's session.")
                    if status in (401, 403):
                        raise UpstreamError(
                            "auth_failed", f"The MCP server refused the credentials (HTTP {status}).", status=status
                        )
                    if status >= 300:
                        raise UpstreamError("upstream_error", f"The MCP server answered HTTP {status}.", status=status)
                    session_id = response.get_header("mcp-session-id")
                    if request_id is None:
                        return session_id, None
                    kind = (response.get_header("content-type") or "").split(";")[0].strip().lower()
                    if kind == "text/event-stream":
                        answer = await self._read_stream(response, headers, request_id, progress)
                        # The answer is in; the stream's end is read off the caller's path, so the connection
                        # goes back to the pool (a new connection per call would cost more) without delaying it.
                        _spawn(self.background, _finish(request, response.body_reader))
                        finished = True
                        return session_id, answer
                    if kind != "application/json":
                        raise UpstreamError("malformed", "The MCP server answered with neither JSON nor SSE.")
                    return session_id, _answer_for(_decode_message(await _read_all(response)), request_id)
                finally:
                    if not finished:  # leaving early drops the connection, which also stops an upstream stream
                        await request.__aexit__(None, None, None)
        except TimeoutError:
            raise UpstreamError("timeout", f"The MCP server did not answer within {limit:g} s.") from None
        except rq.PyreqwestError as exc:
            raise classify(exc) from None

    async def _read_stream(
        self, response: Any, headers: dict[str, str], request_id: int, progress: Progress | None
    ) -> dict[str, Any]:
        parser = SseParser()
        reader = response.body_reader
        pending = 0  # bytes fed since the last complete event: what the parser may be holding
        while (chunk := await reader.read_chunk()) is not None:
            pending += len(chunk)
            events = parser.feed(bytes(chunk))
            if events:
                pending = 0
            elif pending > _MAX_MESSAGE:
                raise UpstreamError("malformed", "The MCP server sent an oversized event.")
            for event in events:
                if event.event not in (None, "message") or not event.data:
                    continue  # a priming event (id only), or an event type MCP does not use
                message = _decode_message(event.data.encode())
                found = _answer_for(message, request_id, strict=False)
                if found is not None:
                    return found
                await self._on_message(message, headers, request_id, progress)
        raise UpstreamError("unreachable", "The MCP server ended its event stream before answering.")

    async def _on_message(
        self, message: Any, headers: dict[str, str], request_id: int, progress: Progress | None
    ) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return
        method = message["method"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if "id" in message:  # a request of the upstream's: the gateway offers no client capabilities
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
            if method == "ping":
                reply["result"] = {}
            else:
                reply["error"] = {"code": -32601, "message": f"Method not found: {method}"[:200]}
            _spawn(self.background, self._post(headers, reply, None, None, 5.0))
            return
        if method == "notifications/progress" and progress is not None and params.get("progressToken") == request_id:
            value, total, text = params.get("progress"), params.get("total"), params.get("message")
            if isinstance(value, int | float) and not isinstance(value, bool):
                await progress(
                    float(value),
                    float(total) if isinstance(total, int | float) and not isinstance(total, bool) else None,
                    text if isinstance(text, str) else None,
                )

    def _cancel(self, headers: dict[str, str], request_id: int, reason: str) -> None:
        """Tell the upstream to stop a request the gateway stopped waiting for (best effort, bounded)."""
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id,
                                                                                  "reason": reason}}  # fmt: skip
        _spawn(self.background, self._post(headers, note, None, None, 5.0))

    async def close(self) -> None:
        """End the upstream session (DELETE, as the spec asks of a client that leaves; best effort)."""
        self.alive = False
        headers = self.headers
        if headers is None or "mcp-session-id" not in headers:
            return
        self.headers = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                request = self.client.delete(self.url).headers(headers).timeout(timedelta(seconds=2)).build()
                await request.send()


async def _finish(request: Any, reader: Any) -> None:
    """Read an answered SSE stream to its end, then release it: servers end the stream right after the
    response; one that does not within a second is cut (its connection dropped)."""
    try:
        with contextlib.suppress(TimeoutError, rq.PyreqwestError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                while await reader.read_chunk() is not None:
                    pass
    finally:
        await request.__aexit__(None, None, None)


async def _read_all(response: Any) -> bytes:
    reader = response.body_reader
    parts: list[bytes] = []
    size = 0
    while (chunk := await reader.read_chunk()) is not None:
        size += len(chunk)
        if size > _MAX_MESSAGE:
            raise UpstreamError("malformed", "The MCP server's answer is too large.")
        parts.append(bytes(chunk))
    return b"".join(parts)


def _decode_message(raw: bytes) -> Any:
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        raise UpstreamError("malformed", "The MCP server sent a malformed answer.") from None


def _answer_for(message: Any, request_id: int, strict: bool = True) -> dict[str, Any] | None:
    """The response to `request_id` in `message` (JSON-RPC response object), or None (strict: malformed)."""
    if isinstance(message, dict) and message.get("id") == request_id and ("result" in message or "error" in message):
        return message
    if strict:
        raise UpstreamError("malformed", "The MCP server sent a malformed answer.")
    return None


def _result_of(answer: dict[str, Any] | None) -> dict[str, Any]:
    if answer is None:
        raise UpstreamError("malformed", "The MCP server sent a malformed answer.")
    error = answer.get("error")
    if error is not None:
        text = error.get("message") if isinstance(error, dict) else None
        text = text if isinstance(text, str) else "no message"
        raise UpstreamError("upstream_error", f"The MCP server returned an error: {text[:_MAX_ERROR_TEXT]}")
    result = answer.get("result")
    if not isinstance(result, dict):
        raise UpstreamError("malformed", "The MCP server sent a malformed answer.")
    return result


def pool_key(server: str, version: float, url: str, transport: str, headers: Mapping[str, str]) -> bytes:
    h = hashlib.sha256(f"{server}\0{version}\0{url}\0{transport}".encode())
    for name in sorted(headers):
        h.update(f"\0{name.lower()}\0{headers[name]}".encode())
    return h.digest()


class Pool:
    """Open connections by pool key, least recently used first."""

    def __init__(self) -> None:
        self._conns: OrderedDict[bytes, Connection | HttpConnection] = OrderedDict()
        # Closings and best-effort messages (cancellations, answers to the upstream's requests) in flight.
        self._closing: set[asyncio.Task[Any]] = set()
        self._client: Client | None = None

    def get(
        self, key: bytes, url: str, transport: str, headers: Mapping[str, str], timeout: float
    ) -> Connection | HttpConnection:
        conn = self._conns.get(key)
        if conn is not None and conn.alive:
            self._conns.move_to_end(key)
            return conn
        if conn is not None:
            del self._conns[key]
        if transport == "streamable-http":
            if self._client is None:
                self._client = http_client()
            conn = HttpConnection(self._client, url, headers, timeout, self._closing)
        else:
            conn = Connection(url, transport, headers, timeout, self._closing)
        self._conns[key] = conn
        while len(self._conns) > _MAX_CONNECTIONS:
            _, old = self._conns.popitem(last=False)
            self._close_later(old)
        return conn

    def drop(self, key: bytes, conn: Connection | HttpConnection) -> None:
        if self._conns.get(key) is conn:
            del self._conns[key]
            self._close_later(conn)

    def _close_later(self, conn: Connection | HttpConnection) -> None:
        _spawn(self._closing, conn.close())

    def sweep(self) -> None:
        """Close connections idle for too long, and dead ones."""
        cutoff = time.monotonic() - _IDLE_SECONDS
        for key, conn in list(self._conns.items()):
            if not conn.alive or conn.last_used < cutoff:
                self.drop(key, conn)

    async def close(self) -> None:
        conns = list(self._conns.values())
        self._conns.clear()
        await asyncio.gather(*(c.close() for c in conns), *self._closing, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None


async def one_shot(
    url: str, transport: str, headers: Mapping[str, str], limit: float, call: Callable[[Any], Awaitable[Any]]
) -> Any:
    """Open a connection, run one request, close: exploration and health checks, never pooled."""
    conn = Connection(url, transport, headers, limit)
    try:
        return await conn.run(call, limit)
    except UpstreamError:
        raise
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise classify(exc) from None
    finally:
        await conn.close()
