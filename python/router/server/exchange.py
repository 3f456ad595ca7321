"""One request/response exchange over granian's RSGI protocol, and the OpenAI-shaped error body."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import msgspec
from granian.rsgi import HTTPProtocol, Scope

from .._core import SessionTurn
from ..config import Prices
from ..errors import GatewayError, PayloadTooLarge, UnsupportedMediaType
from ..guardrails.audit import Triggers
from ..protocols.errors import Api, error_body, error_status
from ..spend.budgets import Hold
from ..store import UsageRow
from .backpressure import ClientSockets
from .requests import Metadata

JSON = "application/json"
REQUEST_ID = "x-request-id"
OVERHEAD = "x-router-overhead-ms"
# Which model and provider answered, after how many upstream calls (policies may try several).
ROUTER_MODEL = "x-router-model"
ROUTER_PROVIDER = "x-router-provider"
ROUTER_ATTEMPTS = "x-router-attempts"


def openai_error_body(exc: GatewayError) -> bytes:
    return error_body(exc, "openai")


class RequestIds:
    """Request ids: `req_` and 96 random bits (24 hex digits), unguessable, unique across workers and restarts.

    Unguessable because an id is a capability: feedback is attached by id. Always our own, never the client's:
    the usage log keys rows by it, so a chosen id could collide. The bits come from the OS's CSPRNG in batches
    of 512 ids, so the hot path pays a slice of a string, not a system call (benches/test_request_ids_bench.py).
    """

    _BATCH = 512
    _HEX = 24

    def __init__(self) -> None:
        self._pool = ""
        self._at = 0
        # A forked child must not hand out the ids left in its parent's pool.
        os.register_at_fork(after_in_child=self._drop_pool)

    def _drop_pool(self) -> None:
        self._pool = ""
        self._at = 0

    def new(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(self._BATCH * self._HEX // 2).hex()
            at = 0
        self._at = at + self._HEX
        return "req_" + self._pool[at : at + self._HEX]


class ClientBody:
    """The client's request body and its top-level fields (msgspec.Raw values, views into the body), held for
    the routing attempts that may send it (a fallback re-sends it until the answer's first byte is out).

    A stream lasts minutes and its prompt may be tens of KiB: `release` empties both once nothing can send them
    again, for every frame that holds this object or the fields dict (they see it emptied). What the usage row
    needs of the body (its size, the tool results) is read before."""

    __slots__ = ("data", "fields")

    def __init__(self, data: bytes, fields: dict[str, msgspec.Raw]) -> None:
        self.data = data
        self.fields = fields

    def release(self) -> None:
        self.data = b""
        self.fields.clear()


class Exchange:
    """What the handlers of one request share: ids, timings, the outcome to log, and response helpers."""

    __slots__ = (
        "answer", "api", "attempt_rows", "attempts", "auto_cache", "body_bytes", "budgets", "byok", "cached_tokens",
        "client_body", "completion_tokens", "conversation", "end_user", "endpoint", "error_type", "events_seen",
        "fees_micro", "headers", "hold", "key_id", "last_attempt", "metadata", "model", "on_answer", "owner",
        "period", "prices", "prompt", "prompt_tokens", "proto", "provider", "reasoning_tokens", "request_id",
        "responded", "routing_seconds", "scope", "sockets", "started", "status", "stream", "tool_calls",
        "tool_results", "triggers", "ttft", "turn", "upstream_auth", "upstream_seconds",
    )  # fmt: skip

    def __init__(self, scope: Scope, proto: HTTPProtocol, endpoint: str, request_id: str) -> None:
        self.scope = scope
        self.proto = proto
        self.headers = scope.headers
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.request_id = request_id
        self.status = 0
        self.responded = False
        self.upstream_seconds = 0.0
        self.ttft: float | None = None
        self.key_id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.stream = False
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        # Guardrail findings of the request, written to the audit log when it is accounted for.
        self.triggers: Triggers | None = None
        self.error_type: str | None = None
        # Spend: the priced model, the reservation to settle, the budgets charged, request metadata.
        self.prices: Prices | None = None
        # What the answer cost besides tokens (micro-dollars): generated images, billed web searches.
        self.fees_micro = 0
        self.hold: Hold | None = None
        self.budgets: tuple[str, ...] = ()
        self.period: int | None = None
        self.body_bytes = 0
        self.events_seen = 0
        self.owner: str | None = None
        self.end_user: str | None = None
        self.metadata: Metadata | None = None
        # Which API's error shape the caller expects.
        self.api: Api = "openai"
        # Routing: upstream calls made, time spent on attempts that failed (and backoff), their usage rows.
        self.attempts = 0
        self.routing_seconds = 0.0
        self.attempt_rows: list[UsageRow] = []
        # The provider credential of the current attempt when it is not the configured one (BYOK), and who paid.
        self.upstream_auth: dict[str, str] | None = None
        self.byok = False
        # `requesty.auto_cache` as resolved for this request (request > key > org > config).
        self.auto_cache = False
        # Tool-call analytics: names the answer called; results the request sent back as (name, is_error).
        self.tool_calls: list[str] | None = None
        self.tool_results: list[tuple[str, bool]] | None = None
        # The prompt library versions applied to the request ("name@3", space-separated).
        self.prompt: str | None = None
        # Called once, just before the answer is handed to granian: the usage row must be on disk by then.
        self.on_answer: Callable[[Exchange], None] | None = None
        # Sessions: the conversation as the client sent it (raw items, raw system, previous response id), where
        # the index placed the request, and the answer as the client got it (a stream: its first bytes).
        self.conversation: tuple[msgspec.Raw | None, msgspec.Raw | None, msgspec.Raw | None] | None = None
        self.turn: SessionTurn | None = None
        self.answer: bytes | None = None
        # The worker's client sockets by address: streams look at theirs to hold the upstream for a slow client.
        self.sockets: ClientSockets | None = None
        # The request for the routing attempts to send, released when the answer's first byte is out, or once
        # the upstream body is built when routing has no other attempt to make (`last_attempt`: one model).
        self.client_body: ClientBody | None = None
        self.last_attempt = False

    # -- request ------------------------------------------------------------------------------------

    def api_key(self) -> str | None:
        auth = self.headers.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
            return None
        return self.headers.get("x-api-key")

    def read_json_body(self, limit: int) -> Awaitable[bytes]:
        """The body, to await: granian's own read when the length is declared (no coroutine of ours around it),
        else a read that counts the chunks as they arrive."""
        content_type = self.headers.get("content-type")
        if content_type is not None:
            media = content_type.partition(";")[0].strip().lower()
            if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
                raise UnsupportedMediaType(
                    f"Unsupported Content-Type '{media}': send the request body as application/json.",
                    code="unsupported_content_type",
                )
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"Request body of {declared} bytes exceeds the limit of {limit} bytes.", code="request_too_large"
            )
        if declared is not None:
            return self.proto()
        return self._read_chunked(limit)

    async def _read_chunked(self, limit: int) -> bytes:
        # No length given (chunked): count as it arrives so a huge body is refused, not buffered.
        parts = []
        size = 0
        async for chunk in self.proto:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.", code="request_too_large")
            parts.append(chunk)
        return b"".join(parts)

    # -- response -----------------------------------------------------------------------------------

    def overhead_seconds(self) -> float:
        return max(time.perf_counter() - self.started - self.upstream_seconds - self.routing_seconds, 0.0)

    def response_headers(self, content_type: str, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
        overhead = f"{self.overhead_seconds() * 1000:.3f}"
        # One list either way (every answer builds one: no second list to concatenate).
        if self.attempts:
            headers = [
                ("content-type", content_type),
                (REQUEST_ID, self.request_id),
                (OVERHEAD, overhead),
                (ROUTER_MODEL, self.model),
                (ROUTER_PROVIDER, self.provider),
                (ROUTER_ATTEMPTS, str(self.attempts)),
            ]
        else:
            headers = [("content-type", content_type), (REQUEST_ID, self.request_id), (OVERHEAD, overhead)]
        if extra:
            headers.extend(extra)
        return headers

    def send_bytes(
        self, status: int, body: bytes, content_type: str = JSON, extra: list[tuple[str, str]] | None = None
    ) -> None:
        self.status = status
        self.responded = True
        if (on_answer := self.on_answer) is not None:
            self.on_answer = None
            on_answer(self)
        self.proto.response_bytes(status, self.response_headers(content_type, extra), body)

    def send_error(self, exc: GatewayError) -> None:
        self.error_type = exc.code or exc.type
        body = error_body(exc, self.api, self.request_id if self.api == "anthropic" else None)
        self.send_bytes(error_status(exc, self.api), body, JSON, exc.headers)

    def release_body(self) -> None:
        if (held := self.client_body) is not None:
            self.client_body = None
            held.release()

    def upstream_body_built(self) -> None:
        """This attempt's upstream body exists: on the last attempt nothing reads the client's again, and a model
        that thinks for a minute before its first token no longer holds it that long."""
        if self.last_attempt:
            self.release_body()

    @contextlib.contextmanager
    def cancel_on_disconnect(self) -> Iterator[None]:
        """Cancel the running task as soon as the client goes away, even while the upstream is silent;
        leaving the upstream's `async with` then drops its connection. (~4 µs; streams only, where it matters.)"""
        task = asyncio.current_task()
        assert task is not None
        ended = False

        def on_disconnect(watch: asyncio.Future[None]) -> None:
            if not ended and not watch.cancelled():
                task.cancel()

        watch = asyncio.ensure_future(self.proto.client_disconnect())
        watch.add_done_callback(on_disconnect)
        try:
            yield
        finally:
            ended = True
            watch.cancel()

    def start_stream(
        self, status: int, extra: list[tuple[str, str]], content_type: str = "text/event-stream; charset=utf-8"
    ) -> Any:
        self.status = status
        self.responded = True
        # The client has the answer's first bytes: no fallback can re-send the request any more.
        self.release_body()
        return self.proto.response_stream(status, self.response_headers(content_type, extra))
