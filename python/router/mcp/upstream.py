"""Connections to upstream MCP servers, through the official MCP Python SDK's client.

One `Connection` is one initialized `ClientSession` (Streamable HTTP or legacy SSE), held open by a background
task and shared by every concurrent call with the same server configuration and the same credentials: the
SDK multiplexes requests by JSON-RPC id. Connections are keyed by a digest of (server, its config version,
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

log = logging.getLogger("router.mcp.upstream")

_IDLE_SECONDS = 300.0
_MAX_CONNECTIONS = 256
_CLIENT_INFO = ("router-mcp-gateway", "1.0")


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
    def __init__(self, url: str, transport: str, headers: Mapping[str, str], timeout: float) -> None:
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

    async def close(self) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 2.0)
        except BaseException:  # closing: whatever the transport raised on the way out does not matter
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def pool_key(server: str, version: float, url: str, transport: str, headers: Mapping[str, str]) -> bytes:
    h = hashlib.sha256(f"{server}\0{version}\0{url}\0{transport}".encode())
    for name in sorted(headers):
        h.update(f"\0{name.lower()}\0{headers[name]}".encode())
    return h.digest()


class Pool:
    """Open connections by pool key, least recently used first."""

    def __init__(self) -> None:
        self._conns: OrderedDict[bytes, Connection] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, key: bytes, url: str, transport: str, headers: Mapping[str, str], timeout: float) -> Connection:
        conn = self._conns.get(key)
        if conn is not None and conn.alive:
            self._conns.move_to_end(key)
            return conn
        if conn is not None:
            del self._conns[key]
        conn = Connection(url, transport, headers, timeout)
        self._conns[key] = conn
        while len(self._conns) > _MAX_CONNECTIONS:
            _, old = self._conns.popitem(last=False)
            self._close_later(old)
        return conn

    def drop(self, key: bytes, conn: Connection) -> None:
        if self._conns.get(key) is conn:
            del self._conns[key]
            self._close_later(conn)

    def _close_later(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

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
