"""OAuth2 access tokens from a token endpoint, cached and refreshed before they expire.

Google service accounts (a signed JWT assertion, `google_auth`) and Azure Entra ID (the client-credentials
grant, `azure`) differ only in the form they post; Azure managed identities GET their token from a local
endpoint with a header instead. A token is cached until `REFRESH_MARGIN` seconds before it
expires; a background task refreshes it then, so requests wait for a token only when none is valid (the first
request, or after the token endpoint failed). Tokens, secrets and assertions are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import UpstreamError

# Refresh this long before expiry; and retry this soon after a failed refresh.
REFRESH_MARGIN = 300.0
RETRY_AFTER_FAILURE = 10.0
# A token that lives less than the margin is still refreshed at most this often.
MIN_REFRESH_INTERVAL = 1.0
DEFAULT_LIFETIME = 3600.0


class TokenAnswer(msgspec.Struct):
    access_token: str
    # RFC 6749 says a number; Entra ID's v1 endpoint and Azure's managed identity endpoints send strings.
    expires_in: float | str | None = None
    # Unix time the token expires: all App Service / Container Apps' managed identity endpoint sends.
    expires_on: float | str | None = None

    def lifetime(self, now: float) -> float:
        try:
            if self.expires_in is not None:
                return float(self.expires_in)
            if self.expires_on is not None:
                return float(self.expires_on) - now
        except ValueError:
            pass
        return DEFAULT_LIFETIME


# (method, url, headers, body) → (status, body)
Send = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]


class TokenSource:
    """The current access token of one credential, refreshed before it expires.

    `form(now)` is the urlencoded body posted to `token_url`, or None for a GET with `headers` (a managed
    identity's endpoint); `who` names the credential in errors."""

    def __init__(
        self,
        provider: str,
        token_url: str,
        form: Callable[[float], str] | None,
        who: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._provider = provider
        self._token_url = token_url
        self._form = form
        self._headers = headers or {}
        self._who = who
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._send: Send | None = None

    def start(self, send: Send) -> None:
        self._send = send
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def token(self) -> str:
        if self._token is not None and time.time() < self._expires - REFRESH_MARGIN / 2:
            return self._token
        async with self._lock:
            if self._token is None or time.time() >= self._expires - REFRESH_MARGIN / 2:
                await self._fetch()
        assert self._token is not None
        return self._token

    async def _refresh_loop(self) -> None:
        while True:
            wait = 0.0
            if self._token is not None:
                wait = max(self._expires - REFRESH_MARGIN - time.time(), MIN_REFRESH_INTERVAL)
            await asyncio.sleep(wait)
            try:
                async with self._lock:
                    await self._fetch()
            except UpstreamError:
                await asyncio.sleep(RETRY_AFTER_FAILURE)

    async def _fetch(self) -> None:
        assert self._send is not None
        now = time.time()
        headers = {"accept": "application/json", **self._headers}
        method, body = "GET", b""
        if self._form is not None:
            method, body = "POST", self._form(now).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        try:
            status, body = await self._send(method, self._token_url, headers, body)
        except Exception as exc:  # a transport failure of any kind: report it, never the form
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint is unreachable "
                f"({type(exc).__name__}).",
                code="upstream_auth_failed",
            ) from None
        if status != 200:
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint refused {self._who} (HTTP {status}).",
                code="upstream_auth_failed",
            )
        try:
            answer = msgspec.json.decode(body, type=TokenAnswer)
        except msgspec.DecodeError:
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint sent an invalid answer.",
                code="upstream_auth_failed",
            ) from None
        self._token = answer.access_token
        self._expires = now + answer.lifetime(now)


class RefreshedTokens:
    """Mixin for a provider whose credential is a `TokenSource` (Vertex's service account, Azure's Entra ID):
    the token's background refresh starts and stops with the provider, and posts through its own transport.
    Listed before the provider's base class, so its `start`/`close` wrap the base's."""

    _tokens: TokenSource | None
    _transport: Any

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        if self._tokens is not None:
            self._tokens.start(self._send_token_request)

    async def close(self) -> None:
        if self._tokens is not None:
            await self._tokens.close()
        await super().close()  # type: ignore[misc]

    async def _send_token_request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        assert self._transport is not None
        if method == "GET":
            response, data = await self._transport.get(url, headers)
        else:
            response, data = await self._transport.post(url, headers, body)
        return response.status, data
