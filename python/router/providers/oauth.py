"""OAuth2 access tokens from a token endpoint, cached and refreshed before they expire.

Google service accounts (a signed JWT assertion, `google_auth`) and Azure Entra ID (the client-credentials
grant, `azure`) differ only in the form they post. A token is cached until `REFRESH_MARGIN` seconds before it
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


class TokenAnswer(msgspec.Struct):
    access_token: str
    # RFC 6749 says a number; Entra ID's v1 endpoint sends it as a string.
    expires_in: float | str = 3600.0


Post = Callable[[str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]


class TokenSource:
    """The current access token of one credential, refreshed before it expires.

    `form(now)` is the urlencoded body posted to `token_url`; `who` names the credential in errors."""

    def __init__(self, provider: str, token_url: str, form: Callable[[float], str], who: str) -> None:
        self._provider = provider
        self._token_url = token_url
        self._form = form
        self._who = who
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._post: Post | None = None

    def start(self, post: Post) -> None:
        self._post = post
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
            wait = self._expires - REFRESH_MARGIN - time.time() if self._token is not None else 0.0
            await asyncio.sleep(max(wait, 0.0))
            try:
                async with self._lock:
                    await self._fetch()
            except UpstreamError:
                await asyncio.sleep(RETRY_AFTER_FAILURE)

    async def _fetch(self) -> None:
        assert self._post is not None
        now = time.time()
        form = self._form(now)
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        try:
            status, body = await self._post(self._token_url, headers, form.encode())
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
        try:
            lifetime = float(answer.expires_in)
        except ValueError:
            lifetime = 3600.0
        self._token = answer.access_token
        self._expires = now + lifetime


class RefreshedTokens:
    """Mixin for a provider whose credential is a `TokenSource` (Vertex's service account, Azure's Entra ID):
    the token's background refresh starts and stops with the provider, and posts through its own transport.
    Listed before the provider's base class, so its `start`/`close` wrap the base's."""

    _tokens: TokenSource | None
    _transport: Any

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        if self._tokens is not None:
            self._tokens.start(self._post_form)

    async def close(self) -> None:
        if self._tokens is not None:
            await self._tokens.close()
        await super().close()  # type: ignore[misc]

    async def _post_form(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        response, data = await self._transport.post(url, headers, body)
        return response.status, data
