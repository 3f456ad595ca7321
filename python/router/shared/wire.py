"""A pipelined Redis connection for the one call on the request path: the reservation script.

redis-py spends 70-90 µs of CPU per command (connection pool, argument encoding, reply handling), more than
the gateway's whole per-request budget allows for one round trip. This connection writes a command encoded
once per caller and period (only the amount changes per request), lets every coroutine of the worker share
it (replies come back in order, so each is matched to the oldest caller still waiting), and parses replies
with hiredis. Everything else (settlements, heartbeats, readiness) stays on redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any

import hiredis


class WireError(Exception):
    """An error reply, a lost connection or a timeout."""


class ReplyError(Exception):
    """An error reply (e.g. NOSCRIPT)."""


def encode(*parts: bytes | str | int) -> bytes:
    """A command in RESP."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def bulk(part: bytes | str | int) -> bytes:
    data = part if isinstance(part, bytes) else str(part).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: WireConnection) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except Exception as exc:  # a protocol error: nothing more on this connection can be trusted
                self.fail(WireError(f"Redis protocol error: {exc}"))
                if self.transport is not None:
                    self.transport.close()
                return
            if reply is False:
                return
            if self.waiting:
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(WireError("connection to Redis lost"))
        self.owner._lost(self)

    def fail(self, error: Exception) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class WireConnection:
    """One connection per worker, opened on first use and again after it is lost."""

    def __init__(self, url: str, timeout: float) -> None:
        from redis.asyncio.connection import parse_url

        self._params = parse_url(url)
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        params = self._params

        def factory() -> _Protocol:
            return _Protocol(self)

        if "path" in params:
            connect = loop.create_unix_connection(factory, params["path"])
        else:
            connect = loop.create_connection(factory, params.get("host", "localhost"), params.get("port", 6379))
        _, protocol = await asyncio.wait_for(connect, self._timeout)
        setup: list[bytes] = []
        if params.get("password"):
            user = params.get("username")
            setup.append(encode("AUTH", user, params["password"]) if user else encode("AUTH", params["password"]))
        if params.get("db"):
            setup.append(encode("SELECT", params["db"]))
        for command in setup:
            reply = await self._send(protocol, command)
            if isinstance(reply, ReplyError):
                protocol.transport.close()  # type: ignore[union-attr]
                raise WireError(f"Redis refused the connection setup: {reply}")
        return protocol

    async def _get(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            protocol = await asyncio.shield(connecting)
        except (OSError, TimeoutError) as exc:
            raise WireError(f"cannot connect to Redis: {exc or type(exc).__name__}") from None
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        self._protocol = protocol
        return protocol

    def _send(self, protocol: _Protocol, command: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        transport = protocol.transport
        if transport is None or transport.is_closing():
            future.set_exception(WireError("connection to Redis lost"))
            return future
        protocol.waiting.append(future)
        transport.write(command)
        return future

    async def call(self, command: bytes | Callable[[], bytes]) -> Any:
        """Send an encoded command and wait (at most the timeout) for its reply; an error reply is returned,
        not raised (ReplyError). A callable is encoded only once the connection is ready, in the same step as
        it is written, so it can describe state as of its place in the connection's order."""
        protocol = await self._get()
        future = self._send(protocol, command if isinstance(command, bytes) else command())
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._timeout, _expire, future)
        try:
            return await future
        except WireError:
            # Replies still owed to this connection may never come: start afresh (callers waiting fail now).
            if protocol.transport is not None:
                protocol.transport.close()
            raise
        finally:
            timer.cancel()

    def _lost(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(WireError("Redis did not answer in time"))
